package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/internal/loopback"
)

// waitTimeout bounds every wait in these tests. It is generous: a test that
// reaches it has failed, not run slowly.
const waitTimeout = 10 * time.Second

// startProxy starts a proxy on loopback and closes it when the test ends.
func startProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	p, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// recorder keeps every event of a proxy.
type recorder struct {
	mu     sync.Mutex // guards events and wake
	events []Event
	wake   chan struct{} // closed and replaced on every event
}

func record(t testing.TB, p *Proxy) *recorder {
	r := &recorder{wake: make(chan struct{})}
	cancel := p.Subscribe(func(e Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		close(r.wake)
		r.wake = make(chan struct{})
		r.mu.Unlock()
	})
	t.Cleanup(cancel)
	return r
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// of returns the events of one kind.
func (r *recorder) of(kind EventKind) []Event {
	var out []Event
	for _, e := range r.all() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits for the first event matching match, failing the test after
// waitTimeout with the log so far.
func (r *recorder) waitFor(t testing.TB, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if match(e) {
				r.mu.Unlock()
				return e
			}
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("no %s event after %s; events:\n%s", what, waitTimeout, r)
			return Event{}
		}
	}
}

// waitKind waits for an event of kind on downstream connection conn (any
// connection if conn is 0).
func (r *recorder) waitKind(t testing.TB, kind EventKind, conn uint64) Event {
	t.Helper()
	return r.waitFor(t, fmt.Sprintf("%s(conn %d)", kind, conn), func(e Event) bool {
		return e.Kind == kind && (conn == 0 || e.Conn == conn)
	})
}

func (r *recorder) String() string {
	var b strings.Builder
	for _, e := range r.all() {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// server is an upstream for tests. With a handler, it runs the handler for
// every connection; without, it hands each accepted connection to the test
// through accepted. Either way it closes them all when the test ends.
type server struct {
	ln       *net.TCPListener
	accepted chan *net.TCPConn
	handler  func(*net.TCPConn)
	wg       sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns []*net.TCPConn
}

func startServer(t testing.TB, handler func(*net.TCPConn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &server{ln: ln.(*net.TCPListener), accepted: make(chan *net.TCPConn, 128), handler: handler}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.close)
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		if s.handler == nil {
			s.accepted <- c
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handler(c)
		}()
	}
}

func (s *server) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// next returns the next connection the server accepted.
func (s *server) next(t testing.TB) *net.TCPConn {
	t.Helper()
	select {
	case c := <-s.accepted:
		return c
	case <-time.After(waitTimeout):
		t.Fatalf("upstream accepted no connection in %s", waitTimeout)
		return nil
	}
}

// echoHandler echoes until EOF, then half-closes and closes.
func echoHandler(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
	_ = c.Close()
}

// dial connects to addr and closes the connection when the test ends.
func dial(t testing.TB, addr string) *net.TCPConn { t.Helper(); return loopback.Dial(t, addr) }

// roundTrip writes msg and reads len(msg) bytes back, failing the test if
// they differ.
func roundTrip(t testing.TB, c net.Conn, msg string) { t.Helper(); loopback.RoundTrip(t, c, msg) }

// readAll reads c to EOF within waitTimeout.
func readAll(t testing.TB, c net.Conn) ([]byte, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	defer c.SetReadDeadline(time.Time{})
	return io.ReadAll(c)
}

// readErr reads from c until an error and returns it (nil for EOF).
func readErr(t testing.TB, c net.Conn) error {
	t.Helper()
	_, err := readAll(t, c)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// liveConns starts an echo upstream and a proxy in dial mode in front of
// it, and opens n connections through the proxy, each past one round trip.
func liveConns(t testing.TB, n int) (*Proxy, []*net.TCPConn) {
	t.Helper()
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr()})
	cs := make([]*net.TCPConn, n)
	for i := range cs {
		cs[i] = dial(t, p.Addr().String())
		roundTrip(t, cs[i], "x")
	}
	return p, cs
}
