package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/echo"
)

func Example() {
	// A control server and an upstream; in real use, the faultline binary
	// and the service your code talks to.
	up, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()
	srv := control.New(control.Options{})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()

	ctx := context.Background()
	c := client.New(ts.URL)
	p, err := c.CreateProxy(ctx, api.ProxySpec{Name: "db", Upstream: up.Addr().String()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteProxy(ctx, p.Name)

	f, err := c.AddFault(ctx, "db", faults.Latency(150*time.Millisecond, 0).WithDir(faults.Down))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added", f.Name, f.Kind, f.Dir, f.Delay)

	_, err = c.AddFault(ctx, "nope", faults.Stall(false))
	fmt.Println(errors.Is(err, api.ErrNotFound), err)

	s, err := c.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Clear(ctx, "db", f.Name); err != nil {
		log.Fatal(err)
	}
	fs, err := c.Faults(ctx, "db")
	fmt.Println(len(fs), err)
	// Output:
	// added latency-1 latency down 150ms
	// true faultline: no proxy named "nope" (not_found)
	// 0 <nil>
}
