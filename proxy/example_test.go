package proxy_test

import (
	"fmt"
	"io"
	"net"

	"github.com/faultline-proxy/faultline/internal/echo"
	"github.com/faultline-proxy/faultline/proxy"
)

// A dial-mode proxy in front of an echo server, with the client using
// half-close: its FIN reaches the upstream, and the reply still comes back.
func Example() {
	up, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer up.Close()

	p, err := proxy.Listen("127.0.0.1:0", proxy.Config{Upstream: up.Addr().String()})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	closed := make(chan proxy.Event, 1)
	cancel := p.Subscribe(func(e proxy.Event) {
		if e.Kind == proxy.EventClosed {
			closed <- e
		}
	})
	defer cancel()

	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	io.WriteString(c, "hello")
	c.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	e := <-closed
	fmt.Printf("%s; %d bytes up, %d down\n", reply, e.BytesUp, e.BytesDown)
	// Output: hello; 5 bytes up, 5 down
}
