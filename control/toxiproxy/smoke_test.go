package toxiproxy_test

import (
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

func TestSmoke(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	p, err := f.c.CreateProxy("redis", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", p)
	c := dial(t, p.Listen)
	t.Log(roundTrip(t, c, "hello"))
	if _, err := p.AddToxic("", "latency", "", 1, toxiclient.Attributes{"latency": 200}); err != nil {
		t.Fatal(err)
	}
	if d := roundTrip(t, c, "hello"); d < 200*time.Millisecond {
		t.Fatalf("round trip %v", d)
	}
	ts, err := p.Toxics()
	t.Logf("%+v %v", ts, err)
	if err := p.RemoveToxic("latency_downstream"); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.Proxy("nope")
	t.Log(err, apiStatus(err))
}
