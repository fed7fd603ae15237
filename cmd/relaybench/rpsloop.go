package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The rps load generator and its echo upstream run as one event loop: one
// locked OS thread, one level-triggered epoll instance over non-blocking
// sockets the Go runtime never sees, as redis-benchmark and redis-server
// do. Through Go's netpoller each round trip would cost the harness a
// failed read, a park and a wake-up on each side; here it costs a write and
// a read per side and a share of one epoll_wait. The harness shares the
// machine's CPUs with the relay, so every microsecond it saves goes to the
// relay and makes a difference between relays show more plainly.

// rpsEcho is the rps scenarios' upstream: a listening socket whose
// connections the rps loop accepts and echoes while a round runs. Between
// rounds nothing reads it; connections wait in its backlog.
type rpsEcho struct {
	fd   int
	addr string
}

func startRPSEcho() (*rpsEcho, error) {
	fd, err := listenTCP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	return &rpsEcho{fd: fd, addr: addrPort(sa).String()}, nil
}

// Addr is the HOST:PORT the echo upstream listens on.
func (e *rpsEcho) Addr() string { return e.addr }

func (e *rpsEcho) Close() error { return unix.Close(e.fd) }

// rpsLoop is one round's event loop; only its goroutine touches it.
type rpsLoop struct {
	ep      int
	size    int
	phase   *atomic.Int32
	echo    *rpsEcho        // nil: the upstream is someone else's
	clients map[int]*rpsCli // by fd
	served  map[int]bool    // accepted echo connections, by fd
	buf     []byte          // echo's read buffer
	req     []byte          // the request, its first 8 bytes a sequence number
	hist    histogram
	timed   int64
	idle    []*rpsCli // connections with no request out, waiting for the phase to allow one
}

// rpsCli is one client connection: at most one request outstanding.
type rpsCli struct {
	fd   int
	seq  uint64
	sent time.Time
	got  int // bytes of the echo read so far
	resp []byte
}

// dialBlocking connects a socket to ap, waiting for the connect to
// complete for up to dialTimeout, and makes it non-blocking.
func dialBlocking(ap netip.AddrPort) (int, error) {
	sa := sockaddr(ap)
	fd, err := unix.Socket(sockFamily(sa), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	// A connect blocked on a full accept queue (socat's is 5) waits for the
	// SYN's retransmission; SO_SNDTIMEO bounds it.
	tv := unix.NsecToTimeval(dialTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setsockopt SO_SNDTIMEO: %w", err)
	}
	// A signal (the Go runtime preempts with SIGURG) interrupts a blocked
	// connect with EINTR while the kernel goes on connecting: ask again,
	// which answers EALREADY until it is done, then EISCONN.
	for deadline := time.Now().Add(dialTimeout); ; {
		err := unix.Connect(fd, sa)
		if err == nil || err == unix.EISCONN {
			break
		}
		if (err == unix.EINTR || err == unix.EALREADY) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			continue
		}
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", ap, err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's net package does
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	return fd, nil
}

// runRPSLoop opens conns connections to addr, calls dialed (also when it
// fails before), and runs round trips on all of them, serving echo's
// connections too if echo is not nil, until the phase is done or ctx is.
// It returns the round trips completed in the timed phase and their
// latencies.
//
// wake is -1, or an eventfd the caller writes to after changing the phase
// (runRPSInterleaved): in phase rpsPaused the loop sends no request after
// an echo completes and leaves the connection idle, still echoing for the
// upstream; it sends again on every idle connection once the phase is
// rpsWarmup or rpsTimed.
func runRPSLoop(ctx context.Context, addr string, echo *rpsEcho, conns, size int, phase *atomic.Int32, dialed func(), wake int) (int64, *histogram, error) {
	var once sync.Once
	defer once.Do(dialed)
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0, nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l := &rpsLoop{ep: -1, size: size, phase: phase, echo: echo,
		clients: make(map[int]*rpsCli, conns), served: make(map[int]bool), buf: make([]byte, 16<<10),
		req: make([]byte, size)}
	copy(l.req, pattern)
	defer l.closeAll()
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return 0, nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if echo != nil {
		if err := l.watch(echo.fd); err != nil {
			return 0, nil, err
		}
	}
	if wake >= 0 {
		if err := l.watch(wake); err != nil {
			return 0, nil, err
		}
	}
	for i := range conns {
		// The relay may connect to the echo upstream as the client
		// connects: accept meanwhile, or the relay's connect waits.
		if echo != nil {
			l.accept()
		}
		fd, err := dialBlocking(ap)
		if err != nil {
			return 0, nil, fmt.Errorf("connection %d of %d: %w", i+1, conns, err)
		}
		c := &rpsCli{fd: fd, resp: make([]byte, size)}
		l.clients[fd] = c
		if err := l.watch(fd); err != nil {
			return 0, nil, err
		}
	}
	once.Do(dialed)
	for _, c := range l.clients {
		l.idle = append(l.idle, c)
	}
	evs := make([]unix.EpollEvent, 256)
	for phase.Load() != rpsDone {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		if p := phase.Load(); len(l.idle) > 0 && (p == rpsWarmup || p == rpsTimed) {
			for _, c := range l.idle {
				if err := l.send(c); err != nil {
					return 0, nil, err
				}
			}
			l.idle = l.idle[:0]
		}
		n, err := unix.EpollWait(l.ep, evs, 50)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("epoll_wait: %w", err)
		}
		if n == 0 { // 50 ms without an event: is a round trip stuck?
			if err := l.stuck(); err != nil {
				return 0, nil, err
			}
		}
		for _, ev := range evs[:n] {
			fd := int(ev.Fd)
			switch {
			case echo != nil && fd == echo.fd:
				l.accept()
			case fd == wake:
				var b [8]byte
				unix.Read(wake, b[:]) // the phase changed: the loop looks at it above
			case l.served[fd]:
				l.serve(fd)
			default:
				if c := l.clients[fd]; c != nil {
					err := l.receive(c)
					if err != nil && phase.Load() == rpsDone {
						// Another loop ended and closed the echo
						// connections it served: the round is over.
						return l.timed, &l.hist, nil
					}
					if err != nil {
						return 0, nil, err
					}
				}
			}
		}
	}
	if err := l.stuck(); err != nil {
		return 0, nil, err
	}
	return l.timed, &l.hist, nil
}

// stuck fails if a round trip has waited for its echo for stepTimeout.
func (l *rpsLoop) stuck() error {
	for _, c := range l.clients {
		if d := time.Since(c.sent); d > stepTimeout && !slices.Contains(l.idle, c) {
			return fmt.Errorf("round trip %d: no echo after %v (%d bytes of %d)", c.seq, d.Round(time.Millisecond), c.got, l.size)
		}
	}
	return nil
}

func (l *rpsLoop) watch(fd int) error {
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// accept takes every connection waiting on the echo listener.
func (l *rpsLoop) accept() {
	for {
		fd, _, err := unix.Accept4(l.echo.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: none left (or a transient error: the next event retries)
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if l.watch(fd) != nil {
			unix.Close(fd)
			continue
		}
		l.served[fd] = true
	}
}

// serve echoes what fd has to read. A request is at most rps1kSize bytes
// and a client has one outstanding, so the echo always fits in the
// socket's empty send buffer; a short write ends the connection rather
// than wait.
func (l *rpsLoop) serve(fd int) {
	n, err := unix.Read(fd, l.buf)
	if errors.Is(err, unix.EAGAIN) {
		return
	}
	if err == nil && n > 0 {
		if w, werr := unix.Write(fd, l.buf[:n]); werr == nil && w == n {
			return
		}
	}
	// EOF, an error or a short write: this connection is done.
	delete(l.served, fd)
	unix.Close(fd)
}

// send writes c's next request.
func (l *rpsLoop) send(c *rpsCli) error {
	if l.size >= 8 {
		binary.BigEndian.PutUint64(l.req, c.seq)
	}
	c.got = 0
	c.sent = time.Now()
	n, err := unix.Write(c.fd, l.req)
	if err == nil && n != len(l.req) {
		err = fmt.Errorf("short write of %d bytes of %d", n, len(l.req))
	}
	if err != nil {
		return fmt.Errorf("round trip %d: writing: %w", c.seq, err)
	}
	return nil
}

// receive reads what c has of its echo; once complete, it checks it,
// counts it if the phase is timed, and sends the next request unless the
// phase is done.
func (l *rpsLoop) receive(c *rpsCli) error {
	n, err := unix.Read(c.fd, c.resp[c.got:])
	switch {
	case errors.Is(err, unix.EAGAIN):
		return nil
	case err != nil:
		return fmt.Errorf("round trip %d: reading: %w", c.seq, err)
	case n == 0:
		return fmt.Errorf("round trip %d: reading: EOF after %d bytes of %d", c.seq, c.got, l.size)
	}
	c.got += n
	if c.got < l.size {
		return nil
	}
	lat := time.Since(c.sent)
	if l.size >= 8 {
		binary.BigEndian.PutUint64(l.req, c.seq)
	}
	if !bytes.Equal(l.req, c.resp) {
		return fmt.Errorf("round trip %d: %w: echo differs", c.seq, errCorrupt)
	}
	switch l.phase.Load() {
	case rpsTimed:
		l.hist.add(lat)
		l.timed++
	case rpsDone:
		return nil
	case rpsPaused:
		c.seq++
		l.idle = append(l.idle, c)
		return nil
	}
	c.seq++
	return l.send(c)
}

func (l *rpsLoop) closeAll() {
	for fd := range l.clients {
		unix.Close(fd)
	}
	for fd := range l.served {
		unix.Close(fd)
	}
	if l.ep >= 0 {
		unix.Close(l.ep)
	}
}
