package toxiproxy_test

import (
	"net/http"
	"strings"
	"testing"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

func TestToxicCRUD(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	p, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	// Defaults: stream downstream, name <type>_<stream>, toxicity 1; 200, not 201.
	r := f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":10}}`)
	r.want(t, 200, `{"attributes":{"latency":10,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`)
	// The stream as sent names the toxic and is echoed.
	r = f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency","stream":"UPSTREAM"}`)
	r.want(t, 200, `{"attributes":{"latency":0,"jitter":0},"name":"latency_UPSTREAM","type":"latency","stream":"UPSTREAM","toxicity":1}`)
	// Names are unique across both streams.
	f.do(t, "POST", "/proxies/p/toxics", `{"name":"latency_downstream","type":"bandwidth","stream":"upstream"}`).wantError(t, 409, "toxic already exists")
	_, err = p.AddToxic("latency_downstream", "latency", "downstream", 1, nil)
	if apiStatus(err) != http.StatusConflict {
		t.Fatalf("duplicate toxic: %v", err)
	}
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency","stream":"sideways"}`).wantError(t, 400, "stream was invalid, can be either upstream or downstream")
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"jam"}`).wantError(t, 400, "invalid toxic type")
	f.do(t, "POST", "/proxies/p/toxics", `{"attributes":{}}`).wantError(t, 400, "invalid toxic type")
	f.do(t, "POST", "/proxies/p/toxics", `{"name":"x","type":"latency","attributes":{"latency":1.5}}`).wantError(t, 400, "bad request body: ")
	f.do(t, "POST", "/proxies/p/toxics", `{"name":"x","type":"latency","attributes":{"latency":"100"}}`).wantError(t, 400, "bad request body: ")
	f.do(t, "POST", "/proxies/p/toxics", `{"type":`).wantError(t, 400, "bad request body: ")
	f.do(t, "POST", "/proxies/nope/toxics", `{"type":"latency"}`).wantError(t, 404, "proxy not found")
	// What toxiproxy crashes or misbehaves on is a 400.
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"slicer"}`).wantError(t, 400, "invalid toxic attribute: average_size must be positive")
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"bandwidth","attributes":{"rate":-1}}`).wantError(t, 400, "invalid toxic attribute")
	// Keys match whatever their case.
	f.do(t, "POST", "/proxies/p/toxics", `{"Type":"latency","Name":"cased","Attributes":{"Latency":7}}`).want(t, 200,
		`{"attributes":{"latency":7,"jitter":0},"name":"cased","type":"latency","stream":"downstream","toxicity":1}`)

	// Every type, every attribute in the answer.
	for _, tt := range []struct{ typ, attrs string }{
		{"bandwidth", `{"rate":0}`},
		{"slow_close", `{"delay":0}`},
		{"timeout", `{"timeout":0}`},
		{"reset_peer", `{"timeout":0}`},
		{"slicer", `{"average_size":1,"size_variation":0,"delay":0}`},
		{"limit_data", `{"bytes":0}`},
		{"noop", `{}`},
	} {
		body := `{"type":"` + tt.typ + `","stream":"upstream","toxicity":0`
		if tt.typ == "slicer" {
			body += `,"attributes":{"average_size":1}`
		}
		f.do(t, "POST", "/proxies/p/toxics", body+`}`).want(t, 200,
			`{"attributes":`+tt.attrs+`,"name":"`+tt.typ+`_upstream","type":"`+tt.typ+`","stream":"upstream","toxicity":0}`)
		f.do(t, "GET", "/proxies/p/toxics/"+tt.typ+"_upstream", "").want(t, 200,
			`{"attributes":`+tt.attrs+`,"name":"`+tt.typ+`_upstream","type":"`+tt.typ+`","stream":"upstream","toxicity":0}`)
	}

	// Upstream toxics are listed first, then downstream ones, each in order.
	ts, err := p.Toxics()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tx := range ts {
		names = append(names, tx.Name)
	}
	want := "latency_UPSTREAM bandwidth_upstream slow_close_upstream timeout_upstream reset_peer_upstream slicer_upstream limit_data_upstream noop_upstream latency_downstream cased"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("toxics\n%s\nwant\n%s", got, want)
	}

	// Update merges: an attribute given, the others kept; toxicity kept if absent.
	tx, err := p.UpdateToxic("latency_downstream", 0.5, toxiclient.Attributes{"jitter": 5})
	if err != nil {
		t.Fatal(err)
	}
	if tx.Attributes["latency"] != float64(10) || tx.Attributes["jitter"] != float64(5) || tx.Toxicity != 0.5 {
		t.Fatalf("updated %+v", tx)
	}
	f.do(t, "POST", "/proxies/p/toxics/latency_downstream", `{"attributes":{"latency":20},"name":"renamed","type":"bandwidth","stream":"upstream"}`).want(t, 200,
		`{"attributes":{"latency":20,"jitter":5},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.5}`)
	f.do(t, "PATCH", "/proxies/p/toxics/latency_downstream", `{"toxicity":1}`).want(t, 200,
		`{"attributes":{"latency":20,"jitter":5},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`)
	f.do(t, "PATCH", "/proxies/p/toxics/nope", `{}`).wantError(t, 404, "toxic not found")
	f.do(t, "PATCH", "/proxies/nope/toxics/x", `{}`).wantError(t, 404, "proxy not found")
	f.do(t, "PATCH", "/proxies/p/toxics/latency_downstream", `{"attributes":{"latency":-1}}`).wantError(t, 400, "invalid toxic attribute")
	f.do(t, "PATCH", "/proxies/p/toxics/latency_downstream", `{"attributes":{"latency":1.5}}`).wantError(t, 400, "bad request body")

	f.do(t, "GET", "/proxies/p/toxics/nope", "").wantError(t, 404, "toxic not found")
	f.do(t, "DELETE", "/proxies/p/toxics/cased", "").want(t, 204, "")
	f.do(t, "DELETE", "/proxies/p/toxics/cased", "").wantError(t, 404, "toxic not found")
	if err := p.RemoveToxic("latency_downstream"); err != nil {
		t.Fatal(err)
	}
	f.do(t, "DELETE", "/proxies/nope/toxics/x", "").wantError(t, 404, "proxy not found")
}

// A toxic's create body is read as toxiproxy reads it: its first JSON
// value only (what follows is ignored), attributes that are not an object
// are a 400 naming ToxicWrapper.attributes, and null attributes are zero.
func TestToxicCreateBodyAsToxiproxy(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	if _, err := f.c.CreateProxy("p", "127.0.0.1:0", up.addr()); err != nil {
		t.Fatal(err)
	}
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":3}} trailing`).want(t, 200,
		`{"attributes":{"latency":3,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`)
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency","name":"s","attributes":"foo"}`).wantError(t, 400,
		"bad request body: json: cannot unmarshal string into Go struct field ToxicWrapper.attributes of type toxiproxy.NoopToxic")
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"latency","name":"n","toxicity":"1"}`).wantError(t, 400,
		"bad request body: json: cannot unmarshal string into Go struct field ToxicWrapper.toxicity of type float32")
	f.do(t, "POST", "/proxies/p/toxics", `{"type":"bandwidth","name":"z","attributes":null}`).want(t, 200,
		`{"attributes":{"rate":0},"name":"z","type":"bandwidth","stream":"downstream","toxicity":1}`)
}
