package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// TestAPIRefusesUnboundedAndInertFaults: issue 14's crash fault, faults
// past a bound, faults that could not act, and JSON that encoding/json
// would take loosely (keys in the wrong case, keys given twice) are each
// a 400 whose message names the field, and change nothing.
func TestAPIRefusesUnboundedAndInertFaults(t *testing.T) {
	fx := newFixture(t, Options{})
	a := fx.createProxy(t, api.ProxySpec{Name: "a"})
	fx.createProxy(t, api.ProxySpec{Name: "off", Mode: "pool", Disabled: true})
	before := fx.state(t)
	tests := []struct {
		name, path, method, body string
		code, says               string
	}{
		{"issue 14 crash", "/api/v1/proxies/a/faults", "POST", `{"kind":"latency","delay":"1ms","jitter":"2562047h47m16.854775807s"}`, "bad_fault", "jitter"},
		{"crash on a disabled proxy", "/api/v1/proxies/off/faults", "POST", `{"kind":"latency","delay":"1ms","jitter":"2562047h47m16.854775807s"}`, "bad_fault", "jitter"},
		{"crash as an update", "/api/v1/proxies/a/faults/x", "PUT", `{"name":"x","kind":"latency","delay":"1ms","jitter":"2562047h47m16.854775807s"}`, "bad_fault", "jitter"},
		{"crash in a new proxy", "/api/v1/proxies", "POST", `{"name":"c","upstream":"127.0.0.1:1","faults":[{"kind":"latency","delay":"1ms","jitter":"2562047h47m16.854775807s"}]}`, "bad_fault", "jitter"},
		{"delay past a day", "/api/v1/proxies/a/faults", "POST", `{"kind":"latency","delay":"25h"}`, "bad_fault", "maximum"},
		{"limit past the bound", "/api/v1/proxies/a/faults", "POST", `{"kind":"limit","bytes":9223372036854775807}`, "bad_fault", "maximum"},
		{"rate past the bound", "/api/v1/proxies/a/faults", "POST", `{"kind":"bandwidth","rate":9223372036854775807}`, "bad_fault", "maximum"},
		{"count past the bound", "/api/v1/proxies/a/faults", "POST", `{"kind":"stall","target":{"count":9223372036854775807}}`, "bad_fault", "count"},
		{"latency without delay", "/api/v1/proxies/a/faults", "POST", `{"kind":"latency"}`, "bad_fault", "missing delay"},
		{"corrupt without prob", "/api/v1/proxies/a/faults", "POST", `{"kind":"corrupt"}`, "bad_fault", "missing prob"},
		{"slow-close without delay", "/api/v1/proxies/a/faults", "POST", `{"kind":"slow-close"}`, "bad_fault", "missing delay"},
		{"connect-delay without delay", "/api/v1/proxies/a/faults", "POST", `{"kind":"connect-delay"}`, "bad_fault", "missing delay"},
		{"key in upper case", "/api/v1/proxies/a/faults", "POST", `{"KIND":"latency","delay":"1ms"}`, "bad_fault", `"KIND"`},
		{"key given twice", "/api/v1/proxies/a/faults", "POST", `{"kind":"corrupt","kind":"latency","delay":"1ms"}`, "bad_fault", `duplicate key "kind"`},
		{"target key in the wrong case", "/api/v1/proxies/a/faults", "POST", `{"kind":"stall","target":{"Which":"new"}}`, "bad_fault", `"Which"`},
		{"spec key in the wrong case", "/api/v1/proxies", "POST", `{"NAME":"c","upstream":"127.0.0.1:1"}`, "bad_request", `"NAME"`},
		{"spec key given twice", "/api/v1/proxies", "POST", `{"name":"c","name":"d","upstream":"127.0.0.1:1"}`, "bad_request", `duplicate key "name"`},
		{"pool key in the wrong case", "/api/v1/proxies", "POST", `{"name":"c","upstream":"127.0.0.1:1","mode":"pool","pool":{"Size":2}}`, "bad_request", `pool: unknown field "Size"`},
		{"update key in the wrong case", "/api/v1/proxies/a", "PATCH", `{"Enabled":false}`, "bad_request", `"Enabled"`},
		{"update key given twice", "/api/v1/proxies/a", "PATCH", `{"enabled":true,"enabled":false}`, "bad_request", `duplicate key "enabled"`},
		{"dial timeout past a day", "/api/v1/proxies", "POST", `{"name":"c","upstream":"127.0.0.1:1","dial_timeout":"25h"}`, "bad_request", "dial timeout"},
		{"dial timeout past a day, disabled", "/api/v1/proxies", "POST", `{"name":"c","upstream":"127.0.0.1:1","dial_timeout":"2562047h","disabled":true}`, "bad_request", "dial timeout"},
		{"pool size past the bound", "/api/v1/proxies", "POST", `{"name":"c","upstream":"127.0.0.1:1","mode":"pool","pool":{"size":1000000000}}`, "bad_request", "pool size"},
		{"update lifetime past a day", "/api/v1/proxies/off", "PATCH", `{"pool":{"max_lifetime":"2562047h"}}`, "bad_request", "max lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx.wantError(t, tt.method, tt.path, tt.body, http.StatusBadRequest, tt.code)
			_, b := fx.do(t, tt.method, tt.path, tt.body)
			var e api.Error
			if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e.Message, tt.says) {
				t.Errorf("%s %s %s: answer %s does not mention %q", tt.method, tt.path, tt.body, b, tt.says)
			}
			if after := fx.state(t); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	echoOnce(t, a.Listen, "still relaying")
}

// TestWSRefusesLooseJSON: websocket requests are as strict as HTTP
// bodies, and the reply still carries the request's id.
func TestWSRefusesLooseJSON(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.createProxy(t, api.ProxySpec{Name: "a"})
	w := fx.dialWS(t, nil)
	for _, msg := range []string{
		`{"id":"7","OP":"clear-all"}`,
		`{"id":"7","op":"clear-all","op":"inject"}`,
		`{"id":"7","op":"inject","proxy":"a","fault":{"kind":"latency","delay":"1ms","jitter":"2562047h47m16.854775807s"}}`,
	} {
		if err := w.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		m := w.read(t)
		if m.Type != api.TypeError || m.ID != "7" || m.Error == nil || m.Error.Status != http.StatusBadRequest {
			t.Errorf("%s: got %+v (error %+v), want a 400 error reply with id 7", msg, m, m.Error)
		}
	}
}

// TestAPIFaultCap: a proxy takes proxy.MaxFaults faults; the next is a
// 409 too_many_faults, live or disabled.
func TestAPIFaultCap(t *testing.T) {
	fx := newFixture(t, Options{})
	for _, spec := range []api.ProxySpec{{Name: "live"}, {Name: "off", Disabled: true}} {
		fx.createProxy(t, spec)
		for i := range proxy.MaxFaults {
			f := faults.Latency(time.Millisecond, 0).WithName(fmt.Sprintf("f%d", i)).
				WithTarget(faults.Target{Which: faults.ByID, IDs: []uint64{1 << 40}})
			if _, err := fx.srv.injectFault(spec.Name, f); err != nil {
				t.Fatalf("%s: fault %d: %v", spec.Name, i, err)
			}
		}
		fx.wantError(t, "POST", "/api/v1/proxies/"+spec.Name+"/faults", `{"kind":"stall"}`, http.StatusConflict, "too_many_faults")
		fx.call(t, "DELETE", "/api/v1/proxies/"+spec.Name+"/faults/f0", nil, http.StatusNoContent, nil)
		fx.call(t, "POST", "/api/v1/proxies/"+spec.Name+"/faults", `{"kind":"stall"}`, http.StatusCreated, nil)
	}
	many := make([]faults.Fault, proxy.MaxFaults+1)
	for i := range many {
		many[i] = faults.Stall(false)
	}
	fx.wantError(t, "POST", "/api/v1/proxies", api.ProxySpec{Name: "new", Upstream: fx.echo, Faults: many}, http.StatusConflict, "too_many_faults")
}

// TestNegativeSettingsRoundTrip: a negative dial_timeout (and pool
// idle_timeout, max_lifetime, max_idle) means "no limit"; GET returns it
// as set, not as the 0 the proxy runs it as (0 in a spec means "the
// default"), so sending back what GET returned means the same.
func TestNegativeSettingsRoundTrip(t *testing.T) {
	fx := newFixture(t, Options{})
	set := `{"name":"a","upstream":"` + fx.echo + `","mode":"pool","dial_timeout":"-1s","pool":{"max_idle":-1,"idle_timeout":"-1s","max_lifetime":"-1s"}}`
	var got api.Proxy
	fx.call(t, "POST", "/api/v1/proxies", set, http.StatusCreated, &got)
	want := api.PoolSpec{MaxIdle: -1, IdleTimeout: faults.Duration(-time.Second), MaxLifetime: faults.Duration(-time.Second)}
	if got.DialTimeout != faults.Duration(-time.Second) || got.Pool != want {
		t.Errorf("created: dial_timeout %v, pool %+v; want -1s and %+v", got.DialTimeout, got.Pool, want)
	}
	fx.call(t, "GET", "/api/v1/proxies/a", nil, http.StatusOK, &got)
	if got.DialTimeout != faults.Duration(-time.Second) || got.Pool != want {
		t.Errorf("GET: dial_timeout %v, pool %+v; want -1s and %+v", got.DialTimeout, got.Pool, want)
	}
	// Sent back, it means the same: no limit.
	var again api.Proxy
	fx.call(t, "POST", "/api/v1/proxies", api.ProxySpec{Name: "b", Upstream: got.Upstream, Mode: got.Mode, DialTimeout: got.DialTimeout, Pool: got.Pool}, http.StatusCreated, &again)
	for _, name := range []string{"a", "b"} {
		e, err := fx.srv.entry(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.live()
		if err != nil {
			t.Fatal(err)
		}
		if cfg := p.Config(); cfg.DialTimeout != 0 || cfg.Pool.MaxIdle != 0 || cfg.Pool.IdleTimeout != 0 || cfg.Pool.MaxLifetime != 0 {
			t.Errorf("proxy %s runs with dial timeout %v, pool %+v; want no limits (0)", name, cfg.DialTimeout, cfg.Pool)
		}
	}
	if again.DialTimeout != got.DialTimeout || again.Pool != got.Pool {
		t.Errorf("sent back: %v %+v, want %v %+v", again.DialTimeout, again.Pool, got.DialTimeout, got.Pool)
	}
}
