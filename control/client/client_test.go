package client_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

func TestVersionAndHealthz(t *testing.T) {
	fx := newFixture(t, control.Options{Version: "v1.2.3"})
	v, err := fx.c.Version(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := (api.Version{Version: "v1.2.3", Go: runtime.Version()}); v != want {
		t.Errorf("Version: got %+v, want %+v", v, want)
	}
	if err := fx.c.Healthz(ctx(t)); err != nil {
		t.Errorf("Healthz: %v", err)
	}
}

func TestProxies(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	if host, port, err := net.SplitHostPort(p.Listen); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("created proxy listens on %q, want 127.0.0.1 and a real port", p.Listen)
	}
	if p.Upstream != fx.echo || p.Mode != "dial" || !p.Enabled {
		t.Errorf("created proxy: got %+v, want upstream %s, mode dial, enabled", p, fx.echo)
	}
	echoOnce(t, dial(t, p.Listen), "through a")
	fx.createProxy(t, api.ProxySpec{Name: "b", Mode: "pool", Disabled: true})

	ps, err := fx.c.Proxies(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if want := []string{"a", "b"}; !slices.Equal(names, want) {
		t.Errorf("Proxies: got names %q, want %q", names, want)
	}

	got, err := fx.c.Proxy(ctx(t), "a")
	if err != nil || got.Name != "a" || got.Listen != p.Listen {
		t.Errorf("Proxy(a): got %+v, %v; want %+v", got, err, p)
	}

	off := false
	up, err := fx.c.UpdateProxy(ctx(t), "a", api.ProxyUpdate{Enabled: &off})
	if err != nil || up.Enabled {
		t.Errorf("UpdateProxy(enabled=false): got %+v, %v; want it disabled", up, err)
	}
	on := true
	if up, err = fx.c.UpdateProxy(ctx(t), "a", api.ProxyUpdate{Enabled: &on}); err != nil || !up.Enabled {
		t.Errorf("UpdateProxy(enabled=true): got %+v, %v; want it enabled", up, err)
	}

	if err := fx.c.DeleteProxy(ctx(t), "b"); err != nil {
		t.Errorf("DeleteProxy(b): %v", err)
	}
	_, err = fx.c.Proxy(ctx(t), "b")
	wantAPIError(t, "Proxy(b) after delete", err, api.ErrNotFound)
}

func TestProxyErrors(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	bad := "bogus"
	tests := []struct {
		name string
		call func() error
		want *api.Error
	}{
		{"create: name taken", func() error {
			_, err := fx.c.CreateProxy(ctx(t), api.ProxySpec{Name: "a", Upstream: fx.echo})
			return err
		}, api.ErrNameTaken},
		{"create: port in use", func() error {
			_, err := fx.c.CreateProxy(ctx(t), api.ProxySpec{Name: "b", Listen: p.Listen, Upstream: fx.echo})
			return err
		}, api.ErrPortInUse},
		{"create: no upstream", func() error {
			_, err := fx.c.CreateProxy(ctx(t), api.ProxySpec{Name: "c"})
			return err
		}, api.ErrBadRequest},
		{"create: bad fault", func() error {
			_, err := fx.c.CreateProxy(ctx(t), api.ProxySpec{Name: "d", Upstream: fx.echo, Faults: []faults.Fault{{Kind: "bogus"}}})
			return err
		}, api.ErrUnknownKind},
		{"get: no such proxy", func() error { _, err := fx.c.Proxy(ctx(t), "nope"); return err }, api.ErrNotFound},
		{"update: bad mode", func() error {
			_, err := fx.c.UpdateProxy(ctx(t), "a", api.ProxyUpdate{Mode: &bad})
			return err
		}, api.ErrBadRequest},
		{"update: no such proxy", func() error {
			_, err := fx.c.UpdateProxy(ctx(t), "nope", api.ProxyUpdate{})
			return err
		}, api.ErrNotFound},
		{"delete: no such proxy", func() error { return fx.c.DeleteProxy(ctx(t), "nope") }, api.ErrNotFound},
		{"name with a slash", func() error { _, err := fx.c.Proxy(ctx(t), "a/b"); return err }, api.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAPIError(t, tt.name, tt.call(), tt.want)
		})
	}
	if ps, err := fx.c.Proxies(ctx(t)); err != nil || len(ps) != 1 {
		t.Errorf("after the failed calls: got %d proxies, %v; want only a", len(ps), err)
	}
}

func TestFaults(t *testing.T) {
	fx := newFixture(t, control.Options{})
	fx.createProxy(t, api.ProxySpec{Name: "a"})
	c := fx.c

	f, err := c.AddFault(ctx(t), "a", faults.Latency(50*time.Millisecond, 0).WithName("slow").WithDir(faults.Down))
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "slow" || f.Kind != faults.KindLatency || f.Delay != 50*time.Millisecond || f.Dir != faults.Down {
		t.Errorf("AddFault: got %+v, want slow, latency 50ms down", f)
	}
	auto, err := c.AddFault(ctx(t), "a", faults.Bandwidth(1<<20))
	if err != nil || auto.Name == "" {
		t.Fatalf("AddFault without a name: got %+v, %v; want a name", auto, err)
	}

	list, err := c.Faults(ctx(t), "a")
	if err != nil || len(list) != 2 || list[0].Name != "slow" || list[1].Name != auto.Name {
		t.Fatalf("Faults: got %+v, %v; want slow, %s", list, err, auto.Name)
	}
	got, err := c.Fault(ctx(t), "a", "slow")
	if err != nil || got.Name != "slow" || got.Delay != 50*time.Millisecond {
		t.Errorf("Fault(slow): got %+v, %v", got, err)
	}

	f.Delay = 70 * time.Millisecond
	if got, err = c.UpdateFault(ctx(t), "a", f); err != nil || got.Delay != 70*time.Millisecond {
		t.Errorf("UpdateFault: got %+v, %v; want delay 70ms", got, err)
	}
	if got, err = c.Fault(ctx(t), "a", "slow"); err != nil || got.Delay != 70*time.Millisecond {
		t.Errorf("Fault(slow) after update: got %+v, %v; want delay 70ms", got, err)
	}

	if err := c.RemoveFault(ctx(t), "a", "slow"); err != nil {
		t.Fatalf("RemoveFault: %v", err)
	}
	_, err = c.Fault(ctx(t), "a", "slow")
	wantAPIError(t, "Fault(slow) after remove", err, api.ErrNotFound)

	if err := c.ClearFaults(ctx(t), "a"); err != nil {
		t.Fatalf("ClearFaults: %v", err)
	}
	if list, err := c.Faults(ctx(t), "a"); err != nil || len(list) != 0 {
		t.Errorf("Faults after ClearFaults: got %+v, %v; want none", list, err)
	}

	if _, err := c.AddFault(ctx(t), "a", faults.Stall(false)); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(ctx(t)); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if list, err := c.Faults(ctx(t), "a"); err != nil || len(list) != 0 {
		t.Errorf("Faults after Reset: got %+v, %v; want none", list, err)
	}
}

func TestFaultErrors(t *testing.T) {
	fx := newFixture(t, control.Options{})
	fx.createProxy(t, api.ProxySpec{Name: "a"})
	c := fx.c
	if _, err := c.AddFault(ctx(t), "a", faults.Stall(false).WithName("s")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want *api.Error
	}{
		{"add: unknown kind", func() error { _, err := c.AddFault(ctx(t), "a", faults.Fault{Kind: "bogus"}); return err }, api.ErrUnknownKind},
		{"add: bad field", func() error { _, err := c.AddFault(ctx(t), "a", faults.Latency(-time.Second, 0)); return err }, api.ErrBadFault},
		{"add: name taken", func() error { _, err := c.AddFault(ctx(t), "a", faults.Stall(false).WithName("s")); return err }, api.ErrNameTaken},
		{"add: no such proxy", func() error { _, err := c.AddFault(ctx(t), "nope", faults.Stall(false)); return err }, api.ErrNotFound},
		{"list: no such proxy", func() error { _, err := c.Faults(ctx(t), "nope"); return err }, api.ErrNotFound},
		{"get: no such fault", func() error { _, err := c.Fault(ctx(t), "a", "nope"); return err }, api.ErrNotFound},
		{"update: no such fault", func() error { _, err := c.UpdateFault(ctx(t), "a", faults.Stall(true).WithName("nope")); return err }, api.ErrNotFound},
		{"remove: no such fault", func() error { return c.RemoveFault(ctx(t), "a", "nope") }, api.ErrNotFound},
		{"clear: no such proxy", func() error { return c.ClearFaults(ctx(t), "nope") }, api.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAPIError(t, tt.name, tt.call(), tt.want)
		})
	}
}

func TestConns(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	conn := dial(t, p.Listen)
	echoOnce(t, conn, "hello")

	var cs []api.Conn
	eventually(t, "one connection listed with its bytes", func() (bool, string) {
		var err error
		cs, err = fx.c.Conns(ctx(t), "a")
		return err == nil && len(cs) == 1 && cs[0].BytesUp == 5 && cs[0].BytesDown == 5, fmt.Sprintf("%+v, %v", cs, err)
	})
	if cs[0].ID == 0 || cs[0].Client != conn.LocalAddr().String() {
		t.Errorf("conn: got %+v, want an ID and client %s", cs[0], conn.LocalAddr())
	}

	err := fx.c.CloseConn(ctx(t), "a", cs[0].ID+100, proxy.FIN)
	wantAPIError(t, "CloseConn(unknown id)", err, api.ErrNotFound)
	_, err = fx.c.Conns(ctx(t), "nope")
	wantAPIError(t, "Conns(unknown proxy)", err, api.ErrNotFound)

	if err := fx.c.CloseConn(ctx(t), "a", cs[0].ID, proxy.RST); err != nil {
		t.Fatalf("CloseConn(RST): %v", err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after CloseConn(RST): got %v, want ECONNRESET", err)
	}
}

func TestPool(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a", Mode: "pool"})
	conn := dial(t, p.Listen)
	echoOnce(t, conn, "pooled")
	_ = conn.Close()
	eventually(t, "the upstream connection idle in the pool", func() (bool, string) {
		pool, err := fx.c.Pool(ctx(t), "a")
		return err == nil && pool.Idle == 1 && pool.Dialed == 1, fmt.Sprintf("%+v, %v", pool, err)
	})
	n, err := fx.c.DrainPool(ctx(t), "a")
	if err != nil || n != 1 {
		t.Errorf("DrainPool: got %d, %v; want 1", n, err)
	}
	pool, err := fx.c.Pool(ctx(t), "a")
	if err != nil || pool.Idle != 0 || pool.Discarded[proxy.ReasonDrained] != 1 {
		t.Errorf("Pool after drain: got %+v, %v; want none idle, one discarded drained", pool, err)
	}

	fx.createProxy(t, api.ProxySpec{Name: "d"})
	_, err = fx.c.DrainPool(ctx(t), "d")
	wantAPIError(t, "DrainPool(dial mode)", err, api.ErrBadRequest)
	_, err = fx.c.Pool(ctx(t), "nope")
	wantAPIError(t, "Pool(unknown proxy)", err, api.ErrNotFound)
}

func TestEvents(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	fx.createProxy(t, api.ProxySpec{Name: "b"})

	first, err := fx.c.Events(ctx(t), client.EventsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	cursor := first.Next

	// A long poll that starts before the event is answered by it.
	type result struct {
		evs api.Events
		err error
	}
	done := make(chan result, 1)
	go func() {
		evs, err := fx.c.Events(ctx(t), client.EventsQuery{After: cursor, Timeout: waitTimeout, Proxy: "a", Kinds: []string{"accepted"}})
		done <- result{evs, err}
	}()
	dial(t, p.Listen)
	r := <-done
	if r.err != nil {
		t.Fatalf("long poll: %v", r.err)
	}
	if len(r.evs.Events) != 1 || r.evs.Events[0].Proxy != "a" || r.evs.Events[0].Event.Kind != proxy.EventAccepted {
		t.Fatalf("long poll: got %+v, want one accepted event of a", r.evs)
	}
	if r.evs.Next < r.evs.Events[0].ID {
		t.Errorf("long poll: next %d, want at least the event's ID %d", r.evs.Next, r.evs.Events[0].ID)
	}

	// No event of b: an empty answer, with a cursor past the events looked at.
	empty, err := fx.c.Events(ctx(t), client.EventsQuery{After: cursor, Timeout: 10 * time.Millisecond, Proxy: "b"})
	if err != nil || len(empty.Events) != 0 || empty.Next < r.evs.Next {
		t.Errorf("events of b: got %+v, %v; want none, next at least %d", empty, err, r.evs.Next)
	}

	// Limit.
	one, err := fx.c.Events(ctx(t), client.EventsQuery{Limit: 1})
	if err != nil || len(one.Events) != 1 || one.Events[0].ID != 1 {
		t.Errorf("limit 1 from the start: got %+v, %v; want event 1 only", one, err)
	}

	_, err = fx.c.Events(ctx(t), client.EventsQuery{Kinds: []string{"bogus"}})
	wantAPIError(t, "Events(unknown kind)", err, api.ErrBadRequest)
}

func TestEventsCursorExpired(t *testing.T) {
	fx := newFixture(t, control.Options{EventLog: 4})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	for range 3 { // each at least accepted, dialed, closed
		c := dial(t, p.Listen)
		echoOnce(t, c, "x")
		_ = c.Close()
	}
	var err error
	eventually(t, "event 2 overwritten", func() (bool, string) {
		_, err = fx.c.Events(ctx(t), client.EventsQuery{After: 1})
		return err != nil, fmt.Sprint(err)
	})
	wantAPIError(t, "Events(after an overwritten event)", err, api.ErrCursorExpired)
}

func TestToken(t *testing.T) {
	fx := newFixture(t, control.Options{Token: "s3cret"})
	anon := client.New(fx.ts.URL)
	wrong := client.New(fx.ts.URL, client.WithToken("wrong"))
	good := client.New(fx.ts.URL, client.WithToken("s3cret"))

	if err := anon.Healthz(ctx(t)); err != nil {
		t.Errorf("Healthz without a token: %v", err)
	}
	for _, c := range []*client.Client{anon, wrong} {
		_, err := c.Proxies(ctx(t))
		wantAPIError(t, "Proxies without the token", err, api.ErrUnauthorized)
		_, err = c.Dial(ctx(t))
		wantAPIError(t, "Dial without the token", err, api.ErrUnauthorized)
	}
	if _, err := good.Proxies(ctx(t)); err != nil {
		t.Errorf("Proxies with the token: %v", err)
	}
	s, err := good.Dial(ctx(t))
	if err != nil {
		t.Fatalf("Dial with the token: %v", err)
	}
	_ = s.Close()
}

func TestNonJSONErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		want       *api.Error // Code and Status matched
		wantSimple string     // the message
	}{
		{"plain 404", http.StatusNotFound, "404 page not found\n", api.ErrNotFound, "404 page not found"},
		{"bare 502", http.StatusBadGateway, "", &api.Error{Status: 502, Code: "http_502"}, "Bad Gateway"},
		{"JSON without a code", http.StatusConflict, `{"x":1}`, &api.Error{Status: 409, Code: "http_409"}, `{"x":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			_, err := client.New(ts.URL).Proxies(ctx(t))
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("got %T %v, want *api.Error", err, err)
			}
			if ae.Status != tt.want.Status || ae.Code != tt.want.Code || ae.Message != tt.wantSimple {
				t.Errorf("got %+v, want status %d, code %s, message %q", ae, tt.want.Status, tt.want.Code, tt.wantSimple)
			}
		})
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, u := range []string{"ftp://x", "http://", "http://[::1"} {
		c := client.New(u)
		if err := c.Healthz(ctx(t)); !errors.Is(err, client.ErrBadURL) {
			t.Errorf("New(%q).Healthz: got %v, want ErrBadURL", u, err)
		}
		if _, err := c.Dial(ctx(t)); !errors.Is(err, client.ErrBadURL) {
			t.Errorf("New(%q).Dial: got %v, want ErrBadURL", u, err)
		}
	}
}

func TestBaseURLWithoutScheme(t *testing.T) {
	fx := newFixture(t, control.Options{})
	c := client.New(fx.ts.Listener.Addr().String())
	if err := c.Healthz(ctx(t)); err != nil {
		t.Errorf("Healthz at host:port without a scheme: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	err = client.New("http://" + addr).Healthz(ctx(t))
	var ae *api.Error
	if err == nil || errors.As(err, &ae) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Healthz of a closed port: got %v, want ECONNREFUSED and no *api.Error", err)
	}
}
