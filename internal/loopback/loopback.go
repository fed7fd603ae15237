// Package loopback has the small helpers faultline's tests share for real
// connections on the loopback interface.
package loopback

import (
	"io"
	"net"
	"testing"
	"time"
)

// Timeout bounds each helper's wait; reaching it fails the test.
const Timeout = 10 * time.Second

// Dial connects to addr and closes the connection when the test ends.
func Dial(tb testing.TB, addr string) *net.TCPConn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// RoundTrip writes msg to c and reads len(msg) bytes back, failing the test
// if they differ.
func RoundTrip(tb testing.TB, c net.Conn, msg string) {
	tb.Helper()
	_ = c.SetDeadline(time.Now().Add(Timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		tb.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		tb.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		tb.Fatalf("echo: got %q, want %q", got, msg)
	}
}
