package toxiproxy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/toxiproxy"
)

// FuzzToxicBodies sends any body to the toxic endpoints: each answer is a
// toxiproxy answer (never a 500, which is what a recovered panic gives),
// make test runs the seeds; to fuzz:
// go test -run '^$' -fuzz FuzzToxicBodies ./control/toxiproxy/
func FuzzToxicBodies(f *testing.F) {
	for _, s := range []string{
		`{"type":"latency","attributes":{"latency":100,"jitter":5}}`,
		`{"type":"slicer","attributes":{"average_size":0}}`,
		`{"type":"slicer","attributes":{"average_size":1,"size_variation":99999999999}}`,
		`{"type":"bandwidth","stream":"UPSTREAM","toxicity":0.5,"attributes":{"rate":-5}}`,
		`{"type":"timeout","attributes":{"timeout":9223372036854775807}}`,
		`{"type":"limit_data","attributes":{"bytes":-9223372036854775808}}`,
		`{"type":"reset_peer","toxicity":-3}`,
		`{"type":"noop","attributes":null}`,
		`{"type":"latency","attributes":[1,2]}`,
		`{"attributes":5}`, `{"toxicity":"x"}`, `null`, `[]`, ``, `{`,
	} {
		f.Add(s, `{"attributes":{"latency":7},"toxicity":0.25}`)
	}
	cs := control.New(control.Options{})
	defer cs.Close()
	cs.Mount(toxiproxy.New(cs, toxiproxy.Options{Seed: 1}))
	h := cs.Handler()
	if _, err := cs.CreateProxy(api.ProxySpec{Name: "p", Upstream: "127.0.0.1:1", Disabled: true}); err != nil {
		f.Fatal(err)
	}
	do := func(t *testing.T, method, path, body string) int {
		req := httptest.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code == http.StatusForbidden {
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
		}
		return w.Code
	}
	f.Fuzz(func(t *testing.T, create, update string) {
		if do(t, "POST", "/proxies/p/toxics", create) == http.StatusOK {
			// the toxic's name is not known here: update and remove every one
			for _, name := range []string{"latency_downstream", "slicer_downstream", "bandwidth_UPSTREAM", "timeout_downstream", "limit_data_downstream", "reset_peer_downstream", "noop_downstream"} {
				do(t, "PATCH", "/proxies/p/toxics/"+name, update)
			}
		}
		do(t, "POST", "/reset", "")
		do(t, "PATCH", "/proxies/p", `{"enabled":false}`)
	})
}
