package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/internal/echo"
)

// waitTimeout bounds every wait; a test that reaches it has failed.
const waitTimeout = 10 * time.Second

// fixture is a real control server behind httptest, an echo upstream and a
// client of the server.
type fixture struct {
	srv  *control.Server
	ts   *httptest.Server
	echo string // the echo upstream's address
	c    *client.Client
}

func newFixture(t *testing.T, opts control.Options, copts ...client.Option) *fixture {
	t.Helper()
	es, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := control.New(opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = srv.Close() // ends websockets and long polls
		ts.Close()
		_ = es.Close()
	})
	return &fixture{srv: srv, ts: ts, echo: es.Addr().String(), c: client.New(ts.URL, copts...)}
}

// ctx returns a context bounded by waitTimeout, cancelled when the test ends.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// createProxy creates a proxy in front of the echo upstream.
func (fx *fixture) createProxy(t *testing.T, spec api.ProxySpec) api.Proxy {
	t.Helper()
	if spec.Upstream == "" {
		spec.Upstream = fx.echo
	}
	p, err := fx.c.CreateProxy(ctx(t), spec)
	if err != nil {
		t.Fatalf("CreateProxy(%+v): %v", spec, err)
	}
	return p
}

// dial connects to addr; the connection is closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	return c
}

// echoOnce sends msg on c and checks that it comes back.
func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: got %q, %v; want %q", got, err, msg)
	}
}

// wantAPIError checks that err is an *api.Error matching want (by code)
// with want's HTTP status.
func wantAPIError(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
	var ae, we *api.Error
	if !errors.As(err, &ae) || !errors.As(want, &we) {
		t.Fatalf("%s: got %T, want *api.Error", what, err)
	}
	if ae.Status != we.Status {
		t.Errorf("%s: status %d, want %d", what, ae.Status, we.Status)
	}
	if ae.Message == "" {
		t.Errorf("%s: error has no message", what)
	}
}

// eventually calls cond until it reports true, failing the test after
// waitTimeout with what it last returned.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, waitTimeout, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
