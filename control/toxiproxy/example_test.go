package toxiproxy_test

import (
	"fmt"
	"log"
	"net/http"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/toxiproxy"
)

// A Go test's own server answering both APIs on one port, driven by
// toxiproxy's Go client.
func Example() {
	cs := control.New(control.Options{})
	defer cs.Close()
	cs.Mount(toxiproxy.New(cs, toxiproxy.Options{Seed: 1}))
	addr, err := cs.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	c := toxiclient.NewClient(addr.String())
	p, err := c.CreateProxy("redis", "127.0.0.1:0", "127.0.0.1:6379")
	if err != nil {
		log.Fatal(err)
	}
	t, err := p.AddToxic("", "latency", "downstream", 1, toxiclient.Attributes{"latency": 100})
	if err != nil {
		log.Fatal(err)
	}
	fs, _ := cs.Faults("redis") // the same proxy, seen through faultline's API
	fmt.Println(t.Name, "->", fs[0].Kind, fs[0].Dir, fs[0].Delay)
	// Output: latency_downstream -> latency down 100ms
}
