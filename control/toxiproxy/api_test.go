package toxiproxy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/faultline-proxy/faultline/control/toxiproxy"
)

func TestVersion(t *testing.T) {
	f := newFixture(t)
	v, err := f.c.Version()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"version": "` + toxiproxy.Version + `"}` + "\n"; string(v) != want {
		t.Fatalf("version %q, want %q", v, want)
	}
	r := f.do(t, "GET", "/version", "")
	if ct := r.header.Get("Content-Type"); ct != "application/json;charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if r.header.Get("X-Toxiproxy-Request-Id") == "" {
		t.Fatal("no X-Toxiproxy-Request-Id")
	}
}

func TestCreateProxy(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	p, err := f.c.CreateProxy("redis", "localhost:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	if host, port, _ := net.SplitHostPort(p.Listen); host != "127.0.0.1" || port == "0" {
		t.Fatalf("listen %q: want the real loopback address", p.Listen)
	}
	if !p.Enabled || p.Upstream != up.addr() || p.Name != "redis" {
		t.Fatalf("proxy %+v", p)
	}
	roundTrip(t, dial(t, p.Listen), "ping")

	// Raw: 201, enabled defaults to true, null too; toxics is [] not null.
	r := f.do(t, "POST", "/proxies", `{"name":"a","listen":"127.0.0.1:0","upstream":"`+up.addr()+`","enabled":null}`)
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"enabled":true`) || !strings.Contains(r.body, `"toxics":[]`) {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	// Keys match whatever their case; unknown keys are ignored; the
	// Content-Type is not looked at.
	f.do(t, "POST", "/proxies", `{"Name":"b","LISTEN":"127.0.0.1:0","upstream":"`+up.addr()+`","extra":1}`, "Content-Type", "application/x-www-form-urlencoded").want(t, http.StatusCreated, mustGet(t, f, "b"))

	_, err = f.c.CreateProxy("redis", "127.0.0.1:0", up.addr())
	if apiStatus(err) != http.StatusConflict || !strings.Contains(err.Error(), "proxy already exists") {
		t.Fatalf("duplicate: %v", err)
	}
	f.do(t, "POST", "/proxies", `{"name":"redis","upstream":"x:1"}`).wantError(t, 409, "proxy already exists")
	f.do(t, "POST", "/proxies", `{"upstream":"x:1"}`).wantError(t, 400, "missing required field: name")
	f.do(t, "POST", "/proxies", `{"name":"c","upstream":""}`).wantError(t, 400, "missing required field: upstream")
	f.do(t, "POST", "/proxies", `{"name":`).wantError(t, 400, "bad request body: ")
	f.do(t, "POST", "/proxies", ``).wantError(t, 400, "bad request body: ")

	// A busy port is a 500, as toxiproxy's listen failure.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f.do(t, "POST", "/proxies", `{"name":"busy","listen":"`+ln.Addr().String()+`","upstream":"x:1"}`).wantError(t, 500, "")
	if _, err := f.c.Proxy("busy"); apiStatus(err) != 404 {
		t.Fatalf("a proxy that failed to listen exists: %v", err)
	}
}

// mustGet returns the named proxy's JSON, as GET /proxies/{name} answers.
func mustGet(t *testing.T, f *fixture, name string) string {
	t.Helper()
	r := f.do(t, "GET", "/proxies/"+name, "")
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", name, r.status, r.body)
	}
	return r.body
}

func TestCreateDisabledAndEmptyListen(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, "POST", "/proxies", `{"name":"off","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","enabled":false}`)
	r.want(t, 201, `{"name":"off","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","enabled":false,"toxics":[]}`)
	r = f.do(t, "POST", "/proxies", `{"name":"any","upstream":"127.0.0.1:1"}`)
	var p toxiclient.Proxy
	if err := json.Unmarshal([]byte(r.body), &p); err != nil || r.status != 201 || !strings.HasPrefix(p.Listen, "[::]:") {
		t.Fatalf("empty listen: %d %s: want [::]:PORT, as toxiproxy", r.status, r.body)
	}
}

func TestListAndGetProxies(t *testing.T) {
	f := newFixture(t)
	f.do(t, "GET", "/proxies", "").want(t, 200, `{}`)
	up := newServer(t, echo)
	for _, n := range []string{"one", "two", "redis:6379"} {
		if _, err := f.c.CreateProxy(n, "127.0.0.1:0", up.addr()); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := f.c.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps["one"] == nil || ps["redis:6379"] == nil || ps["redis:6379"].Name != "redis:6379" {
		t.Fatalf("proxies %v", ps)
	}
	// A name faultline would not take is kept for toxiproxy's API (testcontainers
	// names proxies host:port) and works in paths.
	p, err := f.c.Proxy("redis:6379")
	if err != nil || p.Name != "redis:6379" {
		t.Fatalf("Proxy(redis:6379) = %+v, %v", p, err)
	}
	roundTrip(t, dial(t, p.Listen), "x")
	if _, err := f.c.Proxy("nope"); apiStatus(err) != 404 {
		t.Fatalf("unknown proxy: %v", err)
	}
	f.do(t, "GET", "/proxies/nope", "").wantError(t, 404, "proxy not found")
	f.do(t, "GET", "/proxies/nope/toxics", "").wantError(t, 404, "proxy not found")
}

func TestUpdateProxy(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	p, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	listen := p.Listen
	live := dial(t, listen)
	roundTrip(t, live, "a")
	if _, err := p.AddToxic("lat", "latency", "", 1, toxiclient.Attributes{"latency": 1}); err != nil {
		t.Fatal(err)
	}

	// Disable (the "down" toxic): refused, and live connections closed, when the call returns.
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", listen); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a disabled proxy: %v, want ECONNREFUSED", err)
	}
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := live.Read(make([]byte, 1)); err == nil {
		t.Fatal("a live connection survived Disable")
	}
	if got, _ := f.c.Proxy("p"); got.Enabled || got.Listen != listen || len(got.ActiveToxics) != 1 {
		t.Fatalf("disabled: %+v", got)
	}
	// Enable: the same address again, the toxics kept.
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	if p.Listen != listen || !p.Enabled {
		t.Fatalf("enabled: %+v", p)
	}
	roundTrip(t, dial(t, listen), "b")

	// One field at a time (Ruby, Java): the rest is kept; POST and PATCH both.
	f.do(t, "POST", "/proxies/p", `{"enabled":false}`).want(t, 200, `{"name":"p","listen":"`+listen+`","upstream":"`+up.addr()+`","enabled":false,"toxics":[{"attributes":{"latency":1,"jitter":0},"name":"lat","type":"latency","stream":"downstream","toxicity":1}]}`)
	f.do(t, "PATCH", "/proxies/p", `{"enabled":true,"name":"ignored","toxics":[]}`)
	up2 := newServer(t, echo)
	live = dial(t, listen)
	roundTrip(t, live, "c")
	r := f.do(t, "PATCH", "/proxies/p", `{"upstream":"`+up2.addr()+`"}`)
	if r.status != 200 || !strings.Contains(r.body, up2.addr()) || !strings.Contains(r.body, listen) {
		t.Fatalf("new upstream: %d %s", r.status, r.body)
	}
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := live.Read(make([]byte, 1)); err == nil {
		t.Fatal("a live connection survived a new upstream (toxiproxy restarts the proxy)")
	}
	// The same address written another way is no change.
	_, port, _ := net.SplitHostPort(listen)
	roundTrip(t, func() net.Conn {
		c := dial(t, listen)
		f.do(t, "POST", "/proxies/p", `{"listen":"localhost:`+port+`"}`)
		return c
	}(), "d")

	f.do(t, "POST", "/proxies/nope", `{"enabled":false}`).wantError(t, 404, "proxy not found")
	f.do(t, "POST", "/proxies/p", `{"enabled":"no"}`).wantError(t, 400, "bad request body: ")
}

func TestDeleteProxy(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	p, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	f.do(t, "DELETE", "/proxies/p", "").want(t, 204, "")
	if _, err := net.Dial("tcp", p.Listen); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a deleted proxy: %v", err)
	}
	if err := p.Delete(); apiStatus(err) != 404 {
		t.Fatalf("delete again: %v", err)
	}
}

func TestPopulate(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	keep, err := f.c.CreateProxy("keep", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keep.AddToxic("lat", "latency", "", 1, toxiclient.Attributes{"latency": 5}); err != nil {
		t.Fatal(err)
	}
	if err := keep.Disable(); err != nil {
		t.Fatal(err)
	}
	change, err := f.c.CreateProxy("change", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := change.AddToxic("lat", "latency", "", 1, toxiclient.Attributes{"latency": 5}); err != nil {
		t.Fatal(err)
	}
	other, err := f.c.CreateProxy("other", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = other

	up2 := newServer(t, echo)
	ps, err := f.c.Populate([]toxiclient.Proxy{
		{Name: "keep", Listen: keep.Listen, Upstream: up.addr(), Enabled: true},
		{Name: "change", Listen: "127.0.0.1:0", Upstream: up2.addr(), Enabled: true},
		{Name: "new", Listen: "127.0.0.1:0", Upstream: up.addr()}, // the Go client sends enabled:false
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("populate returned %d proxies", len(ps))
	}
	if ps[0].Name != "keep" || ps[0].Enabled || len(ps[0].ActiveToxics) != 1 {
		t.Fatalf("an unchanged proxy is kept as it is (disabled, with its toxic): %+v", ps[0])
	}
	if ps[1].Name != "change" || !ps[1].Enabled || len(ps[1].ActiveToxics) != 0 || ps[1].Upstream != up2.addr() {
		t.Fatalf("a changed proxy is replaced, without toxics: %+v", ps[1])
	}
	if ps[2].Name != "new" || ps[2].Enabled {
		t.Fatalf("new proxy with enabled:false: %+v", ps[2])
	}
	if _, err := f.c.Proxy("other"); err != nil {
		t.Fatalf("a proxy not in the list was touched: %v", err)
	}

	f.do(t, "POST", "/populate", `[]`).want(t, 201, `{"proxies":[]}`)
	r := f.do(t, "POST", "/populate", `[{"name":"x","upstream":"a:1"},{"name":"y"}]`)
	r.want(t, 400, `{"error":"missing required field: upstream at proxy 2","status":400,"proxies":null}`)
	if _, err := f.c.Proxy("x"); apiStatus(err) != 404 {
		t.Fatal("populate with a bad entry created the good one")
	}
	if r := f.do(t, "POST", "/populate", `{"name":"x"}`); r.status != 400 || !strings.Contains(r.body, "bad request body") {
		t.Fatalf("populate with an object: %d %s", r.status, r.body)
	}

	// Toxics with their proxies (toxiproxy #79).
	r = f.do(t, "POST", "/populate", `[{"name":"withtoxics","listen":"127.0.0.1:0","upstream":"`+up.addr()+`",
		"toxics":[{"type":"latency","stream":"upstream","attributes":{"latency":7}},{"name":"cut","type":"bandwidth","attributes":{"rate":0}}]}]`)
	if r.status != 201 || !strings.Contains(r.body, `"name":"latency_upstream"`) || !strings.Contains(r.body, `"name":"cut"`) {
		t.Fatalf("populate with toxics: %d %s", r.status, r.body)
	}
	// A failure part way: 500 with the proxies done before it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r = f.do(t, "POST", "/populate", `[{"name":"ok","listen":"127.0.0.1:0","upstream":"a:1"},{"name":"busy","listen":"`+ln.Addr().String()+`","upstream":"a:1"}]`)
	if r.status != 500 || !strings.Contains(r.body, `"proxies":[{"name":"ok"`) {
		t.Fatalf("populate failing part way: %d %s", r.status, r.body)
	}
}

func TestReset(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	p, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"latency", "timeout", "noop"} {
		if _, err := p.AddToxic("", typ, "upstream", 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.AddToxic("", "latency", "downstream", 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	f.do(t, "POST", "/reset", "").want(t, 204, "")
	if err := f.c.ResetState(); err != nil {
		t.Fatal(err)
	}
	got, err := f.c.Proxy("p")
	if err != nil || !got.Enabled || len(got.ActiveToxics) != 0 {
		t.Fatalf("after reset: %+v, %v", got, err)
	}
	roundTrip(t, dial(t, got.Listen), "after reset")
}

func TestRouting(t *testing.T) {
	f := newFixture(t)
	f.do(t, "PUT", "/proxies", "").want(t, 405, "")
	f.do(t, "DELETE", "/version", "").want(t, 405, "")
	f.do(t, "GET", "/nope", "").want(t, 404, "404 page not found\n")
	f.do(t, "GET", "/proxies/", "").want(t, 404, "404 page not found\n")
	// toxiproxy refuses browsers (a page could otherwise drive it).
	r := f.do(t, "GET", "/proxies", "", "User-Agent", "Mozilla/5.0 (X11)")
	r.want(t, 403, "User agent not allowed\n")
	// faultline's own guards hold for toxiproxy's paths too: DNS rebinding...
	if r := f.do(t, "GET", "/proxies", "", "Host", "attacker.example:8474"); r.status != 403 {
		t.Fatalf("a foreign Host: %d %s", r.status, r.body)
	}
	// ... and another site's page.
	if r := f.do(t, "POST", "/reset", "", "Origin", "http://attacker.example"); r.status != 403 {
		t.Fatalf("a foreign Origin: %d %s", r.status, r.body)
	}
	// faultline's own API answers on the same port.
	if r := f.do(t, "GET", "/api/v1/proxies", ""); r.status != 200 || r.body != "[]\n" {
		t.Fatalf("/api/v1/proxies: %d %q", r.status, r.body)
	}
	if r := f.do(t, "GET", "/metrics", ""); r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
}

// Populating a proxy that is kept adds the toxics it has no toxic of that
// name for, and leaves the others.
func TestPopulateKeptProxyToxics(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	p, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	addToxic(t, p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 5})
	r := f.do(t, "POST", "/populate", `[{"name":"p","listen":"`+p.Listen+`","upstream":"`+up.addr()+`",
		"toxics":[{"type":"latency","attributes":{"latency":99}},{"type":"limit_data","attributes":{"bytes":9}}]}]`)
	r.want(t, 201, `{"proxies":[{"name":"p","listen":"`+p.Listen+`","upstream":"`+up.addr()+`","enabled":true,"toxics":[`+
		`{"attributes":{"latency":5,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1},`+
		`{"attributes":{"bytes":9},"name":"limit_data_downstream","type":"limit_data","stream":"downstream","toxicity":1}]}]}`)
}

// A listen address that does not parse is a listen failure, a 500, as
// toxiproxy answers (net.Listen's error), on create, update and populate;
// not a 400, which the Ruby gem raises as InvalidToxic.
func TestListenSyntaxIs500(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	f.do(t, "POST", "/proxies", `{"name":"a","listen":"nonsense","upstream":"`+up.addr()+`"}`).wantError(t, 500, "listen")
	f.do(t, "POST", "/proxies", `{"name":"a","listen":"127.0.0.1:99999","upstream":"`+up.addr()+`"}`).wantError(t, 500, "listen")
	p, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	f.do(t, "PATCH", "/proxies/p", `{"listen":"localhost"}`).wantError(t, 500, "listen")
	if got := mustGet(t, f, "p"); !strings.Contains(got, `"listen":"`+p.Listen+`"`) {
		t.Fatalf("after a failed update: %s", got)
	}
	r := f.do(t, "POST", "/populate", `[{"name":"q","listen":"nonsense","upstream":"`+up.addr()+`"}]`)
	if r.status != 500 || !strings.Contains(r.body, `"status":500`) {
		t.Fatalf("populate: %d %s", r.status, r.body)
	}
}

// Routing as gorilla/mux routes toxiproxy's: a wrong method is a 405 before
// any middleware (no request ID, no User-Agent check); a path that is not
// clean is redirected to the clean one, so a base URL with a trailing slash
// ("http://localhost:8474/" + "/proxies") still lists proxies.
func TestRoutingAsGorilla(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, "PUT", "/proxies", "", "User-Agent", "Mozilla/5.0 (X11)")
	r.want(t, 405, "")
	if id := r.header.Get("X-Toxiproxy-Request-Id"); id != "" {
		t.Fatalf("405 with a request ID %q", id)
	}
	if id := f.do(t, "GET", "/proxies", "").header.Get("X-Toxiproxy-Request-Id"); id == "" {
		t.Fatal("a routed answer without a request ID")
	}
	for path, to := range map[string]string{"//proxies": "/proxies", "/proxies//toxics": "/proxies/toxics", "/proxies/./a/../b": "/proxies/b"} {
		req, err := http.NewRequest("GET", "http://"+f.addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != to {
			t.Fatalf("GET %s: %d to %q, want 301 to %q", path, resp.StatusCode, resp.Header.Get("Location"), to)
		}
	}
	c := toxiclient.NewClient("http://" + f.addr + "/")
	if _, err := c.Proxies(); err != nil {
		t.Fatalf("a base URL with a trailing slash: %v", err)
	}
}

// A bad attribute's error names its field as toxiproxy's does
// (LatencyToxic.attributes.latency), on create and on update.
func TestAttributeErrorText(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	if _, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr()); err != nil {
		t.Fatal(err)
	}
	want := "bad request body: json: cannot unmarshal number 1.5 into Go struct field LatencyToxic.attributes.latency of type int64"
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":1.5}}`).wantError(t, 400, want)
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency"}`).want(t, 200,
		`{"attributes":{"latency":0,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`)
	f.do(t, "PATCH", "/proxies/p/toxics/latency_downstream", `{"attributes":{"latency":1.5}}`).wantError(t, 400, want)
}

// Create and update ignore a toxics field whatever it holds, as toxiproxy
// does (its Proxy has no JSON toxics), and a bad field's error names
// Proxy.<field>, as toxiproxy's.
func TestProxyBodyToxicsIgnored(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	for i, toxics := range []string{`{}`, `5`, `"x"`, `[{"type":"latency"}]`, `[1]`} {
		name := fmt.Sprint("p", i)
		r := f.do(t, "POST", "/proxies", `{"name":"`+name+`","listen":"127.0.0.1:0","upstream":"`+up.addr()+`","toxics":`+toxics+`}`)
		if r.status != http.StatusCreated || !strings.Contains(r.body, `"toxics":[]`) {
			t.Fatalf("create with toxics %s: %d %s", toxics, r.status, r.body)
		}
		if r := f.do(t, "PATCH", "/proxies/"+name, `{"enabled":false,"toxics":`+toxics+`}`); r.status != http.StatusOK || !strings.Contains(r.body, `"enabled":false`) {
			t.Fatalf("update with toxics %s: %d %s", toxics, r.status, r.body)
		}
	}
	f.do(t, "POST", "/proxies", `{"name":5}`).wantError(t, 400,
		"bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string")
	f.do(t, "PATCH", "/proxies/p0", `{"enabled":"yes"}`).wantError(t, 400,
		"bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool")
}

// An update's name is ignored, but decoded: a number there is a 400, as
// in toxiproxy.
func TestUpdateProxyNameDecoded(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	if _, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr()); err != nil {
		t.Fatal(err)
	}
	f.do(t, "POST", "/proxies/p", `{"name":5}`).wantError(t, 400,
		"bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string")
	if r := f.do(t, "POST", "/proxies/p", `{"name":"q"}`); r.status != 200 || !strings.Contains(r.body, `"name":"p"`) {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
}
