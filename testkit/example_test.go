package testkit_test

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
	"github.com/faultline-proxy/faultline/testkit"
)

// A proxy in front of an echo server: the client talks through it, and the
// test reads what happened from the event log.
func ExampleNewProxy() {
	t := &exampleT{} // in a test: t *testing.T
	defer t.done()
	up, _ := echo.Listen("127.0.0.1:0")
	defer up.Close()

	px := testkit.NewProxy(t, up.Addr().String())
	c, _ := net.Dial("tcp", px.Addr())
	io.WriteString(c, "hello")
	io.ReadFull(c, make([]byte, 5))
	c.Close()

	closed := px.Await(proxy.EventClosed, testkit.OnConn(1))
	fmt.Printf("conn %d: %d bytes up, %d down, closed by the %s\n", closed.Conn, closed.BytesUp, closed.BytesDown, closed.By)
	fmt.Println(testkit.Within(5*time.Second, func() error { return testkit.CheckNothingOpen(px) }))
	// Output:
	// conn 1: 5 bytes up, 5 down, closed by the client
	// <nil>
}

// A stall toward the client: the client's read deadline catches it, and the
// check confirms the client gave up in time.
func ExampleProxy_Inject() {
	t := &exampleT{}
	defer t.done()
	up, _ := echo.Listen("127.0.0.1:0")
	defer up.Close()
	px := testkit.NewProxy(t, up.Addr().String())
	c, _ := net.Dial("tcp", px.Addr())

	stall := px.Inject(faults.Stall(false).WithDir(faults.Down))
	io.WriteString(c, "ping")
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := io.ReadFull(c, make([]byte, 4))
	fmt.Println("read timed out:", errors.Is(err, os.ErrDeadlineExceeded))
	c.Close() // the client gives up

	px.Await(proxy.EventHalfClosed, testkit.InDir(proxy.Up))
	fmt.Println(testkit.CheckGaveUpWithin(px.Events(), 100*time.Millisecond, 2*time.Second))
	stall.Clear()
	// Output:
	// read timed out: true
	// <nil>
}

// A check on a recorded run, here events as the control API would return
// them: the client wrote on a connection after the upstream's FIN reached it.
func ExampleCheckNoWriteAfterClose() {
	log := testkit.NewEventLog(
		proxy.Event{Seq: 7, Kind: proxy.EventHalfClosed, Conn: 3, Upstream: 3, Dir: proxy.Down, BytesUp: 14, BytesDown: 120},
		proxy.Event{Seq: 9, Kind: proxy.EventClosed, Conn: 3, Upstream: 3, BytesUp: 28, BytesDown: 120, By: proxy.Upstream, How: proxy.RST},
	)
	err := testkit.CheckNoWriteAfterClose(log)
	fmt.Println(errors.Is(err, testkit.ErrWriteAfterClose))
	fmt.Println(err)
	// Output:
	// true
	// testkit: client wrote after the connection was closed toward it: 1 found:
	//   - conn 3: the client wrote 14 bytes after the proxy relayed the upstream's FIN to it (14 bytes before, 28 at close)
	//       #7 half-closed conn=3 upstream=3 dir=down (bytes_up=14B bytes_down=120B so far)
	//       #9 closed conn=3 upstream=3 bytes_up=28B bytes_down=120B by=upstream how=RST
}

// The cursor: each read returns only what is new.
func ExampleEventLog_Next() {
	log := testkit.NewEventLog(
		proxy.Event{Seq: 1, Kind: proxy.EventAccepted, Conn: 1},
		proxy.Event{Seq: 2, Kind: proxy.EventDialed, Conn: 1, Upstream: 1},
		proxy.Event{Seq: 3, Kind: proxy.EventClosed, Conn: 1, Upstream: 1, By: proxy.Client, How: proxy.FIN},
	)
	e, _ := log.Take(testkit.Match(proxy.EventDialed).Match)
	fmt.Println("took:", testkit.FormatEvent(e))
	fmt.Print("next:\n", testkit.FormatEvents(log.Next()))
	fmt.Println("then:", len(log.Next()), "new")
	// Output:
	// took: #2 dialed conn=1 upstream=1
	// next:
	//     #3 closed conn=1 upstream=1 bytes_up=0B bytes_down=0B by=client how=FIN
	// then: 0 new
}
