package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux TCP states, as reported in tcp_info.
const (
	tcpEstablished = 1
	tcpTimeWait    = 6
	tcpClose       = 7
	tcpCloseWait   = 8
	tcpLastAck     = 9
	tcpClosing     = 11
)

// sockInfo is what the kernel knows of one TCP socket.
type sockInfo struct {
	state    uint8  // tcpEstablished, tcpCloseWait, ...
	received uint64 // bytes taken into the receive queue in order, a FIN counting one
	inq      int    // bytes in the receive queue not yet read
	errPend  bool   // in tcpClose only: an error (an RST's) waits to be read; see sockErrPending
}

// readSockInfo reads tcp_info and SIOCINQ without blocking. read is how
// many bytes the caller knows it took out of the socket: when tcp_info's
// count of data received is exactly that, nothing can be queued, and the
// second syscall is skipped (the common case when a pooled connection is
// released clean). Bytes that arrive between the two reads count in inq but
// not in received, so they make the socket look dirtier than it was, never
// cleaner.
func readSockInfo(c *net.TCPConn, read uint64) (sockInfo, error) {
	return sockInfoOf(c, func(si sockInfo) bool { return si.readBytes() != read })
}

// tcpInfo reads c's state and count of bytes received from tcp_info, in
// one getsockopt call; inq is left 0.
func tcpInfo(c *net.TCPConn) (sockInfo, error) { return sockInfoOf(c, nil) }

// sockInfoOf reads tcp_info, then SIOCINQ if wantInq (when not nil) says
// so given what tcp_info said.
func sockInfoOf(c *net.TCPConn, wantInq func(sockInfo) bool) (sockInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return sockInfo{}, err
	}
	var si sockInfo
	var serr error
	err = rc.Control(func(fd uintptr) {
		var ti *unix.TCPInfo
		if ti, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr != nil {
			return
		}
		si.state, si.received = ti.State, ti.Bytes_received
		if si.state == tcpClose {
			si.errPend = sockErrPending(fd)
		}
		if wantInq != nil && wantInq(si) {
			si.inq, serr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		}
	})
	if err == nil {
		err = serr
	}
	return si, err
}

// recvBytes is how many bytes of data the socket has received from its
// peer, whether or not the proxy has read them yet: tcp_info's
// bytes_received, less one for a FIN (see closedByFIN). One getsockopt
// call, and a poll in tcpClose.
func recvBytes(c *net.TCPConn) (uint64, error) {
	si, err := tcpInfo(c)
	n := si.readBytes()
	if si.closedByFIN() && n > 0 {
		n--
	}
	return n, err
}

// closedByFIN reports whether a socket in tcpClose got there by the
// orderly way: both sides sent FIN (from LAST_ACK or TIME_WAIT, which a
// socket with a live descriptor leaves for tcpClose at once), so the
// peer's FIN is in bytes_received. A socket reset by its peer gets there
// too, with the error pending until a read or write takes it: with no
// error pending, the close is taken to be orderly. (An RST whose error
// was already taken, with no FIN before it, is counted as a FIN: a count
// that low by one, which the loop's own count corrects once the loop has
// relayed what it read; see liveUp.)
func (si sockInfo) closedByFIN() bool { return si.state == tcpClose && !si.errPend }

// sockErrPending reports whether the socket fd has an error waiting to be
// read (POLLERR: sk_err set, as an RST sets it), without taking it as
// SO_ERROR or a read would.
func sockErrPending(fd uintptr) bool {
	pfd := []unix.PollFd{{Fd: int32(fd)}}
	n, err := unix.Poll(pfd, 0)
	return err == nil && n > 0 && pfd[0].Revents&unix.POLLERR != 0
}

// peerGone reports whether c's peer is gone, as c itself shows it: c is in
// tcpClose with an error pending (an RST came and nothing has read it
// yet), or in tcpClose though the proxy never sent a FIN on it (finSent),
// which only an RST (or a dead peer's timeout) does. A socket that sent a
// FIN and reached tcpClose with no error pending was closed in order.
func peerGone(c *net.TCPConn, finSent bool) bool {
	si, err := tcpInfo(c)
	return err == nil && si.state == tcpClose && (si.errPend || !finSent)
}

// readBytes is how many bytes the proxy has taken out of the socket:
// everything received in order, less what is still queued and less one for
// a FIN.
func (si sockInfo) readBytes() uint64 {
	n := int64(si.received) - int64(si.inq)
	if si.finReceived() && n > 0 {
		n--
	}
	return uint64(max(n, 0))
}

// finReceived reports whether the state is one reached by receiving the
// peer's FIN.
func (si sockInfo) finReceived() bool {
	switch si.state {
	case tcpCloseWait, tcpLastAck, tcpClosing, tcpTimeWait:
		return true
	}
	return false
}

// probe looks at an idle connection without blocking or consuming anything
// (a MSG_PEEK|MSG_DONTWAIT read of one byte). It returns "" when the
// connection is open with nothing to read, else why it is unusable.
func probe(c *net.TCPConn) (Reason, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return ReasonError, err
	}
	var n int
	var perr error
	var b [1]byte
	// Control, not Read: the peek never waits, and Read would fail on a
	// read deadline the proxy set itself (a fault change kicks a loop with
	// a past one) before it looked at the socket at all.
	err = rc.Control(func(fd uintptr) {
		n, perr = peek(fd, b[:])
	})
	switch {
	case err != nil:
		return ReasonError, err
	case perr == nil && n > 0:
		return ReasonUnread, nil
	case perr == nil:
		return ReasonUpstreamEOF, nil
	case errors.Is(perr, unix.EAGAIN):
		return "", nil
	case errors.Is(perr, unix.ECONNRESET):
		return ReasonUpstreamReset, perr
	}
	return ReasonError, perr
}

// waitReadable blocks until c has a byte to read or EOF, without
// consuming anything, and reports whether it had to wait. It honours c's
// read deadline and returns an error when c is closed, or the socket error
// (such as ECONNRESET) the peek saw: the peek cleared it from the socket,
// so a read after it would see only EOF.
func waitReadable(c *net.TCPConn) (waited bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var (
		b     [1]byte
		calls int
		perr  error
	)
	err = rc.Read(func(fd uintptr) bool {
		calls++
		_, perr = peek(fd, b[:])
		return perr != unix.EAGAIN && perr != unix.EINTR
	})
	if err == nil {
		err = perr
	}
	return calls > 1, err
}

// The calls below, and rawWriter's, are raw syscalls (RawSyscall: the
// scheduler is not told): each is on a non-blocking socket and returns in
// microseconds. Telling the scheduler (Syscall) costs more than such a call
// does and, with one Go processor (faultline run's default), lets sysmon
// hand the processor to another thread whenever the kernel deschedules
// this one inside the call: on a machine whose CPUs are all busy, two
// threads then took turns running the relay, each handover a futex wake
// and a context switch (docs/benchmarks.md).

// peekQueued returns how many bytes wait unread in the socket fd, without
// consuming or copying them and without blocking, in one syscall: recv(2)
// with MSG_PEEK|MSG_TRUNC|MSG_DONTWAIT, which on TCP counts the bytes it
// would have read and copies none (so it needs no buffer). 0 means EOF;
// EAGAIN that nothing is queued; a socket error such as ECONNRESET is
// returned, and cleared by the call.
func peekQueued(fd uintptr) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, 0, 1<<30,
		unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// peek reads into b without consuming or blocking (recv with MSG_PEEK and
// MSG_DONTWAIT). Unlike unix.Recvfrom it asks for no source address, so
// it allocates nothing: it runs on every chunk of a fault loop.
func peek(fd uintptr, b []byte) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// isReset reports whether err means the peer sent an RST or the socket is
// broken (a write after the peer went away).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// resetClose closes c abortively: the peer gets an RST, not a FIN.
func resetClose(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// tcpState returns c's TCP state, or 0 if it cannot be read.
func tcpState(c *net.TCPConn) uint8 {
	si, err := tcpInfo(c)
	if err != nil {
		return 0
	}
	return si.state
}

// sockInq returns how many bytes wait unread in c's socket, 0 if unknown.
func sockInq(c *net.TCPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}

// discardQueued drops the bytes waiting unread in c's socket without
// copying them and without blocking: recv(2) with MSG_TRUNC, which on TCP
// discards up to len bytes and needs no buffer. It ignores c's deadlines.
func discardQueued(c *net.TCPConn) error { return dropN(c, -1) }

// dropN drops the first n bytes queued in c's socket (all of them if n < 0)
// as discardQueued does.
func dropN(c *net.TCPConn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var rerr error
	err = rc.Control(func(fd uintptr) {
		if n < 0 {
			if n, rerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ); rerr != nil || n == 0 {
				return
			}
		}
		_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, 0, uintptr(n), unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 {
			rerr = errno
		}
	})
	if err != nil {
		return err
	}
	return rerr
}

// idleFor is how long no data has moved either way on c, from tcp_info's
// last data sent and received (millisecond resolution); 0 if unknown.
func idleFor(c *net.TCPConn) time.Duration {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var ms uint32
	_ = rc.Control(func(fd uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			ms = min(ti.Last_data_recv, ti.Last_data_sent)
		}
	})
	return time.Duration(ms) * time.Millisecond
}

// recvNow reads what is queued in the socket fd into b without blocking
// (recv(2) with MSG_DONTWAIT): 0 means EOF, EAGAIN that nothing is queued.
// Like peek, it asks for no source address, so it allocates nothing.
func recvNow(fd uintptr, b []byte) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawWriter writes to one socket the way (*net.TCPConn).Write does (all of
// b, waiting for room in the send buffer while honouring the write
// deadline, errors of the same shape: a *net.OpError with Op "write"), but
// with raw write(2) calls (see peekQueued). A loop keeps one for its
// destination; it allocates nothing per write.
type rawWriter struct {
	c   *net.TCPConn
	rc  syscall.RawConn
	b   []byte // what is left to write
	n   int    // written so far
	err error  // the write(2) error that ended the write
	fn  func(fd uintptr) bool
}

func newRawWriter(c *net.TCPConn) (*rawWriter, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &rawWriter{c: c, rc: rc}
	w.fn = func(fd uintptr) bool {
		for len(w.b) > 0 {
			n, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.b[0])), uintptr(len(w.b)))
			switch {
			case errno == unix.EINTR:
			case errno == unix.EAGAIN:
				return false // wait until writable, then call again
			case errno != 0:
				w.err = os.NewSyscallError("write", errno)
				return true
			case n == 0:
				w.err = io.ErrUnexpectedEOF // as internal/poll says of a write of nothing
				return true
			default:
				w.n += int(n)
				w.b = w.b[n:]
			}
		}
		return true
	}
	return w, nil
}

// write writes all of b, or returns why not with how much was written.
func (w *rawWriter) write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	n := w.n
	w.b = nil
	if err != nil {
		if op, ok := errors.AsType[*net.OpError](err); ok {
			op.Op = "write" // a deadline or a close, met while waiting: "raw-write" to net
		}
		return n, err
	}
	if w.err != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: w.c.LocalAddr(), Addr: w.c.RemoteAddr(), Err: w.err}
	}
	return n, nil
}
