package testkit_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"syscall"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/echo"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
)

// Connect drives a proxy of a running faultline through its control API.
// Here the control server runs in-process; in CI it is the faultline binary
// and the URL is the one its "control listening on" line prints.
func ExampleConnect() {
	up, _ := echo.Listen("127.0.0.1:0")
	defer up.Close()
	srv := control.New(control.Options{})
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	srv.CreateProxy(api.ProxySpec{Name: "echo", Upstream: up.Addr().String()})
	t := &exampleT{} // in a test: t *testing.T
	defer t.done()   // the test's cleanups: px.Close, before the server closes

	px := testkit.Connect(t, ts.URL, "echo")
	f := px.Inject(faults.Reset(faults.ToClient)) // in force once Inject returns
	c, err := net.Dial("tcp", px.Addr())
	if err == nil { // the RST can also beat connect's return: Dial fails with it
		_, err = io.ReadAll(c)
		c.Close()
	}
	fmt.Println("client reset:", errors.Is(err, syscall.ECONNRESET))
	fmt.Println("fault fired:", px.Await(proxy.EventFaultFired).Fault == f.Name())
	// Output:
	// client reset: true
	// fault fired: true
}
