package control

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
)

// fuzzOps are the requests FuzzRequestBodies sends a fuzzed body with.
var fuzzOps = []struct{ method, path string }{
	{http.MethodPost, api.Prefix + "/proxies/p/faults"},
	{http.MethodPut, api.Prefix + "/proxies/p/faults/lat"},
	{http.MethodPatch, api.Prefix + "/proxies/p"},
	{http.MethodPost, api.Prefix + "/proxies"},
}

// FuzzRequestBodies sends arbitrary bodies to the endpoints that take one,
// against a server holding proxy p (pool mode, enabled or not, as op
// says) with fault lat. Whatever
// the body, the answer is JSON and never a 5xx; a refusal is an api.Error
// whose status is the HTTP status, and leaves every proxy and fault as it
// was; an answer of 2xx is what the endpoint documents.
//
// No client connects, so no upstream address is ever dialed; bodies that
// would listen on an address other than loopback are skipped.
//
// make test runs the seeds; search for more with
//
//	go test -run '^$' -fuzz FuzzRequestBodies -fuzztime 5m ./control/
func FuzzRequestBodies(f *testing.F) {
	seeds := []string{
		`{"kind":"latency","delay":"10ms"}`,
		`{"name":"lat","kind":"latency","delay":"20ms","dir":"up"}`,
		`{"name":"lat","kind":"bandwidth","rate":10}`,
		`{"name":"lat","kind":"slice","size":3,"delay":"5ms"}`,
		`{"name":"x","kind":"stale","mode":"eof"}`,
		`{"kind":"refuse"}`,
		`{"name":"lat","kind":"latency","delay":"-1s"}`,
		`{"mode":"dial"}`,
		`{"enabled":false}`,
		`{"pool":{"size":2,"idle_timeout":"1s"}}`,
		`{"listen":"127.0.0.1:0","upstream":"127.0.0.1:9"}`,
		`{"upstream":"nohost"}`,
		`{"name":"q","upstream":"127.0.0.1:9","faults":[{"kind":"limit","bytes":10}]}`,
		`{"name":"p","upstream":"127.0.0.1:9"}`,
		`{"name":"q","upstream":"127.0.0.1:9","mode":"dial","faults":[{"kind":"stale","mode":"eof"}]}`,
		`{} {}`,
		`[`,
		``,
	}
	for op := range 2 * len(fuzzOps) {
		for _, s := range seeds {
			f.Add(uint8(op), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		var probe struct{ Listen *string }
		if json.Unmarshal(body, &probe) == nil && probe.Listen != nil && !loopbackListen(*probe.Listen) {
			t.Skip("would listen beyond loopback")
		}
		srv := New(Options{})
		defer srv.Close()
		if _, err := srv.CreateProxy(api.ProxySpec{
			Name: "p", Upstream: "127.0.0.1:9", Mode: "pool", Disabled: int(op)/len(fuzzOps)%2 == 1,
			Faults: []faults.Fault{faults.Latency(time.Nanosecond, 0).WithName("lat")},
		}); err != nil {
			t.Fatal(err)
		}
		before := fuzzState(t, srv)

		o := fuzzOps[int(op)%len(fuzzOps)]
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(o.method, o.path, bytes.NewReader(body)))

		what := o.method + " " + o.path + " " + string(body)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: Content-Type %q", what, ct)
		}
		if rec.Code >= 500 {
			t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var ae api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &ae); err != nil || ae.Code == "" || ae.Message == "" || ae.Status != rec.Code {
				t.Fatalf("%s: status %d with %s: not an api.Error of that status", what, rec.Code, rec.Body)
			}
			if after := fuzzState(t, srv); !reflect.DeepEqual(after, before) {
				t.Fatalf("%s: refused (%s), but the server changed:\nbefore %+v\nafter  %+v", what, rec.Body, before, after)
			}
			return
		}
		// The endpoints answer with the proxy or the fault as it now is.
		var out any = &api.Proxy{}
		if o.path == fuzzOps[0].path || o.path == fuzzOps[1].path {
			out = &faults.Fault{}
		}
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			t.Fatalf("%s: status %d with %s: %v", what, rec.Code, rec.Body, err)
		}
	})
}

// proxyState is what a refused request must leave as it was.
type proxyState struct {
	info   api.Proxy
	faults []faults.Fault
}

func fuzzState(t *testing.T, srv *Server) map[string]proxyState {
	t.Helper()
	st := make(map[string]proxyState)
	for _, p := range srv.Proxies() {
		e, err := srv.entry(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		st[p.Name] = proxyState{info: p, faults: e.faults()}
	}
	return st
}

// loopbackListen reports whether addr, as a listen address, is on
// loopback. An address that does not split into host and port passes: the
// server refuses it before anything listens.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// FuzzWSRequests sends arbitrary messages on the websocket, each followed
// by a request of known id. Every message gets exactly one answer (ok or
// error) before that request's, with the message's id when it has a
// string one, and the connection stays open.
//
// make test runs the seeds; search for more with
//
//	go test -run '^$' -fuzz FuzzWSRequests -fuzztime 5m ./control/
func FuzzWSRequests(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","op":"inject","proxy":"p","fault":{"kind":"latency","delay":"1ms"}}`,
		`{"id":"1","op":"update","proxy":"p","fault":{"name":"lat","kind":"latency","delay":"2ms"}}`,
		`{"id":"1","op":"clear","proxy":"p","name":"lat"}`,
		`{"id":"1","op":"clear-all"}`,
		`{"id":"1","op":"explode"}`,
		`{"id":"1","op":"subscribe","after":0}`,
		`{"id":"1","op":"subscribe","kinds":["closed","nope"]}`,
		`{"id":"1","op":"unsubscribe","sub":"s1"}`,
		`{"id":"1","op":"inject","proxy":"p","fault":{"name":"..","kind":"stall"}}`,
		`{"id":"x","op":"inject","bogus":1}`,
		`{"id":7}`,
		`{"op":"clear-all"}`,
		`[]`,
		`{"id":"1",`,
		``,
	} {
		f.Add([]byte(s))
	}
	const sentinel = "sentinel-id"
	f.Fuzz(func(t *testing.T, msg []byte) {
		if bytes.Contains(msg, []byte(sentinel)) {
			t.Skip("the message could pass for the sentinel's answer")
		}
		fx := newFixture(t, Options{})
		if _, err := fx.srv.CreateProxy(api.ProxySpec{
			Name: "p", Upstream: fx.echo, Mode: "pool",
			Faults: []faults.Fault{faults.Latency(time.Nanosecond, 0).WithName("lat")},
		}); err != nil {
			t.Fatal(err)
		}
		ws := fx.dialWS(t, nil)
		if err := ws.c.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
		if err := ws.c.WriteJSON(api.Request{ID: sentinel, Op: api.OpUnsubscribe, Sub: "none"}); err != nil {
			t.Fatal(err)
		}
		var answers []api.Message
		for {
			m := ws.read(t)
			if m.Type == api.TypeEvent {
				continue
			}
			if m.ID == sentinel && m.Type == api.TypeError && m.Error != nil && m.Error.Code == api.ErrNotFound.Code {
				break
			}
			answers = append(answers, m)
		}
		if len(answers) != 1 || (answers[0].Type != api.TypeOK && answers[0].Type != api.TypeError) {
			t.Fatalf("%q: answers %+v, want exactly one ok or error", msg, answers)
		}
		if a := answers[0]; a.Type == api.TypeError && (a.Error == nil || a.Error.Code == "" || a.Error.Message == "" || a.Error.Code == api.ErrInternal.Code) {
			t.Fatalf("%q: error answer %+v: want a code and a message, not internal", msg, a)
		}
		var withID struct{ ID string }
		if json.Unmarshal(msg, &withID) == nil && answers[0].ID != withID.ID {
			t.Fatalf("%q: answer %+v has id %q, want %q", msg, answers[0], answers[0].ID, withID.ID)
		}
	})
}
