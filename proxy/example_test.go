package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
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

// The common loop of a test: start a proxy, add a fault, wait for the
// event that says it acted, remove it. Here a reset toward the client of
// a live connection: the client reads ECONNRESET, the log says the proxy
// ended the session with an RST, and once the fault is removed a new
// connection works.
func ExampleProxy_Subscribe() {
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
	events := make(chan proxy.Event, 100)
	cancel := p.Subscribe(func(e proxy.Event) { events <- e }) // called in Seq order; must not block
	defer cancel()
	await := func(kind proxy.EventKind) proxy.Event {
		for e := range events {
			if e.Kind == kind {
				return e
			}
		}
		panic("unreachable")
	}

	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	io.WriteString(c, "hi")
	io.ReadFull(c, make([]byte, 2))

	f, err := p.AddFault(faults.Reset(faults.ToClient).WithName("cut"))
	if err != nil {
		panic(err)
	}
	fmt.Println(await(proxy.EventFaultFired))
	fmt.Println(await(proxy.EventClosed))
	_, err = c.Read(make([]byte, 1))
	fmt.Println("client:", errors.Is(err, syscall.ECONNRESET))

	if err := p.RemoveFault(f.Name); err != nil {
		panic(err)
	}
	c2, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c2.Close()
	io.WriteString(c2, "again")
	buf := make([]byte, 5)
	_, err = io.ReadFull(c2, buf)
	fmt.Printf("after: %s %v\n", buf, err)
	// Output:
	// #3 fault-fired conn=1 upstream=1 fault=cut (reset)
	// #4 closed conn=1 upstream=1 bytes_up=2B bytes_down=2B by=proxy how=RST err=fault "cut"
	// client: true
	// after: again <nil>
}
