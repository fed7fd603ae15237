package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// failListens makes the next n calls of listenProxy fail with EADDRINUSE,
// as when another program takes the port between a proxy's stop and its
// restart, and puts proxy.Listen back when the test ends.
func failListens(t *testing.T, n int32) {
	var left atomic.Int32
	left.Store(n)
	listenProxy = func(addr string, cfg proxy.Config) (*proxy.Proxy, error) {
		if left.Add(-1) >= 0 {
			return nil, fmt.Errorf("listen tcp %s: %w", addr, syscall.EADDRINUSE)
		}
		return proxy.Listen(addr, cfg)
	}
	t.Cleanup(func() { listenProxy = proxy.Listen })
}

// TestRestartFailure changes a running proxy's upstream while its port
// cannot be listened on again: the change is refused, and the proxy is back
// as it was, or, when putting it back fails too, disabled with its old
// settings and faults, and the error says so.
func TestRestartFailure(t *testing.T) {
	fx := newFixture(t, Options{})
	other := newFixture(t, Options{}).echo
	p := fx.createProxy(t, api.ProxySpec{Name: "db", Listen: "127.0.0.1:0"})
	fx.call(t, "POST", "/api/v1/proxies/db/faults", faults.Latency(time.Millisecond, 0).WithName("slow"), http.StatusCreated, nil)
	change := map[string]any{"upstream": other}

	refused := func(wantNote bool) {
		t.Helper()
		status, b := fx.do(t, "PATCH", "/api/v1/proxies/db", change)
		var e api.Error
		if err := json.Unmarshal(b, &e); err != nil || status != http.StatusConflict || e.Code != "port_in_use" {
			t.Fatalf("PATCH while the port is taken: %d %s; want 409 port_in_use", status, b)
		}
		if got := strings.Contains(e.Message, "now disabled"); got != wantNote {
			t.Errorf("error %q: says the proxy is now disabled: %v, want %v", e.Message, got, wantNote)
		}
	}
	check := func(enabled bool) {
		t.Helper()
		var got api.Proxy
		fx.call(t, "GET", "/api/v1/proxies/db", nil, http.StatusOK, &got)
		if got.Enabled != enabled || got.Upstream != fx.echo || got.Listen != p.Listen || got.Faults != 1 {
			t.Errorf("after the refused change: %+v; want enabled %v, upstream %s, listen %s, 1 fault", got, enabled, fx.echo, p.Listen)
		}
	}

	// The restart fails, putting it back works.
	failListens(t, 1)
	refused(false)
	check(true)
	echoOnce(t, p.Listen, "still here")

	// Both fail: the proxy stays, disabled, as it was.
	failListens(t, 2)
	refused(true)
	check(false)
	fx.call(t, "PATCH", "/api/v1/proxies/db", map[string]any{"enabled": true}, http.StatusOK, nil)
	check(true)
	echoOnce(t, p.Listen, "back")
}
