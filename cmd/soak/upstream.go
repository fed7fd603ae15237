package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// upstream is a loopback server the harness runs in-process: an echo
// server or a request/response server. Close stops it and waits for every
// goroutine it started.
type upstream struct {
	ln      net.Listener
	serve   func(c *net.TCPConn)
	stop    chan struct{} // closed by Close
	wg      sync.WaitGroup
	mu      sync.Mutex // guards conns
	conns   map[*net.TCPConn]struct{}
	closeMu sync.Once
}

func startUpstream(serve func(up *upstream, c *net.TCPConn)) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{ln: ln, stop: make(chan struct{}), conns: make(map[*net.TCPConn]struct{})}
	u.serve = func(c *net.TCPConn) { serve(u, c) }
	u.wg.Add(1)
	go u.acceptLoop()
	return u, nil
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) acceptLoop() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // EMFILE and the like: try again
			continue
		}
		tc := c.(*net.TCPConn)
		u.mu.Lock()
		select {
		case <-u.stop:
			u.mu.Unlock()
			tc.Close()
			continue
		default:
		}
		u.conns[tc] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		go func() {
			defer u.wg.Done()
			defer func() {
				u.mu.Lock()
				delete(u.conns, tc)
				u.mu.Unlock()
				tc.Close()
			}()
			u.serve(tc)
		}()
	}
}

// Close stops accepting, closes every connection and waits.
func (u *upstream) Close() {
	u.closeMu.Do(func() {
		u.mu.Lock()
		close(u.stop)
		for c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.ln.Close()
		u.wg.Wait()
	})
}

// serveEcho writes back every byte it reads; at the client's FIN it sends
// its own once all is written.
func serveEcho(_ *upstream, c *net.TCPConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				_ = c.CloseWrite()
			}
			return
		}
	}
}

// rrServer answers each request frame with the reply that replyPayload
// defines for its conn and seq, after replyDelay, one request at a time per
// connection, as a request/response server does. A frame that is not one a
// client sent whole (bad magic, length or checksum) is a violation: the
// proxy delivered wrong bytes upstream.
type rrServer struct {
	seed     uint64
	maxDelay time.Duration
	report   func(kind, detail string)
}

func (s *rrServer) serve(u *upstream, c *net.TCPConn) {
	br := bufio.NewReaderSize(c, 16<<10)
	hb := make([]byte, headerLen)
	var lastConn uint64
	for {
		if _, err := io.ReadFull(br, hb); err != nil {
			if err == io.EOF {
				_ = c.CloseWrite()
			}
			return // a partial header at EOF or reset: the connection broke
		}
		h, err := parseHeader(hb)
		if err == nil && h.magic != magicRequest {
			err = fmt.Errorf("%w: a reply's magic in a request", errBadFrame)
		}
		if err != nil {
			s.report("upstream-bad-frame", fmt.Sprintf("request/response upstream read a bad header %x after a request of conn %d: %v", hb, lastConn, err))
			return
		}
		payload := make([]byte, h.length)
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		if err := checkSum(hb, payload); err != nil {
			s.report("upstream-bad-frame", fmt.Sprintf("request/response upstream: request of conn %d seq %d: %v", h.conn, h.seq, err))
			return
		}
		lastConn = h.conn
		if d := replyDelay(s.seed, h.conn, h.seq, int64(s.maxDelay)); d > 0 {
			t := time.NewTimer(time.Duration(d))
			select {
			case <-t.C:
			case <-u.stop:
				t.Stop()
				return
			}
		}
		if _, err := c.Write(frame(magicReply, h.conn, h.seq, replyPayload(s.seed, h.conn, h.seq))); err != nil {
			return
		}
	}
}
