package control

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
)

func TestProxyLifecycle(t *testing.T) {
	fx := newFixture(t, Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "db", Listen: "127.0.0.1:0", Mode: "pool", Pool: api.PoolSpec{Size: 4}})
	if strings.HasSuffix(p.Listen, ":0") || !p.Enabled || p.Mode != "pool" || p.Pool.Size != 4 {
		t.Fatalf("created %+v: want a real port, enabled, pool of 4", p)
	}
	echoOnce(t, p.Listen, "hello")

	var list []api.Proxy
	fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Name != "db" || list[0].Listen != p.Listen {
		t.Errorf("list = %+v, want [db on %s]", list, p.Listen)
	}
	var got api.Proxy
	fx.call(t, "GET", "/api/v1/proxies/db", nil, http.StatusOK, &got)
	if got.Name != "db" || got.Upstream != fx.echo {
		t.Errorf("get = %+v", got)
	}

	// Disable: nothing listens; enable: the same port again.
	fx.call(t, "PATCH", "/api/v1/proxies/db", map[string]any{"enabled": false}, http.StatusOK, &got)
	if got.Enabled {
		t.Errorf("after disabling: %+v", got)
	}
	// It reports the settings it will run with, defaults filled in, as it
	// did while enabled.
	if got.DialTimeout != p.DialTimeout || got.Pool != p.Pool || got.Seed != p.Seed || got.Mode != p.Mode || p.DialTimeout == 0 || p.Seed == 0 {
		t.Errorf("disabled, it reports %+v; want the settings it ran with: %+v", got, p)
	}
	if c, err := net.Dial("tcp", p.Listen); err == nil {
		c.Close()
		t.Errorf("dial %s while disabled: connected, want refused", p.Listen)
	}
	// Faults added while disabled wait for the proxy.
	fx.call(t, "POST", "/api/v1/proxies/db/faults", faults.Latency(200*time.Millisecond, 0).WithName("slow"), http.StatusCreated, nil)
	fx.call(t, "PATCH", "/api/v1/proxies/db", map[string]any{"enabled": true}, http.StatusOK, &got)
	if !got.Enabled || got.Listen != p.Listen || got.Faults != 1 {
		t.Errorf("after enabling: %+v, want enabled on %s with 1 fault", got, p.Listen)
	}
	if took := echoOnce(t, p.Listen, "x"); took < 200*time.Millisecond {
		t.Errorf("round trip took %s with a 200ms latency fault held while disabled", took)
	}

	// Changing the upstream restarts the proxy; its faults stay.
	other := newFixture(t, Options{}).echo
	fx.call(t, "PATCH", "/api/v1/proxies/db", map[string]any{"upstream": other, "mode": "dial"}, http.StatusOK, &got)
	if got.Upstream != other || got.Mode != "dial" || got.Listen != p.Listen || got.Faults != 1 {
		t.Errorf("after update: %+v", got)
	}
	echoOnce(t, p.Listen, "again")

	fx.call(t, "DELETE", "/api/v1/proxies/db", nil, http.StatusNoContent, nil)
	fx.wantError(t, "GET", "/api/v1/proxies/db", nil, http.StatusNotFound, "not_found")
	if c, err := net.Dial("tcp", p.Listen); err == nil {
		c.Close()
		t.Errorf("dial %s after delete: connected", p.Listen)
	}
}

func TestFaultEndpoints(t *testing.T) {
	fx := newFixture(t, Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "svc"})
	var f faults.Fault
	fx.call(t, "POST", "/api/v1/proxies/svc/faults", `{"name":"slow","kind":"latency","dir":"down","delay":"300ms"}`, http.StatusCreated, &f)
	if f.Name != "slow" || f.Delay != 300*time.Millisecond || f.Target.Which != faults.All {
		t.Errorf("added %+v", f)
	}
	if took := echoOnce(t, p.Listen, "a"); took < 300*time.Millisecond {
		t.Errorf("round trip took %s under a 300ms latency", took)
	}
	var list []faults.Fault
	fx.call(t, "GET", "/api/v1/proxies/svc/faults", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Name != "slow" {
		t.Errorf("list = %+v", list)
	}
	_, raw := fx.do(t, "GET", "/api/v1/proxies/svc/faults/slow", nil)
	if !strings.Contains(string(raw), `"delay":"300ms"`) {
		t.Errorf("fault JSON %s: want the delay as a duration string", raw)
	}
	fx.call(t, "PUT", "/api/v1/proxies/svc/faults/slow", `{"kind":"latency","dir":"down","delay":"1ms"}`, http.StatusOK, &f)
	if f.Delay != time.Millisecond {
		t.Errorf("updated %+v", f)
	}
	if took := echoOnce(t, p.Listen, "b"); took >= 300*time.Millisecond {
		t.Errorf("round trip took %s after the update to 1ms", took)
	}
	fx.call(t, "POST", "/api/v1/proxies/svc/faults", `{"kind":"stall"}`, http.StatusCreated, &f)
	if f.Name == "" {
		t.Errorf("unnamed fault got no name: %+v", f)
	}
	fx.call(t, "DELETE", "/api/v1/proxies/svc/faults/slow", nil, http.StatusNoContent, nil)
	fx.wantError(t, "GET", "/api/v1/proxies/svc/faults/slow", nil, http.StatusNotFound, "not_found")
	fx.call(t, "DELETE", "/api/v1/proxies/svc/faults", nil, http.StatusNoContent, nil)
	fx.call(t, "GET", "/api/v1/proxies/svc/faults", nil, http.StatusOK, &list)
	if len(list) != 0 {
		t.Errorf("after clearing: %+v", list)
	}
	echoOnce(t, p.Listen, "c")
}

// state is everything a bad request must leave alone.
func (fx *fixture) state(t *testing.T) string {
	t.Helper()
	var out strings.Builder
	var list []api.Proxy
	fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, &list)
	for _, p := range list {
		p.Conns = 0
		fmt.Fprintf(&out, "%+v\n", p)
		_, b := fx.do(t, "GET", "/api/v1/proxies/"+p.Name+"/faults", nil)
		out.Write(b)
	}
	return out.String()
}

func TestBadRequestsChangeNothing(t *testing.T) {
	fx := newFixture(t, Options{MaxBody: 4096})
	a := fx.createProxy(t, api.ProxySpec{Name: "a", Mode: "pool"})
	fx.createProxy(t, api.ProxySpec{Name: "b"})
	fx.call(t, "POST", "/api/v1/proxies/a/faults", faults.Latency(time.Millisecond, 0).WithName("lat"), http.StatusCreated, nil)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	before := fx.state(t)

	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
	}{
		{"bad JSON", "POST", "/api/v1/proxies", `{"name":`, 400, "bad_json"},
		{"two values", "POST", "/api/v1/proxies", `{"name":"c","upstream":"127.0.0.1:1"} {}`, 400, "bad_json"},
		{"unknown field", "POST", "/api/v1/proxies", `{"name":"c","upstream":"127.0.0.1:1","colour":1}`, 400, "bad_request"},
		{"wrong type", "POST", "/api/v1/proxies", `{"name":"c","upstream":5}`, 400, "bad_request"},
		{"bad name", "POST", "/api/v1/proxies", `{"name":"a b","upstream":"127.0.0.1:1"}`, 400, "bad_request"},
		{"proxy named ..", "POST", "/api/v1/proxies", `{"name":"..","upstream":"127.0.0.1:1"}`, 400, "bad_request"},
		{"proxy named .", "POST", "/api/v1/proxies", `{"name":".","upstream":"127.0.0.1:1"}`, 400, "bad_request"},
		{"no upstream", "POST", "/api/v1/proxies", `{"name":"c"}`, 400, "bad_request"},
		{"bad mode", "POST", "/api/v1/proxies", `{"name":"c","upstream":"127.0.0.1:1","mode":"ring"}`, 400, "bad_request"},
		{"bad initial fault", "POST", "/api/v1/proxies", `{"name":"c","upstream":"127.0.0.1:1","faults":[{"kind":"latency","delay":"1ms"},{"kind":"warp"}]}`, 400, "unknown_kind"},
		{"name taken", "POST", "/api/v1/proxies", api.ProxySpec{Name: "a", Upstream: "127.0.0.1:1"}, 409, "name_taken"},
		{"port in use", "POST", "/api/v1/proxies", api.ProxySpec{Name: "c", Upstream: "127.0.0.1:1", Listen: busy.Addr().String()}, 409, "port_in_use"},
		{"move to a busy port", "PATCH", "/api/v1/proxies/a", map[string]any{"listen": busy.Addr().String()}, 409, "port_in_use"},
		{"update unknown proxy", "PATCH", "/api/v1/proxies/zz", map[string]any{"enabled": false}, 404, "not_found"},
		{"update bad mode", "PATCH", "/api/v1/proxies/a", map[string]any{"mode": "ring"}, 400, "bad_request"},
		{"too large", "POST", "/api/v1/proxies", `{"name":"` + strings.Repeat("x", 5000) + `"}`, 413, "body_too_large"},
		{"unknown kind", "POST", "/api/v1/proxies/a/faults", `{"kind":"warp"}`, 400, "unknown_kind"},
		{"bad fault field", "POST", "/api/v1/proxies/a/faults", `{"kind":"latency","rate":5}`, 400, "bad_fault"},
		{"duration as number", "POST", "/api/v1/proxies/a/faults", `{"kind":"latency","delay":150}`, 400, "bad_fault"},
		{"unknown fault field", "POST", "/api/v1/proxies/a/faults", `{"kind":"latency","dealy":"1s"}`, 400, "bad_fault"},
		{"stale on dial mode", "POST", "/api/v1/proxies/b/faults", `{"kind":"stale","mode":"eof"}`, 400, "bad_fault"},
		{"fault name taken", "POST", "/api/v1/proxies/a/faults", `{"name":"lat","kind":"stall"}`, 409, "name_taken"},
		{"fault on unknown proxy", "POST", "/api/v1/proxies/zz/faults", `{"kind":"stall"}`, 404, "not_found"},
		{"update unknown fault", "PUT", "/api/v1/proxies/a/faults/nope", `{"kind":"stall"}`, 404, "not_found"},
		{"update changes kind", "PUT", "/api/v1/proxies/a/faults/lat", `{"kind":"stall"}`, 400, "bad_fault"},
		{"update renames", "PUT", "/api/v1/proxies/a/faults/lat", `{"name":"other","kind":"latency","delay":"1ms"}`, 400, "bad_request"},
		{"remove unknown fault", "DELETE", "/api/v1/proxies/a/faults/nope", nil, 404, "not_found"},
		{"fault named ..", "POST", "/api/v1/proxies/a/faults", `{"name":"..","kind":"stall"}`, 400, "bad_fault"},
		{"fault name with a slash", "POST", "/api/v1/proxies/a/faults", `{"name":"x/y","kind":"stall"}`, 400, "bad_fault"},
		// Paths the mux would resolve to another endpoint, keeping the
		// method: the proxy, every fault, the fault lat.
		{"remove fault ..", "DELETE", "/api/v1/proxies/a/faults/..", nil, 404, "not_found"},
		{"remove fault .", "DELETE", "/api/v1/proxies/a/faults/.", nil, 404, "not_found"},
		{"empty segment", "DELETE", "/api/v1/proxies/a//faults/lat", nil, 404, "not_found"},
		{"escaped dots", "DELETE", "/api/v1/proxies/a/faults/%2E%2E", nil, 404, "not_found"},
		{"close unknown conn", "DELETE", "/api/v1/proxies/a/conns/99", nil, 404, "not_found"},
		{"close bad conn id", "DELETE", "/api/v1/proxies/a/conns/x", nil, 400, "bad_request"},
		{"close bad how", "DELETE", "/api/v1/proxies/a/conns/1?how=BANG", nil, 400, "bad_request"},
		{"drain dial mode", "POST", "/api/v1/proxies/b/pool/drain", nil, 400, "bad_request"},
		{"events bad cursor", "GET", "/api/v1/events?after=x", nil, 400, "bad_request"},
		{"events future cursor", "GET", "/api/v1/events?after=999999", nil, 400, "bad_request"},
		{"events bad kind", "GET", "/api/v1/events?kind=exploded", nil, 400, "bad_request"},
		{"events bad timeout", "GET", "/api/v1/events?timeout=2h", nil, 400, "bad_request"},
		{"no endpoint", "GET", "/api/v1/nothing", nil, 404, "not_found"},
		{"wrong method", "PUT", "/api/v1/proxies", nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx.wantError(t, tt.method, tt.path, tt.body, tt.status, tt.code)
			if after := fx.state(t); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	echoOnce(t, a.Listen, "still works")
}

func TestConnsAndPool(t *testing.T) {
	fx := newFixture(t, Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "db", Mode: "pool"})
	c, err := net.Dial("tcp", p.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "ping"
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	fx.call(t, "POST", "/api/v1/proxies/db/faults", faults.Latency(time.Nanosecond, 0).WithName("zero"), http.StatusCreated, nil)
	var conns []api.Conn
	fx.call(t, "GET", "/api/v1/proxies/db/conns", nil, http.StatusOK, &conns)
	if len(conns) != 1 {
		t.Fatalf("conns = %+v, want one", conns)
	}
	if cc := conns[0]; cc.BytesUp != 4 || cc.BytesDown != 4 || !cc.Pooled || cc.Upstream == 0 || cc.Age <= 0 ||
		!reflect.DeepEqual(cc.Faults, []string{"zero"}) || cc.Client != c.LocalAddr().String() {
		t.Errorf("conn = %+v; want 4 bytes each way, pooled, fault zero, client %s", cc, c.LocalAddr())
	}
	var pool api.Pool
	fx.call(t, "GET", "/api/v1/proxies/db/pool", nil, http.StatusOK, &pool)
	if pool.Busy != 1 || pool.Dialed != 1 {
		t.Errorf("pool = %+v, want 1 busy, 1 dialed", pool)
	}
	fx.call(t, "DELETE", fmt.Sprintf("/api/v1/proxies/db/conns/%d?how=RST", conns[0].ID), nil, http.StatusNoContent, nil)
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("client read after close how=RST: %v, want connection reset", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for pool.Idle != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		fx.call(t, "GET", "/api/v1/proxies/db/pool", nil, http.StatusOK, &pool)
	}
	if pool.Idle != 1 {
		t.Fatalf("pool after the close = %+v, want the upstream connection idle", pool)
	}
	var d api.Drained
	fx.call(t, "POST", "/api/v1/proxies/db/pool/drain", nil, http.StatusOK, &d)
	fx.call(t, "GET", "/api/v1/proxies/db/pool", nil, http.StatusOK, &pool)
	if d.Drained != 1 || pool.Idle != 0 || pool.Discarded["drained"] != 1 {
		t.Errorf("drained %d, pool %+v; want 1 drained", d.Drained, pool)
	}
	fx.call(t, "PATCH", "/api/v1/proxies/db", map[string]any{"enabled": false}, http.StatusOK, nil)
	fx.wantError(t, "GET", "/api/v1/proxies/db/conns", nil, http.StatusNotFound, "not_found")
}

func TestResetVersionHealth(t *testing.T) {
	fx := newFixture(t, Options{Version: "1.2.3"})
	p := fx.createProxy(t, api.ProxySpec{Name: "a", Faults: []faults.Fault{faults.Refuse()}})
	fx.createProxy(t, api.ProxySpec{Name: "b", Disabled: true})
	if c, err := net.Dial("tcp", p.Listen); err == nil {
		c.Close()
		t.Fatalf("refuse fault: connected to %s", p.Listen)
	}
	fx.call(t, "POST", "/api/v1/reset", nil, http.StatusNoContent, nil)
	var list []api.Proxy
	fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, &list)
	for _, p := range list {
		if !p.Enabled || p.Faults != 0 {
			t.Errorf("after reset: %+v, want enabled with no faults", p)
		}
	}
	echoOnce(t, p.Listen, "back")
	var v api.Version
	fx.call(t, "GET", "/api/v1/version", nil, http.StatusOK, &v)
	if v.Version != "1.2.3" || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version = %+v", v)
	}
	var h map[string]string
	fx.call(t, "GET", "/api/v1/healthz", nil, http.StatusOK, &h)
	if h["status"] != "ok" {
		t.Errorf("healthz = %v", h)
	}
}

func TestMetrics(t *testing.T) {
	fx := newFixture(t, Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "m", Mode: "pool"})
	c, err := net.Dial("tcp", p.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 1 MiB echoed through one connection that stays open: the byte counts
	// move while it is open.
	const n = 1 << 20
	wrote := make(chan error, 1)
	go func() { _, err := c.Write(make([]byte, n)); wrote <- err }()
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	fx.call(t, "POST", "/api/v1/proxies/m/faults", faults.Reset(faults.ToClient).WithTarget(faults.Target{Which: faults.New}).WithName("rst"), http.StatusCreated, nil)
	if c2, err := net.Dial("tcp", p.Listen); err == nil {
		_, _ = c2.Read(make([]byte, 1))
		c2.Close()
	}
	want := []string{
		`faultline_bytes_total{dir="up",proxy="m"} ` + strconv.FormatFloat(n, 'g', -1, 64),
		`faultline_bytes_total{dir="down",proxy="m"} ` + strconv.FormatFloat(n, 'g', -1, 64),
		`faultline_connections_open{proxy="m"} 1`,
		`faultline_connections_accepted_total{proxy="m"} 2`,
		`faultline_faults_fired_total{fault="rst",proxy="m"} 1`,
		`faultline_pool_connections{proxy="m",state="busy"} 1`,
		`faultline_pool_dialed_total{proxy="m"} 2`,
		`faultline_faults_active{proxy="m"} 1`,
	}
	var body string
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		_, b := fx.do(t, "GET", "/metrics", nil)
		body = string(b)
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(body, w)
		}
		if !missing {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	t.Logf("metrics:\n%s", body)
}

func TestTokenAndOrigin(t *testing.T) {
	fx := newFixture(t, Options{Token: "s3cret", AllowOrigins: []string{"http://ui.example"}})
	fx.wantError(t, "GET", "/api/v1/proxies", nil, http.StatusUnauthorized, "unauthorized")
	fx.hdr.Set("Authorization", "Bearer wrong")
	fx.wantError(t, "GET", "/api/v1/proxies", nil, http.StatusUnauthorized, "unauthorized")
	fx.wantError(t, "GET", "/metrics", nil, http.StatusUnauthorized, "unauthorized")
	fx.hdr.Del("Authorization")
	fx.call(t, "GET", "/api/v1/healthz", nil, http.StatusOK, nil) // no token needed
	fx.hdr.Set("Authorization", "Bearer s3cret")
	fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, nil)
	fx.hdr.Set("Origin", "http://evil.example")
	fx.wantError(t, "POST", "/api/v1/proxies", api.ProxySpec{Name: "x", Upstream: fx.echo}, http.StatusForbidden, "forbidden_origin")
	fx.hdr.Set("Origin", "http://ui.example")
	fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, nil)
	fx.hdr.Set("Origin", fx.ts.URL) // the server's own host
	fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, nil)
	var list []api.Proxy
	fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, &list)
	if len(list) != 0 {
		t.Errorf("refused request created %+v", list)
	}
}

func TestEventsCursor(t *testing.T) {
	fx := newFixture(t, Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "e"})
	var evs api.Events
	fx.call(t, "GET", "/api/v1/events", nil, http.StatusOK, &evs)
	if len(evs.Events) != 0 || evs.Next != 0 {
		t.Fatalf("events before any traffic = %+v", evs)
	}
	// A long poll returns as soon as an event arrives.
	got := make(chan api.Events, 1)
	go func() { // owned: the test receives from got, and the poll ends by Close at the latest
		var e api.Events
		resp, err := fx.ts.Client().Get(fx.ts.URL + "/api/v1/events?after=0&timeout=30s&kind=closed")
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				_ = json.NewDecoder(resp.Body).Decode(&e)
			}
			resp.Body.Close()
		}
		got <- e
	}()
	echoOnce(t, p.Listen, "hi")
	select {
	case evs = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("long poll did not return after an event")
	}
	if len(evs.Events) != 1 || evs.Events[0].Event.Kind.String() != "closed" || evs.Events[0].Proxy != "e" {
		t.Fatalf("long poll = %+v, want one closed event of proxy e", evs)
	}
	// The cursor moves past events that do not match, and nothing is read
	// twice.
	var all api.Events
	fx.call(t, "GET", "/api/v1/events?after=0", nil, http.StatusOK, &all)
	if len(all.Events) < 4 || all.Next != all.Events[len(all.Events)-1].ID {
		t.Fatalf("all events = %+v", all)
	}
	for i, e := range all.Events {
		if e.ID != uint64(i+1) {
			t.Errorf("event %d has ID %d, want %d", i, e.ID, i+1)
		}
	}
	fx.call(t, "GET", fmt.Sprintf("/api/v1/events?after=%d&timeout=10ms", all.Next), nil, http.StatusOK, &evs)
	if len(evs.Events) != 0 || evs.Next != all.Next {
		t.Errorf("after the last event: %+v, want none and the same cursor", evs)
	}
}

func TestEventsCursorExpires(t *testing.T) {
	fx := newFixture(t, Options{EventLog: 8})
	p := fx.createProxy(t, api.ProxySpec{Name: "e"})
	for range 4 {
		echoOnce(t, p.Listen, "x") // about 5 events each
	}
	fx.wantError(t, "GET", "/api/v1/events?after=0", nil, http.StatusGone, "cursor_expired")
	// The sessions' last events (closed) may trail the echoes: wait until
	// the log stops growing, so that no event evicts the ones read below.
	last := fx.srv.log.last()
	for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		now := fx.srv.log.last()
		if now == last {
			break
		}
		last = now
	}
	var evs api.Events
	fx.call(t, "GET", fmt.Sprintf("/api/v1/events?after=%d", last-8), nil, http.StatusOK, &evs)
	if len(evs.Events) != 8 {
		t.Errorf("the last 8 events: got %d", len(evs.Events))
	}
}

func TestFaultsHeldWhileDisabled(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.createProxy(t, api.ProxySpec{Name: "off", Disabled: true})
	var a, b faults.Fault
	fx.call(t, "POST", "/api/v1/proxies/off/faults", `{"kind":"stall"}`, http.StatusCreated, &a)
	fx.call(t, "POST", "/api/v1/proxies/off/faults", `{"kind":"stall"}`, http.StatusCreated, &b)
	if a.Name == "" || a.Name == b.Name {
		t.Errorf("unnamed faults held while disabled got names %q and %q, want two distinct names", a.Name, b.Name)
	}
	fx.wantError(t, "POST", "/api/v1/proxies/off/faults", `{"kind":"stall","name":"`+a.Name+`"}`, http.StatusConflict, "name_taken")
	fx.wantError(t, "POST", "/api/v1/proxies/off/faults", `{"kind":"stale","mode":"eof"}`, http.StatusBadRequest, "bad_fault")
	fx.call(t, "PUT", "/api/v1/proxies/off/faults/"+a.Name, `{"kind":"stall","drop":true}`, http.StatusOK, &a)
	if !a.Drop {
		t.Errorf("updated held fault %+v, want drop", a)
	}
	fx.call(t, "DELETE", "/api/v1/proxies/off/faults/"+b.Name, nil, http.StatusNoContent, nil)
	var p api.Proxy
	fx.call(t, "PATCH", "/api/v1/proxies/off", map[string]any{"enabled": true}, http.StatusOK, &p)
	var list []faults.Fault
	fx.call(t, "GET", "/api/v1/proxies/off/faults", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Name != a.Name || !list[0].Drop {
		t.Errorf("faults after enabling: %+v, want the one held, updated", list)
	}
}
