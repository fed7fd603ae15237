package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control/api"
)

// hostRequest sends a request to the fixture with Host and Origin set as
// a browser would after DNS rebinding: the connection goes to the
// server's loopback address, the headers name the attacker's site.
func (fx *fixture) hostRequest(t *testing.T, method, path, host, origin, body string) (int, api.Error) {
	t.Helper()
	req, err := http.NewRequest(method, fx.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for k, v := range fx.hdr {
		req.Header[k] = v
	}
	resp, err := fx.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s with Host %q: %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("%s %s with Host %q: status %d, body %q is not a JSON error", method, path, host, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, e
}

// port is the fixture's port, which a rebinding attacker's page uses too:
// the browser connects to whatever its name resolves to, on the page's
// port.
func (fx *fixture) port(t *testing.T) string {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(fx.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDNSRebinding is the reproduction: a page on evil.example
// whose name rebinds to 127.0.0.1 sends Host: evil.example:P and Origin:
// http://evil.example:P. It must not read the API, create a proxy or
// open the websocket.
func TestDNSRebinding(t *testing.T) {
	fx := newFixture(t, Options{})
	evil := "evil.example:" + fx.port(t)
	origin := "http://" + evil

	if status, e := fx.hostRequest(t, "GET", "/api/v1/proxies", evil, origin, ""); status != http.StatusForbidden || e.Code != "forbidden_host" {
		t.Errorf("GET /api/v1/proxies as %s: got %d %+v, want 403 forbidden_host", evil, status, e)
	}
	spec := `{"name":"pwned","upstream":"` + fx.echo + `"}`
	if status, e := fx.hostRequest(t, "POST", "/api/v1/proxies", evil, origin, spec); status != http.StatusForbidden || e.Code != "forbidden_host" {
		t.Errorf("POST /api/v1/proxies as %s: got %d %+v, want 403 forbidden_host", evil, status, e)
	}
	if ps := fx.srv.Proxies(); len(ps) != 0 {
		t.Errorf("proxies after the refused POST: got %+v, want none", ps)
	}
	// Without an Origin too: the Host alone decides.
	if status, e := fx.hostRequest(t, "GET", "/api/v1/proxies", evil, "", ""); status != http.StatusForbidden || e.Code != "forbidden_host" {
		t.Errorf("GET /api/v1/proxies as %s without Origin: got %d %+v, want 403 forbidden_host", evil, status, e)
	}

	url := "ws" + strings.TrimPrefix(fx.ts.URL, "http") + "/api/v1/ws"
	c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Host": {evil}, "Origin": {origin}})
	if c != nil {
		c.Close()
		t.Errorf("websocket as %s: opened, want 403", evil)
	}
	if resp == nil {
		t.Fatalf("websocket as %s: no response: %v", evil, err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("websocket as %s: status %d, want 403", evil, resp.StatusCode)
	}

	// The same requests under the server's own names are served.
	for _, host := range []string{"127.0.0.1:" + fx.port(t), "localhost:" + fx.port(t)} {
		if status, e := fx.hostRequest(t, "GET", "/api/v1/proxies", host, "http://"+host, ""); status != http.StatusOK {
			t.Errorf("GET /api/v1/proxies as %s: got %d %+v, want 200", host, status, e)
		}
		c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Host": {host}, "Origin": {"http://" + host}})
		if err != nil {
			t.Errorf("websocket as %s: %v (%v)", host, err, resp)
			continue
		}
		c.Close()
	}
}

func TestHostCheck(t *testing.T) {
	fx := newFixture(t, Options{AllowHosts: []string{"ci-runner.internal", "Dash.Example:8470", "[fd00::1]"}})
	p := fx.port(t)
	tests := []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + p, http.StatusOK},
		{"127.0.0.1", http.StatusOK},
		{"127.42.0.7:" + p, http.StatusOK}, // all of 127.0.0.0/8
		{"[::1]:" + p, http.StatusOK},
		{"[::ffff:127.0.0.1]:" + p, http.StatusOK},
		{"localhost:" + p, http.StatusOK},
		{"LocalHost:" + p, http.StatusOK},
		{"localhost.:" + p, http.StatusOK},
		{"localhost", http.StatusOK},
		{"app.localhost:" + p, http.StatusOK}, // RFC 6761: never sent to DNS
		{"ci-runner.internal:" + p, http.StatusOK},
		{"ci-runner.internal", http.StatusOK},
		{"dash.example:8470", http.StatusOK},
		{"[fd00::1]:" + p, http.StatusOK},

		{"evil.example:" + p, http.StatusForbidden},
		{"evil.example", http.StatusForbidden},
		{"localhost.evil.example:" + p, http.StatusForbidden},
		{"127.0.0.1.evil.example:" + p, http.StatusForbidden},
		{"evillocalhost:" + p, http.StatusForbidden},
		{"0.0.0.0:" + p, http.StatusForbidden},
		{"10.0.0.1:" + p, http.StatusForbidden},
		{"[fd00::2]:" + p, http.StatusForbidden},
		{"dash.example:" + p, http.StatusForbidden}, // allowed on port 8470 only
		{"sub.ci-runner.internal:" + p, http.StatusForbidden},
	}
	for _, tt := range tests {
		// /healthz and /metrics too: nothing is served under a foreign name.
		for _, path := range []string{"/api/v1/proxies", "/api/v1/healthz", "/metrics"} {
			status, e := fx.hostRequest(t, "GET", path, tt.host, "", "")
			if status != tt.want {
				t.Errorf("GET %s with Host %q: got %d %+v, want %d", path, tt.host, status, e, tt.want)
			}
			if tt.want == http.StatusForbidden && e.Code != api.ErrForbiddenHost.Code {
				t.Errorf("GET %s with Host %q: code %q, want %q", path, tt.host, e.Code, api.ErrForbiddenHost.Code)
			}
		}
	}
}

// TestHostEmpty: a request without a Host (HTTP/1.0) is refused; no
// browser sends one, and nothing then says which server it meant.
func TestHostEmpty(t *testing.T) {
	fx := newFixture(t, Options{})
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(fx.ts.URL, "http://"), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, "GET /api/v1/proxies HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.0 403 ") || !strings.Contains(string(b), `"forbidden_host"`) {
		t.Errorf("HTTP/1.0 request without Host: got %q, want 403 forbidden_host", b)
	}
}

// TestHostLocalAddr: a server listening beyond loopback is also reached by
// the address the connection came in on (an IP literal, which no DNS
// answer can produce).
func TestHostLocalAddr(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	tests := []struct {
		host string
		want int
	}{
		{"192.0.2.10:8470", http.StatusOK},
		{"192.0.2.10", http.StatusOK},
		{"192.0.2.11:8470", http.StatusForbidden},
		{"evil.example:8470", http.StatusForbidden},
	}
	for _, tt := range tests {
		req, err := http.NewRequest("GET", "http://"+tt.host+"/api/v1/proxies", nil)
		if err != nil {
			t.Fatal(err)
		}
		local := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8470}
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("Host %q on a connection to %s: got %d, want %d", tt.host, local, rec.Code, tt.want)
		}
	}
}

func TestOriginCheck(t *testing.T) {
	fx := newFixture(t, Options{AllowOrigins: []string{"http://ui.example", "chrome-extension://abcdef"}})
	own := "127.0.0.1:" + fx.port(t)
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusOK},
		{"http://" + own, http.StatusOK},
		{"HTTP://" + own, http.StatusOK},
		{"https://" + own, http.StatusOK},
		{"http://ui.example", http.StatusOK},
		{"chrome-extension://abcdef", http.StatusOK},

		// The right host, the wrong scheme: not a page this server served.
		{"chrome-extension://" + own, http.StatusForbidden},
		{"file://" + own, http.StatusForbidden},
		{"ws://" + own, http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"http://localhost:" + fx.port(t), http.StatusForbidden}, // another origin, though loopback
		{"http://127.0.0.1:1", http.StatusForbidden},
		{"http://evil.example", http.StatusForbidden},
		{"http://user@" + own, http.StatusForbidden},
		{"http://" + own + "/path", http.StatusForbidden},
		{"chrome-extension://other", http.StatusForbidden},
		{"http://" + own + "%zz", http.StatusForbidden},
	}
	for _, tt := range tests {
		status, e := fx.hostRequest(t, "GET", "/api/v1/proxies", own, tt.origin, "")
		if status != tt.want {
			t.Errorf("Origin %q: got %d %+v, want %d", tt.origin, status, e, tt.want)
		}
		if tt.want == http.StatusForbidden && e.Code != api.ErrForbiddenOrigin.Code {
			t.Errorf("Origin %q: code %q, want %q", tt.origin, e.Code, api.ErrForbiddenOrigin.Code)
		}
	}
	// A Host without a port matches an Origin on the scheme's default port.
	for _, tt := range []struct {
		host, origin string
		want         int
	}{
		{"localhost", "http://localhost", http.StatusOK},
		{"localhost", "http://localhost:80", http.StatusOK},
		{"localhost:80", "http://localhost", http.StatusOK},
		{"localhost", "https://localhost", http.StatusOK},
		{"localhost:443", "https://localhost", http.StatusOK},
		{"localhost:443", "http://localhost", http.StatusForbidden},
	} {
		if status, e := fx.hostRequest(t, "GET", "/api/v1/proxies", tt.host, tt.origin, ""); status != tt.want {
			t.Errorf("Host %q, Origin %q: got %d %+v, want %d", tt.host, tt.origin, status, e, tt.want)
		}
	}
}

// TestBearerCaseInsensitive: RFC 7235 auth schemes are case-insensitive.
func TestBearerCaseInsensitive(t *testing.T) {
	fx := newFixture(t, Options{Token: "s3cret"})
	tests := []struct {
		auth string
		want int
	}{
		{"Bearer s3cret", http.StatusOK},
		{"bearer s3cret", http.StatusOK},
		{"BEARER s3cret", http.StatusOK},
		{"bEaReR s3cret", http.StatusOK},
		{"Bearer   s3cret", http.StatusOK},
		{"Bearer s3cretx", http.StatusUnauthorized},
		{"Bearer S3CRET", http.StatusUnauthorized}, // the token itself is not
		{"Bearers3cret", http.StatusUnauthorized},
		{"Basic s3cret", http.StatusUnauthorized},
		{"s3cret", http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
		{"", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		fx.hdr = http.Header{"Authorization": {tt.auth}}
		if status, e := fx.hostRequest(t, "GET", "/api/v1/proxies", "127.0.0.1:"+fx.port(t), "", ""); status != tt.want {
			t.Errorf("Authorization %q: got %d %+v, want %d", tt.auth, status, e, tt.want)
		}
	}
	url := "ws" + strings.TrimPrefix(fx.ts.URL, "http") + "/api/v1/ws"
	c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"bearer s3cret"}})
	if err != nil {
		t.Fatalf("websocket with a lower-case bearer: %v (%v)", err, resp)
	}
	c.Close()
}

// TestListenBeyondLoopback: without a token, Listen stays on loopback;
// with one, or Insecure, an address beyond it passes the check (judged
// here without binding one).
func TestListenBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "[2001:db8::1]:0"} {
		srv := New(Options{})
		if _, err := srv.Listen(addr); !errors.Is(err, ErrInsecureListen) {
			t.Errorf("Listen(%q) without a token: got %v, want ErrInsecureListen", addr, err)
		}
		_ = srv.Close()
		for _, opts := range []Options{{Token: "t"}, {Insecure: true}} {
			if err := New(opts).checkExposure(addr, nil); err != nil {
				t.Errorf("%q with %+v: %v, want no objection", addr, opts, err)
			}
		}
	}
	if err := New(Options{}).checkExposure("myhost:0", &net.TCPAddr{IP: net.ParseIP("192.0.2.1")}); !errors.Is(err, ErrInsecureListen) {
		t.Errorf("a name bound beyond loopback: got %v, want ErrInsecureListen", err)
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "127.0.0.2:0"} {
		logs := &logBuffer{}
		srv := New(Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		got, err := srv.Listen(addr)
		if err != nil {
			t.Errorf("Listen(%q) without a token: %v", addr, err)
			_ = srv.Close()
			continue
		}
		_ = srv.Close()
		if l := logs.lines("control API exposed"); len(l) != 1 || !strings.Contains(l[0], "addr="+got.String()) || !strings.Contains(l[0], "token=none") {
			t.Errorf("Listen(%q) logged %q, want one line with its address and token=none", addr, l)
		}
	}
}

// logBuffer collects a server's log lines; the server writes from its own
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines that contain s.
func (b *logBuffer) lines(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for l := range strings.Lines(b.buf.String()) {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestHostListenName: the host name Listen was given is one of the
// server's names (judged here without resolving one).
func TestHostListenName(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	srv.rememberName("Build-Box.:8470")
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"build-box:8470", true},
		{"BUILD-BOX", true},
		{"build-box.example:8470", false},
	} {
		if got := srv.hostOK(httptest.NewRequest("GET", "http://"+tt.host+"/", nil)); got != tt.want {
			t.Errorf("Host %q after Listen(\"Build-Box.:8470\"): got %v, want %v", tt.host, got, tt.want)
		}
	}
	srv2 := New(Options{})
	defer srv2.Close()
	srv2.rememberName("192.0.2.7:8470") // an address is not a name
	if srv2.listenName.Load() != nil {
		t.Errorf("Listen on an address kept it as a name")
	}
}

// TestHostMountedOpen: on a server deliberately open to the network
// (Insecure), the mounted API (toxiproxy's) answers any Host on a request
// that came in beyond loopback, as toxiproxy does for clients that use a
// service name; faultline's own API, a loopback arrival (what a
// DNS-rebinding page on the same machine makes) and a server that is not
// Insecure still check it.
func TestHostMountedOpen(t *testing.T) {
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	tests := []struct {
		name     string
		insecure bool
		path     string
		local    string
		want     bool
	}{
		{name: "mounted, open, from the network", insecure: true, path: "/proxies", local: "10.1.2.3", want: true},
		{name: "own API, open, from the network", insecure: true, path: "/api/v1/proxies", local: "10.1.2.3"},
		{name: "metrics, open, from the network", insecure: true, path: "/metrics", local: "10.1.2.3"},
		{name: "mounted, open, on loopback", insecure: true, path: "/proxies", local: "127.0.0.1"},
		{name: "mounted, not open, from the network", path: "/proxies", local: "10.1.2.3"},
	}
	for _, tt := range tests {
		srv := New(Options{Insecure: tt.insecure})
		srv.Mount(mounted)
		r := httptest.NewRequest("GET", "http://toxiproxy:8474"+tt.path, nil)
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.ParseIP(tt.local), Port: 8474}))
		if got := srv.hostOK(r); got != tt.want {
			t.Errorf("%s: hostOK(Host toxiproxy:8474) = %v, want %v", tt.name, got, tt.want)
		}
		_ = srv.Close()
	}
}
