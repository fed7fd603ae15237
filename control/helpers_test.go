package control

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/internal/echo"
)

const waitTimeout = 5 * time.Second

// fixture is a control server behind httptest and an echo upstream.
type fixture struct {
	srv  *Server
	ts   *httptest.Server
	echo string // the echo upstream's address
	hdr  http.Header
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	es, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = srv.Close() // ends websockets and long polls first
		ts.Close()
		_ = es.Close()
	})
	return &fixture{srv: srv, ts: ts, echo: es.Addr().String(), hdr: http.Header{}}
}

// do sends a request and returns the status and body.
func (fx *fixture) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	status, b, err := send(fx.ts, fx.hdr, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, b
}

// send is fixture.do for any goroutine: it returns an error instead of
// failing the test. body is sent as is if a string or []byte, else as
// JSON.
func send(ts *httptest.Server, hdr http.Header, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// call sends a request, fails unless the status is want, and decodes the
// body into out (if not nil).
func (fx *fixture) call(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	status, b := fx.do(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s: status %d, body %s; want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// wantError sends a request and fails unless it is refused with status and
// code in a JSON error body.
func (fx *fixture) wantError(t *testing.T, method, path string, body any, status int, code string) {
	t.Helper()
	got, b := fx.do(t, method, path, body)
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil || got != status || e.Code != code || e.Message == "" {
		t.Errorf("%s %s: got %d %s; want %d with code %q and a message", method, path, got, b, status, code)
	}
}

func (fx *fixture) createProxy(t *testing.T, spec api.ProxySpec) api.Proxy {
	t.Helper()
	if spec.Upstream == "" {
		spec.Upstream = fx.echo
	}
	var p api.Proxy
	fx.call(t, "POST", "/api/v1/proxies", spec, http.StatusCreated, &p)
	return p
}

// echoOnce connects to addr, sends msg and reads it back.
func echoOnce(t *testing.T, addr, msg string) time.Duration {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	start := time.Now()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo via %s: got %q, %v; want %q", addr, buf, err, msg)
	}
	return time.Since(start)
}
