package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control/api"
)

// panicFixture is a fixture whose server logs to a buffer and panics at
// the hook point at.
func panicFixture(t *testing.T, at string) (*fixture, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	fx := newFixture(t, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	hook := func(where string) {
		if where == at {
			panic("forced by the test at " + where)
		}
	}
	fx.srv.panicHook.Store(&hook)
	return fx, logs
}

// TestPanicHTTP: a handler that panics answers a JSON 500, logs one line,
// and the server (the same keep-alive connection, even) goes on serving.
func TestPanicHTTP(t *testing.T) {
	fx, logs := panicFixture(t, "http POST /api/v1/proxies")
	var conns []bool // reused, per request
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { conns = append(conns, i.Reused) }}
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, fx.ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := fx.ts.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading the body: %v", method, path, err)
		}
		return resp.StatusCode, b
	}

	status, b := do("POST", "/api/v1/proxies", `{"name":"a","upstream":"`+fx.echo+`"}`)
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil || status != http.StatusInternalServerError || e.Code != api.ErrInternal.Code ||
		!strings.Contains(e.Message, "forced by the test") {
		t.Errorf("POST that panics: got %d %s, want 500 with code internal naming the panic", status, b)
	}
	if status, b := do("GET", "/api/v1/proxies", ""); status != http.StatusOK || string(b) != "[]\n" {
		t.Errorf("GET after the panic: got %d %s, want 200 []", status, b)
	}
	if len(conns) != 2 || !conns[1] {
		t.Errorf("connection reused after the panic, per request: %v, want [false true]", conns)
	}
	if l := logs.lines("recovered from a panic"); len(l) != 1 || !strings.Contains(l[0], "path=/api/v1/proxies") || !strings.Contains(l[0], "forced by the test") {
		t.Errorf("log lines about the panic: got %q, want one naming the path and the panic", l)
	}
	// Other requests never met the hook.
	fx.srv.panicHook.Store(nil)
	fx.createProxy(t, api.ProxySpec{Name: "a"})
}

// TestPanicWSMessage: a panic while handling a websocket message answers
// that message with an internal error carrying its id, and the
// connection goes on.
func TestPanicWSMessage(t *testing.T) {
	fx, logs := panicFixture(t, "ws clear-all")
	fx.createProxy(t, api.ProxySpec{Name: "a"})
	ws := fx.dialWS(t, nil)
	id := ws.send(t, api.Request{Op: api.OpClearAll, Proxy: "a"})
	m := ws.read(t)
	if m.Type != api.TypeError || m.ID != id || m.Error == nil || m.Error.Code != api.ErrInternal.Code || !strings.Contains(m.Error.Message, "forced by the test") {
		t.Fatalf("reply to the message that panicked: got %+v, want an internal error with id %s", m, id)
	}
	// Exactly one reply: the next message gets the next answer.
	if m := ws.do(t, api.Request{Op: api.OpClear, Proxy: "a", Name: "nope"}); m.Error == nil || m.Error.Code != api.ErrNotFound.Code {
		t.Fatalf("clearing a fault that is not there, after the panic: got %+v, want not_found", m)
	}
	if l := logs.lines("recovered from a panic"); len(l) != 1 || !strings.Contains(l[0], "websocket=message") || !strings.Contains(l[0], "id="+id) {
		t.Errorf("log lines about the panic: got %q, want one naming the message's id", l)
	}
}

// TestPanicWSGoroutines: a panic in a subscription's goroutine or in the
// writer closes that connection (1011 when it can still be said), logs
// it, and leaves the server serving; goleak (TestMain) checks that the
// connection's goroutines are gone.
func TestPanicWSGoroutines(t *testing.T) {
	t.Run("subscription", func(t *testing.T) {
		fx, logs := panicFixture(t, "ws-sub")
		p := fx.createProxy(t, api.ProxySpec{Name: "a"})
		ws := fx.dialWS(t, nil)
		ws.ok(t, api.Request{Op: api.OpSubscribe, Proxy: "a"})
		echoOnce(t, p.Listen, "an event to stream")
		_ = ws.c.SetReadDeadline(time.Now().Add(waitTimeout))
		for {
			_, _, err := ws.c.ReadMessage()
			if err == nil {
				continue
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr {
				t.Fatalf("subscriber after its goroutine panicked: %v, want a 1011 close", err)
			}
			break
		}
		if l := logs.lines("recovered from a panic"); len(l) != 1 || !strings.Contains(l[0], "websocket=subscription") {
			t.Errorf("log lines about the panic: got %q, want one about the subscription", l)
		}
		fx.srv.panicHook.Store(nil)
		fx.dialWS(t, nil).ok(t, api.Request{Op: api.OpClearAll})
		fx.call(t, "GET", "/api/v1/proxies", nil, http.StatusOK, nil)
	})
	t.Run("writer", func(t *testing.T) {
		fx, logs := panicFixture(t, "ws-write")
		ws := fx.dialWS(t, nil)
		ws.send(t, api.Request{Op: api.OpClearAll})
		_ = ws.c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, b, err := ws.c.ReadMessage(); err == nil {
			t.Fatalf("after the writer panicked: read %s, want the connection closed", b)
		} else if isTimeout(err) {
			t.Fatalf("after the writer panicked: %v, want the connection closed", err)
		}
		if l := logs.lines("recovered from a panic"); len(l) != 1 || !strings.Contains(l[0], "websocket=writer") {
			t.Errorf("log lines about the panic: got %q, want one about the writer", l)
		}
		fx.srv.panicHook.Store(nil)
		fx.dialWS(t, nil).ok(t, api.Request{Op: api.OpClearAll})
	})
}

// TestProxiesLogToServer: a proxy the server runs logs its own lines (a
// session's recovered panic) to the server's logger, named by the proxy;
// before, such proxies had no logger and the line went nowhere.
func TestProxiesLogToServer(t *testing.T) {
	logs := &logBuffer{}
	fx := newFixture(t, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	fx.createProxy(t, api.ProxySpec{Name: "db", Upstream: fx.echo})
	p, err := fx.srv.liveProxy("db")
	if err != nil {
		t.Fatal(err)
	}
	p.Config().Logger.Error("proxy: recovered from a panic in a session")
	if got := logs.lines("recovered from a panic"); len(got) != 1 || !strings.Contains(got[0], "proxy=db") {
		t.Errorf("server log lines %q; want the proxy's line, with proxy=db", got)
	}
}
