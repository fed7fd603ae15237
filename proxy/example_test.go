package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/faultline-proxy/faultline/faults"
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

// A stall on the upstream-to-client direction: the client's read deadline
// catches it, and once the fault is removed the held bytes arrive.
func ExampleProxy_AddFault() {
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
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()

	f, err := p.AddFault(faults.Stall(false).WithDir(faults.Down))
	if err != nil {
		panic(err)
	}
	io.WriteString(c, "ping")
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	fmt.Println("while stalled:", errors.Is(err, os.ErrDeadlineExceeded))

	p.RemoveFault(f.Name)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(c, buf)
	fmt.Printf("after: %s %v\n", buf, err)
	// Output:
	// while stalled: true
	// after: ping <nil>
}
