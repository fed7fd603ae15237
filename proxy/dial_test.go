package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestDialHalfCloseClientFirst(t *testing.T) {
	up := startServer(t, nil)
	p := startProxy(t, Config{Upstream: up.addr()})
	ev := record(t, p)

	c := dial(t, p.Addr().String())
	if _, err := io.WriteString(c, "request"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	u := up.next(t)
	got, err := readAll(t, u)
	if err != nil || string(got) != "request" {
		t.Fatalf("upstream read %q, %v; want %q, EOF", got, err, "request")
	}
	// The upstream answers after the client's FIN; the reply must arrive whole.
	reply := make([]byte, 1<<20)
	for i := range reply {
		reply[i] = byte(i)
	}
	if _, err := u.Write(reply); err != nil {
		t.Fatalf("upstream write after client FIN: %v", err)
	}
	_ = u.Close()
	back, err := readAll(t, c)
	if err != nil || len(back) != len(reply) || string(back) != string(reply) {
		t.Fatalf("client read %d bytes, %v; want the %d-byte reply, EOF", len(back), err, len(reply))
	}
	hc := ev.waitKind(t, EventHalfClosed, 0)
	if hc.Dir != Up {
		t.Errorf("first half-close dir = %s, want up", hc.Dir)
	}
	cl := ev.waitKind(t, EventClosed, hc.Conn)
	if cl.BytesUp != 7 || cl.BytesDown != int64(len(reply)) || cl.By != Client || cl.How != FIN {
		t.Errorf("closed event = %s; want bytes_up=7B bytes_down=%dB by=client how=FIN", cl, len(reply))
	}
}

func TestDialHalfCloseUpstreamFirst(t *testing.T) {
	up := startServer(t, nil)
	p := startProxy(t, Config{Upstream: up.addr()})
	ev := record(t, p)

	c := dial(t, p.Addr().String())
	u := up.next(t)
	if _, err := io.WriteString(u, "banner"); err != nil {
		t.Fatal(err)
	}
	if err := u.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, c)
	if err != nil || string(got) != "banner" {
		t.Fatalf("client read %q, %v; want %q, EOF", got, err, "banner")
	}
	// The client still talks after the upstream's FIN.
	if _, err := io.WriteString(c, "after your FIN"); err != nil {
		t.Fatalf("client write after upstream FIN: %v", err)
	}
	_ = c.CloseWrite()
	got, err = readAll(t, u)
	if err != nil || string(got) != "after your FIN" {
		t.Fatalf("upstream read %q, %v; want %q, EOF", got, err, "after your FIN")
	}
	hc := ev.waitKind(t, EventHalfClosed, 0)
	if hc.Dir != Down {
		t.Errorf("first half-close dir = %s, want down", hc.Dir)
	}
	cl := ev.waitKind(t, EventClosed, 0)
	if cl.By != Upstream || cl.How != FIN {
		t.Errorf("closed event = %s; want by=upstream how=FIN", cl)
	}
}

func TestDialResetRelayed(t *testing.T) {
	tests := []struct {
		name string
		by   Side
	}{
		{"upstream resets", Upstream},
		{"client resets", Client},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startServer(t, nil)
			p := startProxy(t, Config{Upstream: up.addr()})
			ev := record(t, p)
			c := dial(t, p.Addr().String())
			u := up.next(t)
			roundTripVia(t, c, u, "ping")

			resetter, other := u, c
			if tt.by == Client {
				resetter, other = c, u
			}
			resetClose(resetter)
			if err := readErr(t, other); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("other side read error = %v, want ECONNRESET", err)
			}
			r := ev.waitKind(t, EventReset, 0)
			if r.By != tt.by {
				t.Errorf("reset event by = %s, want %s", r.By, tt.by)
			}
			cl := ev.waitKind(t, EventClosed, 0)
			if cl.How != RST || cl.By != tt.by {
				t.Errorf("closed event = %s; want by=%s how=RST", cl, tt.by)
			}
		})
	}
}

func TestDialUpstreamUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now

	p := startProxy(t, Config{Upstream: addr})
	ev := record(t, p)
	// The reset can beat the client's own connect(2) to its completion,
	// so either the dial or the first read fails with ECONNRESET.
	c, err := net.Dial("tcp", p.Addr().String())
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
		err = readErr(t, c)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client error = %v, want ECONNRESET", err)
	}
	df := ev.waitKind(t, EventDialFailed, 0)
	if !errors.Is(df.Err, syscall.ECONNREFUSED) {
		t.Errorf("dial-failed err = %v, want connection refused", df.Err)
	}
	cl := ev.waitKind(t, EventClosed, df.Conn)
	if cl.By != ByProxy || cl.How != RST {
		t.Errorf("closed event = %s; want by=proxy how=RST", cl)
	}
}

// roundTripVia sends msg from c to u and back, so both copy loops have run.
func roundTripVia(t *testing.T, c, u net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(u, buf); err != nil || string(buf) != msg {
		t.Fatalf("upstream got %q, %v; want %q", buf, err, msg)
	}
	if _, err := u.Write(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("client got %q, %v; want %q", buf, err, msg)
	}
}
