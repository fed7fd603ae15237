package toxiproxy_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	// The official Go client, a test dependency pinned in go.mod at
	// v2.12.0, the toxiproxy release whose API this package answers
	// (docs/toxiproxy.md): the tests drive faultline as toxiproxy's users do.
	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/toxiproxy"
)

// fixture is a control server serving both APIs on one loopback port.
type fixture struct {
	cs   *control.Server
	tp   *toxiproxy.Server
	addr string
	c    *toxiclient.Client
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	cs := control.New(control.Options{})
	tp := toxiproxy.New(cs, toxiproxy.Options{Seed: 7})
	cs.Mount(tp)
	a, err := cs.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return &fixture{cs: cs, tp: tp, addr: a.String(), c: toxiclient.NewClient(a.String())}
}

// server is a loopback TCP server running handle on each connection; it
// closes them all and waits for its goroutines at cleanup.
type server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newServer(t testing.TB, handle func(c *net.TCPConn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// echo copies what it reads back, and answers a FIN with one.
func echo(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

// dial connects to addr, closing the connection at cleanup.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads len(msg) bytes back, returning how long
// it took.
func roundTrip(t testing.TB, c net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("read %q, want %q", buf, msg)
	}
	return time.Since(start)
}

// apiStatus returns the HTTP status in a toxiproxy client error
// ("HTTP 404: proxy not found"), or 0.
func apiStatus(err error) int {
	var ae *toxiclient.ApiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// do sends a raw request to the fixture, as a client that is not the Go
// client would (no Content-Type unless given).
func (f *fixture) do(t testing.TB, method, path, body string, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+f.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// want checks a reply's status and body.
func (r reply) want(t testing.TB, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("got %d %q, want %d %q", r.status, r.body, status, body)
	}
}

// wantError checks a reply is toxiproxy's error: http.Error with a JSON
// body {"error":msg,"status":status}.
func (r reply) wantError(t testing.TB, status int, msg string) {
	t.Helper()
	var e struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || r.status != status || e.Status != status || !strings.HasPrefix(e.Error, msg) {
		t.Fatalf("got %d %q, want %d with error %q", r.status, r.body, status, msg)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || !strings.HasSuffix(r.body, "\n") {
		t.Fatalf("error Content-Type %q, body %q: want toxiproxy's (http.Error's)", ct, r.body)
	}
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
