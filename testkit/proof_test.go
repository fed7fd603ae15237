package testkit

// Proof that the checks catch real bugs: deliberately broken clients (and,
// through testswitch, a deliberately broken proxy pool) make them fail with
// a clear message, and correct ones make them pass.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/testswitch"
	"github.com/faultline-proxy/faultline/proxy"
)

// lineServer answers every line with "PONG\n" and, like a server with an
// idle timeout, closes a connection that stays idle for idle.
type lineServer struct {
	ln   net.Listener
	idle time.Duration
	wg   sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

func startLineServer(t testing.TB, idle time.Duration) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{ln: ln, idle: idle, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.close)
	return s
}

func (s *lineServer) addr() string { return s.ln.Addr().String() }

func (s *lineServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

// serve answers lines until the client is idle for s.idle, then closes.
func (s *lineServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(s.idle))
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		if _, err := io.WriteString(c, "PONG\n"); err != nil {
			return
		}
	}
}

func (s *lineServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// naivePool is a client connection pool with the classic bug: it puts a
// connection back after use and hands it out again without noticing that
// the server closed it meanwhile.
type naivePool struct {
	addr string

	mu   sync.Mutex // guards idle
	idle []net.Conn
}

func (p *naivePool) get() (net.Conn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil // the bug: no check that the server still has it
	}
	p.mu.Unlock()
	return net.DialTimeout("tcp", p.addr, waitTimeout)
}

// ping sends one request; the connection goes back to the pool on success.
func (p *naivePool) ping() error {
	c, err := p.get()
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, "PING\n"); err != nil {
		_ = c.Close()
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "PONG\n" {
		_ = c.Close()
		return errors.Join(errors.New("bad reply "+line), err)
	}
	_ = c.SetDeadline(time.Time{})
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	return nil
}

func (p *naivePool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		_ = c.Close()
	}
	p.idle = nil
}

func TestNoWriteAfterCloseCatchesANaivePool(t *testing.T) {
	srv := startLineServer(t, 100*time.Millisecond)
	px := NewProxy(t, srv.addr())
	pool := &naivePool{addr: px.Addr()}
	defer pool.close()

	if err := pool.ping(); err != nil {
		t.Fatalf("first ping: %v", err)
	}
	// The server closes the idle connection; the proxy relays its FIN.
	px.Await(proxy.EventHalfClosed, OnConn(1), InDir(proxy.Down))
	if err := pool.ping(); err == nil {
		t.Fatal("ping on the connection the server closed: got nil, want an error")
	}
	px.Await(proxy.EventClosed, OnConn(1))

	err := CheckNoWriteAfterClose(px.Events())
	if !errors.Is(err, ErrWriteAfterClose) {
		t.Fatalf("CheckNoWriteAfterClose: got %v, want ErrWriteAfterClose", err)
	}
	if want := "conn 1: the client wrote 5 bytes after the proxy relayed the upstream's FIN to it"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	t.Logf("as a failing test would print it:\n%v", err)
}

// httpThrough returns a transport whose every connection goes through px.
func httpThrough(px *Proxy) *http.Transport {
	d := &net.Dialer{Timeout: waitTimeout}
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", px.Addr())
	}}
}

// get fetches url with c and reads the whole body.
func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func TestNoWriteAfterClosePassesNetHTTP(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.IdleTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	px := NewProxy(t, srv.Listener.Addr().String())
	tr := httpThrough(px)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: waitTimeout}

	if err := get(client, srv.URL); err != nil {
		t.Fatalf("first GET: %v", err)
	}
	px.Await(proxy.EventHalfClosed, OnConn(1), InDir(proxy.Down))
	// net/http's transport notices the FIN on its idle connection and
	// closes it instead of reusing it.
	px.Await(proxy.EventClosed, OnConn(1))
	if err := get(client, srv.URL); err != nil {
		t.Fatalf("second GET: %v", err)
	}
	px.Await(proxy.EventAccepted, OnConn(2))
	if err := CheckNoWriteAfterClose(px.Events()); err != nil {
		t.Error(err)
	}
}

// forgetfulCall is a client call with a classic deadline bug: it computes
// its deadline and sets it on the wrong side (writes), so its read of the
// reply waits for ever.
func forgetfulCall(c net.Conn, req string, timeout time.Duration) error {
	_ = c.SetWriteDeadline(time.Now().Add(timeout)) // the bug: should be SetReadDeadline or SetDeadline
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	_, err := io.ReadFull(c, make([]byte, len(req)))
	return err
}

func TestGaveUpWithinCatchesAClientIgnoringItsDeadline(t *testing.T) {
	const deadline, bound = 200 * time.Millisecond, time.Second
	px := NewProxy(t, startEcho(t))
	c := dial(t, px.Addr())
	roundTrip(t, c, "warm")
	px.Inject(faults.Stall(false).WithDir(faults.Down))
	stall := px.Await(proxy.EventFaultFired, OnConn(1))

	called := make(chan error, 1)
	go func() { called <- forgetfulCall(c, "ping", deadline) }() // owned: ends when c is closed below
	time.Sleep(time.Until(stall.Time.Add(deadline + bound + 100*time.Millisecond)))

	err := CheckGaveUpWithin(px.Events(), deadline, bound)
	_ = c.Close()
	<-called
	if !errors.Is(err, ErrNoGiveUp) {
		t.Fatalf("CheckGaveUpWithin: got %v, want ErrNoGiveUp", err)
	}
	if want := "conn 1: the client has not given up"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	t.Logf("as a failing test would print it:\n%v", err)
}

func TestGaveUpWithinPassesNetHTTP(t *testing.T) {
	const deadline, bound = 300 * time.Millisecond, 2 * time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	px := NewProxy(t, srv.Listener.Addr().String())
	tr := httpThrough(px)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: deadline}

	px.Inject(faults.Stall(false).WithDir(faults.Down))
	err := get(client, srv.URL)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("GET through a stall: got %v, want a timeout", err)
	}
	px.Await(proxy.EventFaultFired, OnConn(1))
	px.Await(proxy.EventHalfClosed, OnConn(1), InDir(proxy.Up)) // the transport closed the connection
	if err := CheckGaveUpWithin(px.Events(), deadline, bound); err != nil {
		t.Error(err)
	}
}

// startSlowEcho starts an upstream that echoes each read after delay,
// closed when the test ends. It sends on got each time it has read.
func startSlowEcho(t testing.TB, delay time.Duration) (addr string, got <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	stop := make(chan struct{})
	read := make(chan struct{}, 64)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					select {
					case read <- struct{}{}:
					default:
					}
					select {
					case <-time.After(delay):
					case <-stop:
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), read
}

func TestNoInvalidReuseCatchesBrokenPoolRelease(t *testing.T) {
	tests := []struct {
		name   string
		broken bool
		// leave: the first client sends a request and hangs up before the
		// (slow) reply, so the upstream connection owes a reply; else it
		// gets its echo and resets its connection.
		leave bool
		want  string
	}{
		{name: "correct pool", broken: false},
		{name: "broken release", broken: true, want: "conn 2 borrowed upstream 1 after it was discarded (client-reset)"},
		{name: "correct pool, reply pending", broken: false, leave: true},
		{name: "broken release, reply pending", broken: true, leave: true, want: "conn 2 borrowed upstream 1 after it was discarded (reply-pending)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testswitch.BreakPoolRelease.Store(tt.broken)
			defer testswitch.BreakPoolRelease.Store(false)
			upstream, reason := startEcho(t), proxy.ReasonClientReset
			var upGot <-chan struct{}
			if tt.leave {
				upstream, upGot = startSlowEcho(t, 300*time.Millisecond)
				reason = proxy.ReasonReplyPending
			}
			px := NewProxy(t, upstream, WithPool(proxy.PoolConfig{}))

			c1 := dial(t, px.Addr())
			if tt.leave {
				if _, err := io.WriteString(c1, "one"); err != nil {
					t.Fatal(err)
				}
				// The client leaves once its request reached the upstream.
				select {
				case <-upGot:
				case <-time.After(waitTimeout):
					t.Fatal("the upstream read nothing")
				}
				_ = c1.Close()
			} else {
				roundTrip(t, c1, "one")
				_ = c1.SetLinger(0) // an abortive close: the upstream connection must not be reused
				_ = c1.Close()
			}
			px.Await(proxy.EventDiscarded, OnConn(1), WithReason(reason))

			c2 := dial(t, px.Addr())
			if tt.broken && tt.leave {
				// The late echo of "one" may reach this client: that is
				// the bug the check must report, not the test's concern.
				_ = c2.SetDeadline(time.Now().Add(waitTimeout))
				if _, err := io.WriteString(c2, "two"); err == nil {
					_, _ = io.ReadFull(c2, make([]byte, 3))
				}
			} else {
				roundTrip(t, c2, "two")
			}
			b := px.Await(proxy.EventBorrowed, OnConn(2))
			_ = c2.Close()
			px.Await(proxy.EventClosed, OnConn(2))

			err := CheckNoInvalidReuse(px.Events())
			if err := CheckInterruptsWithin(px.Events(), time.Second); err != nil {
				t.Error(err)
			}
			if !tt.broken {
				if err != nil || b.Reused {
					t.Errorf("got %v (second borrow %s), want nil and a fresh connection", err, b)
				}
				return
			}
			if !errors.Is(err, ErrInvalidReuse) {
				t.Fatalf("CheckNoInvalidReuse: got %v, want ErrInvalidReuse", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			t.Logf("as a failing test would print it:\n%v", err)
		})
	}
}
