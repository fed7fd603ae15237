package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// wsClient is a test's websocket connection; only the test goroutine
// reads and writes it.
type wsClient struct {
	c   *websocket.Conn
	seq int
}

func (fx *fixture) dialWS(t *testing.T, hdr http.Header) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(fx.ts.URL, "http") + "/api/v1/ws"
	c, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{c: c}
}

// request sends req with a fresh id and returns that id.
func (w *wsClient) send(t *testing.T, req api.Request) string {
	t.Helper()
	w.seq++
	req.ID = fmt.Sprint(w.seq)
	if err := w.c.WriteJSON(req); err != nil {
		t.Fatal(err)
	}
	return req.ID
}

func (w *wsClient) read(t *testing.T) api.Message {
	t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(waitTimeout))
	var m api.Message
	if err := w.c.ReadJSON(&m); err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	return m
}

// do sends req and returns its reply, failing if anything else comes
// first (no subscription may be streaming).
func (w *wsClient) do(t *testing.T, req api.Request) api.Message {
	t.Helper()
	id := w.send(t, req)
	m := w.read(t)
	if m.ID != id || (m.Type != api.TypeOK && m.Type != api.TypeError) {
		t.Fatalf("request %s %+v: got %+v, want its reply", id, req, m)
	}
	return m
}

func (w *wsClient) ok(t *testing.T, req api.Request) api.Message {
	t.Helper()
	m := w.do(t, req)
	if m.Type != api.TypeOK {
		t.Fatalf("%s: got error %+v", req.Op, m.Error)
	}
	return m
}

func TestWSOps(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.createProxy(t, api.ProxySpec{Name: "a"})
	fx.createProxy(t, api.ProxySpec{Name: "b"})
	ws := fx.dialWS(t, nil)
	slow := faults.Latency(time.Millisecond, 0).WithName("slow")
	m := ws.ok(t, api.Request{Op: "inject", Proxy: "a", Fault: &slow})
	if m.Fault == nil || m.Fault.Name != "slow" || m.Fault.Target.Which != faults.All {
		t.Errorf("inject reply %+v: want the fault as in force", m)
	}
	unnamed := faults.Stall(false)
	if m := ws.ok(t, api.Request{Op: "inject", Proxy: "b", Fault: &unnamed}); m.Fault == nil || m.Fault.Name == "" {
		t.Errorf("inject of an unnamed fault: %+v, want it named", m)
	}
	slow.Delay = 2 * time.Millisecond
	if m := ws.ok(t, api.Request{Op: "update", Proxy: "a", Fault: &slow}); m.Fault.Delay != 2*time.Millisecond {
		t.Errorf("update reply %+v", m)
	}
	ws.ok(t, api.Request{Op: "clear", Proxy: "a", Name: "slow"})
	ws.ok(t, api.Request{Op: "inject", Proxy: "a", Fault: &slow})
	ws.ok(t, api.Request{Op: "clear-all", Proxy: "a"})
	if got := len(fx.srv.Proxies()[0:1]); got != 1 || fx.srv.Proxies()[0].Faults != 0 || fx.srv.Proxies()[1].Faults != 1 {
		t.Errorf("after clear-all a: %+v", fx.srv.Proxies())
	}
	ws.ok(t, api.Request{Op: "clear-all"})
	if fx.srv.Proxies()[1].Faults != 0 {
		t.Errorf("after clear-all: %+v", fx.srv.Proxies())
	}
	sub := ws.ok(t, api.Request{Op: "subscribe", Proxy: "a", Kinds: []string{"closed"}})
	if sub.Sub == "" {
		t.Fatalf("subscribe reply %+v: want a subscription id", sub)
	}
	ws.ok(t, api.Request{Op: "unsubscribe", Sub: sub.Sub})

	bad := faults.Fault{Kind: "warp"}
	badField := faults.Latency(-1, 0)
	tests := []struct {
		name string
		req  api.Request
		code string
	}{
		{"unknown op", api.Request{Op: "explode"}, "bad_request"},
		{"unknown proxy", api.Request{Op: "inject", Proxy: "zz", Fault: &slow}, "not_found"},
		{"no fault", api.Request{Op: "inject", Proxy: "a"}, "bad_request"},
		{"unknown kind", api.Request{Op: "inject", Proxy: "a", Fault: &bad}, "unknown_kind"},
		{"bad field", api.Request{Op: "inject", Proxy: "a", Fault: &badField}, "bad_fault"},
		{"update unknown", api.Request{Op: "update", Proxy: "a", Fault: &slow}, "not_found"},
		{"clear unknown", api.Request{Op: "clear", Proxy: "a", Name: "nope"}, "not_found"},
		{"clear-all unknown proxy", api.Request{Op: "clear-all", Proxy: "zz"}, "not_found"},
		{"subscribe bad kind", api.Request{Op: "subscribe", Kinds: []string{"boom"}}, "bad_request"},
		{"unsubscribe unknown", api.Request{Op: "unsubscribe", Sub: "s99"}, "not_found"},
	}
	for _, tt := range tests {
		m := ws.do(t, tt.req)
		if m.Type != api.TypeError || m.Error == nil || m.Error.Code != tt.code || m.Error.Message == "" {
			t.Errorf("%s: reply %+v, want an error with code %s", tt.name, m, tt.code)
		}
	}
	// Malformed messages get one error reply too, with the id when it can
	// be read.
	for _, raw := range []string{`{"id":"x1","op":"inject","bogus":1}`, `{"id":"x2",`, `{"op":"clear-all"}`} {
		if err := ws.c.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		m := ws.read(t)
		if m.Type != api.TypeError || m.Error == nil {
			t.Errorf("%s: reply %+v, want an error", raw, m)
		}
		if strings.HasPrefix(raw, `{"id":"x1"`) && m.ID != "x1" {
			t.Errorf("%s: reply id %q, want x1", raw, m.ID)
		}
	}
	// Exactly one reply each: the next message answers the next request.
	ws.ok(t, api.Request{Op: "clear-all"})

	// A clean close.
	if err := ws.c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	_ = ws.c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, _, err := ws.c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after our close frame: %v, want the server's normal close", err)
	}
}

// TestWSInjectThenTraffic shows the ok for inject means in force: the first
// byte the client sends after it is already held by the stall.
func TestWSInjectThenTraffic(t *testing.T) {
	fx := newFixture(t, Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	ws := fx.dialWS(t, nil)
	c, err := net.Dial("tcp", p.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	stall := faults.Stall(false).WithDir(faults.Up).WithName("stall")
	for i := range 30 {
		b := []byte{byte('a' + i%26)}
		ws.ok(t, api.Request{Op: "inject", Proxy: "a", Fault: &stall})
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := c.Read(buf); n != 0 || !isTimeout(err) {
			t.Fatalf("round %d: the byte written after ok came back (%q, %v); the stall was not in force", i, buf[:n], err)
		}
		ws.ok(t, api.Request{Op: "clear", Proxy: "a", Name: "stall"})
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != b[0] {
			t.Fatalf("round %d: after clear got %q, %v; want %q", i, buf, err, b)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestEventStreamGapFree runs 2000 connections (over 10000 events) while a
// websocket subscription and an HTTP long-poll reader each read the whole
// stream: both see every event once, in order.
func TestEventStreamGapFree(t *testing.T) {
	fx := newFixture(t, Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	ws := fx.dialWS(t, nil)
	from := uint64(0)
	sub := ws.ok(t, api.Request{Op: "subscribe", After: &from})

	// The long-poll reader reads until it has the number of events sent on
	// want, or until it fails.
	want := make(chan uint64, 1)
	httpIDs := make(chan []uint64, 1)
	go func() { httpIDs <- pollAll(fx.ts.URL, want) }()

	const conns = 2000
	for i := range conns {
		c, err := net.Dial("tcp", p.Listen)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "x"); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "x" {
			t.Fatalf("conn %d: read %q, %v", i, b, err)
		}
		c.Close()
	}
	// Each connection makes at least 5 events, its EventClosed last. A
	// connection stops counting in Conns when its sockets are closed, just
	// before that event is recorded, so wait for both.
	const wantEvents = 5 * conns
	deadline := time.Now().Add(waitTimeout)
	for p := fx.srv.Proxies()[0]; (p.Conns > 0 || fx.srv.log.last() < wantEvents) && time.Now().Before(deadline); p = fx.srv.Proxies()[0] {
		time.Sleep(10 * time.Millisecond)
	}
	total := fx.srv.log.last()
	if total < wantEvents {
		t.Fatalf("only %d events from %d connections", total, conns)
	}
	// The websocket stream: IDs 1..total, and each proxy's Seq in order.
	var lastSeq uint64
	for want := uint64(1); want <= total; want++ {
		m := ws.read(t)
		if m.Type != api.TypeEvent || m.Sub != sub.Sub || m.Event == nil || m.Event.ID != want {
			t.Fatalf("websocket: want event %d, got %+v", want, m)
		}
		if m.Event.Event.Seq <= lastSeq {
			t.Fatalf("websocket: event %d has seq %d after seq %d", want, m.Event.Event.Seq, lastSeq)
		}
		lastSeq = m.Event.Event.Seq
	}
	want <- total
	var ids []uint64
	select {
	case ids = <-httpIDs:
	case <-time.After(3 * waitTimeout):
		t.Fatal("the long-poll reader did not finish")
	}
	if uint64(len(ids)) != total {
		t.Errorf("long poll read %d events, want %d", len(ids), total)
	}
	for i, id := range ids {
		if id != uint64(i+1) {
			t.Fatalf("long poll: event %d has ID %d, want %d", i, id, i+1)
		}
	}
	t.Logf("%d events from %d connections, read gap-free by both readers", total, conns)
}

// pollAll reads the event log by long polls and returns the IDs it read,
// once it has as many as want says, or on an error.
func pollAll(base string, want <-chan uint64) []uint64 {
	var ids []uint64
	after, total := uint64(0), uint64(0)
	for total == 0 || uint64(len(ids)) < total {
		select {
		case total = <-want:
		default:
		}
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/events?after=%d&timeout=100ms&limit=137", base, after))
		if err != nil {
			return ids
		}
		var evs api.Events
		err = json.NewDecoder(resp.Body).Decode(&evs)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return ids
		}
		for _, e := range evs.Events {
			ids = append(ids, e.ID)
		}
		after = evs.Next
	}
	return ids
}

// TestWSSlowReaderDropped: a subscriber that does not read is dropped with
// a close frame saying why, and the proxies keep relaying meanwhile.
func TestWSSlowReaderDropped(t *testing.T) {
	fx := newFixture(t, Options{EventLog: 512})
	fx.srv.wsQueue, fx.srv.wsSlowAfter = 8, 200*time.Millisecond
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	ws := fx.dialWS(t, nil)
	ws.ok(t, api.Request{Op: "subscribe"})
	// Far more events than the socket buffers, the queue and the log hold,
	// while nobody reads the websocket.
	for i := range 100000 {
		fx.srv.log.append("a", proxy.Event{Seq: uint64(i + 1), Kind: proxy.EventAccepted})
	}
	for range 200 {
		echoOnce(t, p.Listen, "relay goes on")
	}
	_ = ws.c.SetReadDeadline(time.Now().Add(3 * waitTimeout))
	for {
		_, _, err := ws.c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "slow reader") {
			t.Fatalf("slow reader got %v, want a close frame 1008 saying slow reader", err)
		}
		t.Logf("close frame: %d %q", ce.Code, ce.Text)
		return
	}
}

func TestWSTokenAndOrigin(t *testing.T) {
	fx := newFixture(t, Options{Token: "tok", AllowOrigins: []string{"http://ui.example"}})
	url := "ws" + strings.TrimPrefix(fx.ts.URL, "http") + "/api/v1/ws"
	tests := []struct {
		name   string
		hdr    http.Header
		status int
	}{
		{"no token", http.Header{}, http.StatusUnauthorized},
		{"wrong token", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized},
		{"foreign origin", http.Header{"Authorization": {"Bearer tok"}, "Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"allowed origin", http.Header{"Authorization": {"Bearer tok"}, "Origin": {"http://ui.example"}}, http.StatusSwitchingProtocols},
		{"own origin", http.Header{"Authorization": {"Bearer tok"}, "Origin": {fx.ts.URL}}, http.StatusSwitchingProtocols},
		{"no origin", http.Header{"Authorization": {"Bearer tok"}}, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		c, resp, err := websocket.DefaultDialer.Dial(url, tt.hdr)
		if c != nil {
			c.Close()
		}
		if resp == nil {
			t.Errorf("%s: no response: %v", tt.name, err)
			continue
		}
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}
}

// TestWSKeepalive: the server pings; a client that answers (by reading)
// stays, one that does not is dropped with a close frame that says why.
func TestWSKeepalive(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.srv.wsPing, fx.srv.wsPongWait = 20*time.Millisecond, 300*time.Millisecond
	ws := fx.dialWS(t, nil)
	pings := 0
	ws.c.SetPingHandler(func(data string) error {
		pings++
		return ws.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	// Reading answers the pings; the connection outlives the pong wait.
	_ = ws.c.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := ws.c.ReadMessage(); !isTimeout(err) {
		t.Fatalf("reading an idle, answered connection: %v, want our own deadline", err)
	}
	if pings < 5 {
		t.Errorf("%d pings in 1s at a 20ms interval, want at least 5", pings)
	}
	// A client that stops reading stops answering.
	quiet := fx.dialWS(t, nil)
	quiet.c.SetPingHandler(func(string) error { return nil }) // too late to answer anyway
	time.Sleep(time.Second)
	_ = quiet.c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		_, _, err := quiet.c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || !strings.Contains(ce.Text, "no pong") {
			t.Fatalf("silent client: %v, want a 1001 close saying no pong", err)
		}
		break
	}
}
