// Package failing is a test that fails on purpose, run by the e2e suite
// (dashboard_report_test.go) as "go test" with FAULTLINE_ARTIFACTS set so
// that the testkit saves its event log and report: its client keeps
// writing after the server closed the connection, which
// testkit.CheckNoWriteAfterClose finds.
package failing

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
)

func TestClientWritesAfterClose(t *testing.T) {
	if os.Getenv("FAULTLINE_E2E_FAILING") == "" {
		t.Skip("run by the e2e suite, which expects it to fail")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() { // the server: answers once, then closes
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 5)
		_, _ = c.Read(buf)
		_, _ = c.Write(buf)
		_ = c.(*net.TCPConn).CloseWrite()
		time.Sleep(200 * time.Millisecond)
		_ = c.Close()
	}()
	px := testkit.NewProxy(t, ln.Addr().String())
	c, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hello"))
	_, _ = c.Read(make([]byte, 5))
	px.Await(proxy.EventHalfClosed, testkit.InDir(proxy.Down))
	_, _ = c.Write([]byte("again")) // a pool that reuses a closed connection
	time.Sleep(50 * time.Millisecond)
	_ = c.Close()
	px.Await(proxy.EventClosed)
	<-done
	if err := testkit.CheckNoWriteAfterClose(px.Events()); err != nil {
		t.Error(err)
	}
}
