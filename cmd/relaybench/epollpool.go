package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"

	"golang.org/x/sys/unix"
)

// The epoll pool relay (-bare-relay-epoll with -bare-relay-pool N) shows
// what a pool relay reaches on this machine without goroutines and Go's
// netpoller, where bare-pool is the ceiling for one built the way faultline
// is (two goroutines per session, Go's netpoller, a deadline to
// interrupt). One locked OS thread
// runs one level-triggered epoll loop over non-blocking sockets that the Go
// runtime never sees, as haproxy's event loop does, with bare-pool's LIFO
// list and its rule for release: an upstream connection goes back when the
// client's side ended with EOF and nothing was left to write to it. Nothing
// is checked at borrow or release. It dials with a blocking connect, which
// is fine on loopback only, and it is measured for churn only.

const bareEpollFlag = "bare-relay-epoll"

// epollRelay is the loop's state; only the loop's goroutine touches it.
type epollRelay struct {
	ep, lfd, wake int // epoll instance, listener, eventfd that ends the loop
	upstream      unix.Sockaddr
	maxIdle       int
	conns         map[int]*epConn // by fd: clients, upstreams in use, idle upstreams
	idle          []*epConn       // most recently released last
	buf           []byte
}

// epConn is one socket of the relay.
type epConn struct {
	fd     int
	client bool
	peer   *epConn // nil while an upstream connection is idle
	out    []byte  // read from peer, not yet written to fd
	events uint32  // interest registered with epoll
}

// runEpollPool serves on listen until ctx is done, then closes every socket
// and returns.
func runEpollPool(ctx context.Context, listen, upstream string, maxIdle int, stdout io.Writer) error {
	la, err := netip.ParseAddrPort(listen)
	if err != nil {
		return fmt.Errorf("-%s: %w", bareListenFlag, err)
	}
	ua, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return fmt.Errorf("-%s: %w", bareUpstreamFlag, err)
	}
	// The loop blocks its thread in epoll_wait; lock it there so the
	// runtime does not move the goroutine between threads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	r := &epollRelay{ep: -1, lfd: -1, wake: -1, upstream: sockaddr(ua), maxIdle: maxIdle,
		conns: make(map[int]*epConn), buf: make([]byte, 16<<10)}
	defer r.closeAll()
	if r.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	if r.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	if r.lfd, err = listenTCP(la); err != nil {
		return err
	}
	for _, fd := range []int{r.wake, r.lfd} {
		if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	sa, err := unix.Getsockname(r.lfd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	fmt.Fprintf(stdout, "proxy listening on %s -> %s\n", addrPort(sa), upstream)

	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(r.wake, one[:])
	})
	defer func() {
		if !stop() {
			<-woken // it started: let it finish with the eventfd before closeAll closes it
		}
	}()
	return r.loop()
}

func (r *epollRelay) loop() error {
	evs := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(r.ep, evs, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range evs[:n] {
			switch fd := int(ev.Fd); fd {
			case r.wake:
				return nil
			case r.lfd:
				r.accept()
			default:
				// An fd closed earlier in this batch may have been
				// reused by accept since. A stale readable or
				// writable event is a no-op below (the read or peek
				// finds nothing); a stale hang-up would end a session
				// whose peer has a backlog, which is rare and costs a
				// benchmark one connection.
				if c := r.conns[fd]; c != nil {
					r.handle(c, ev.Events)
				}
			}
		}
	}
}

func (r *epollRelay) accept() {
	for {
		fd, _, err := unix.Accept4(r.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
			continue
		}
		if err != nil { // EAGAIN: all taken; EMFILE and the like: wait for closes
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		up := r.borrow()
		if up == nil {
			unix.Close(fd)
			continue
		}
		c := &epConn{fd: fd, client: true, peer: up}
		up.peer = c
		if !r.add(c) {
			r.drop(up)
		}
	}
}

// borrow pops the most recently released idle upstream connection or dials a
// new one; nil if dialing failed.
func (r *epollRelay) borrow() *epConn {
	if n := len(r.idle); n > 0 {
		up := r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		return up
	}
	fd, err := unix.Socket(sockFamily(r.upstream), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if unix.Connect(fd, r.upstream) != nil || unix.SetNonblock(fd, true) != nil {
		unix.Close(fd)
		return nil
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	up := &epConn{fd: fd}
	if !r.add(up) {
		return nil
	}
	return up
}

// add registers c for reading; on failure it closes c.
func (r *epollRelay) add(c *epConn) bool {
	c.events = unix.EPOLLIN
	if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: c.events, Fd: int32(c.fd)}); err != nil {
		unix.Close(c.fd)
		return false
	}
	r.conns[c.fd] = c
	return true
}

func (r *epollRelay) handle(c *epConn, events uint32) {
	if c.peer == nil { // an idle upstream connection: readable means EOF, RST or junk
		var b [1]byte
		if _, _, err := unix.Recvfrom(c.fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); errors.Is(err, unix.EAGAIN) {
			return // stale event for a reused fd
		}
		r.unidle(c)
		r.drop(c)
		return
	}
	if events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		if !r.flush(c) {
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		r.relay(c, events)
	}
}

// relay reads what c has and writes it to c's peer, until c would block or
// the peer cannot take more.
func (r *epollRelay) relay(c *epConn, events uint32) {
	p := c.peer
	if len(p.out) > 0 {
		// Not reading c until p drains; a hang-up or error cannot wait.
		if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			r.dropPair(c)
		}
		return
	}
	for {
		n, err := unix.Read(c.fd, r.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			r.dropPair(c)
			return
		case n == 0:
			r.ended(c)
			return
		}
		if !r.write(p, r.buf[:n]) || len(p.out) > 0 || n < len(r.buf) {
			return
		}
	}
}

// write sends b to c and keeps what c cannot take now in c.out; while c
// has a backlog it waits for c to become writable and does not read c's
// peer. It reports false if it dropped the pair.
func (r *epollRelay) write(c *epConn, b []byte) bool {
	for len(b) > 0 {
		n, err := unix.Write(c.fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			c.out = append(c.out, b...)
			break
		}
		if err != nil {
			r.dropPair(c)
			return false
		}
		b = b[n:]
	}
	r.interest(c)
	r.interest(c.peer)
	return true
}

// flush writes c's backlog. It reports false if it dropped the pair.
func (r *epollRelay) flush(c *epConn) bool {
	out := c.out
	c.out = nil
	return r.write(c, out)
}

// interest registers what c waits for: reading unless its peer has a
// backlog, writing while it has one.
func (r *epollRelay) interest(c *epConn) {
	var want uint32
	if c.peer == nil || len(c.peer.out) == 0 {
		want |= unix.EPOLLIN
	}
	if len(c.out) > 0 {
		want |= unix.EPOLLOUT
	}
	if want != c.events {
		c.events = want
		unix.EpollCtl(r.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: want, Fd: int32(c.fd)})
	}
}

// ended handles EOF read from c: a client's EOF ends the session and its
// upstream connection goes back to the pool if nothing was left to write to
// it; an upstream's EOF ends the session and that connection.
func (r *epollRelay) ended(c *epConn) {
	up := c.peer
	if !c.client || len(up.out) > 0 {
		r.dropPair(c)
		return
	}
	r.drop(c)
	up.peer, up.out = nil, nil
	if len(r.idle) >= r.maxIdle {
		r.drop(up)
		return
	}
	r.interest(up)
	r.idle = append(r.idle, up)
}

func (r *epollRelay) unidle(c *epConn) {
	for i, u := range r.idle {
		if u == c {
			r.idle = append(r.idle[:i], r.idle[i+1:]...)
			return
		}
	}
}

func (r *epollRelay) drop(c *epConn) {
	delete(r.conns, c.fd)
	unix.Close(c.fd) // also takes it out of the epoll set
}

func (r *epollRelay) dropPair(c *epConn) {
	if c.peer != nil {
		r.drop(c.peer)
	}
	r.drop(c)
}

func (r *epollRelay) closeAll() {
	for _, c := range r.conns {
		unix.Close(c.fd)
	}
	clear(r.conns)
	r.idle = nil
	for _, fd := range []int{r.lfd, r.wake, r.ep} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func listenTCP(ap netip.AddrPort) (int, error) {
	sa := sockaddr(ap)
	fd, err := unix.Socket(sockFamily(sa), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", ap, err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", ap, err)
	}
	return fd, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func sockFamily(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet4); ok {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}
