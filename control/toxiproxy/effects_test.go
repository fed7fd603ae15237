package toxiproxy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// Each toxic's effect, on real loopback sockets. Bounds on time are lower
// bounds (the effect took at least this long) or generous upper ones.

// newProxy makes a proxy to a new server running handle.
func newProxy(t *testing.T, f *fixture, handle func(*net.TCPConn)) *toxiclient.Proxy {
	t.Helper()
	up := newServer(t, handle)
	p, err := f.c.CreateProxy(strings.ReplaceAll(t.Name(), "/", "_"), "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func addToxic(t *testing.T, p *toxiclient.Proxy, typ, stream string, tox float32, attrs toxiclient.Attributes) {
	t.Helper()
	if _, err := p.AddToxic("", typ, stream, tox, attrs); err != nil {
		t.Fatal(err)
	}
}

func TestLatency(t *testing.T) {
	for _, stream := range []string{"downstream", "upstream"} {
		t.Run(stream, func(t *testing.T) {
			f := newFixture(t)
			p := newProxy(t, f, echo)
			c := dial(t, p.Listen)
			addToxic(t, p, "latency", stream, 1, toxiclient.Attributes{"latency": 200})
			if d := roundTrip(t, c, "ping"); d < 200*time.Millisecond {
				t.Fatalf("round trip %v with a 200ms %s latency", d, stream)
			}
			c2 := dial(t, p.Listen)
			if d := roundTrip(t, c2, "ping"); d < 200*time.Millisecond {
				t.Fatalf("new connection: round trip %v", d)
			}
		})
	}
	t.Run("jitter", func(t *testing.T) {
		f := newFixture(t)
		p := newProxy(t, f, echo)
		c := dial(t, p.Listen)
		addToxic(t, p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 200, "jitter": 100})
		for range 3 {
			if d := roundTrip(t, c, "ping"); d < 100*time.Millisecond {
				t.Fatalf("round trip %v with latency 200±100ms", d)
			}
		}
	})
}

func TestBandwidth(t *testing.T) {
	f := newFixture(t)
	const size = 40_000
	p := newProxy(t, f, func(c *net.TCPConn) {
		_, _ = c.Write(make([]byte, size))
	})
	addToxic(t, p, "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 40}) // 40 KB/s: a second
	c := dial(t, p.Listen)
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != size {
		t.Fatalf("read %d, %v", n, err)
	}
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Fatalf("%d bytes at 40 KB/s took %v", size, d)
	}
}

func TestBandwidthZeroStalls(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	c := dial(t, p.Listen)
	roundTrip(t, c, "before")
	addToxic(t, p, "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 0})
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d, %v through a rate 0 bandwidth toxic: want nothing", n, err)
	}
	// Removing it delivers what it held.
	if err := p.RemoveToxic("bandwidth_downstream"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after removal: %q, %v", buf, err)
	}
}

func TestSlowClose(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, func(c *net.TCPConn) { _, _ = c.Write([]byte("bye")) })
	addToxic(t, p, "slow_close", "downstream", 1, toxiclient.Attributes{"delay": 300})
	c := dial(t, p.Listen)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("read %v, want EOF", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("EOF %v after the data, with slow_close 300ms", d)
	}
}

func TestTimeoutZeroHolds(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	c := dial(t, p.Listen)
	roundTrip(t, c, "before")
	addToxic(t, p, "timeout", "upstream", 1, toxiclient.Attributes{"timeout": 0})
	if _, err := c.Write([]byte("dropped")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d, %v through timeout 0: want the connection held open, silent", n, err)
	}
	// Removing it closes what it held, as toxiproxy does.
	start := time.Now()
	if err := p.RemoveToxic("timeout_upstream"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 10)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after removal: read %d, %v: want the connection closed", n, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed %v after removal", d)
	}
}

func TestTimeoutCloses(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	addToxic(t, p, "timeout", "downstream", 1, toxiclient.Attributes{"timeout": 300})
	start := time.Now()
	c := dial(t, p.Listen)
	_, _ = c.Write([]byte("dropped"))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 10))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d, %v: want the connection closed", n, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("closed after %v with timeout 300ms", d)
	}
}

func TestResetPeer(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	live := dial(t, p.Listen)
	roundTrip(t, live, "before")
	addToxic(t, p, "reset_peer", "downstream", 1, toxiclient.Attributes{"timeout": 0})
	// A live connection is reset when the call returns (toxiproxy waits
	// for data, and closes with a FIN a connection accepted before).
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := live.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("live connection: %v, want ECONNRESET", err)
	}
	// A new one too.
	c, err := net.Dial("tcp", p.Listen)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("new connection: %v, want ECONNRESET", err)
	}
}

func TestResetPeerTimeout(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	live := dial(t, p.Listen)
	start := time.Now()
	addToxic(t, p, "reset_peer", "downstream", 1, toxiclient.Attributes{"timeout": 300})
	// Until the reset the stream's bytes are dropped, as toxiproxy drops
	// them while it waits: the request gets no answer, then the RST.
	if _, err := live.Write([]byte("dropped")); err != nil {
		t.Fatal(err)
	}
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := live.Read(make([]byte, 16)); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %d bytes, %v; want no answer, then ECONNRESET", n, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("reset after %v with timeout 300ms", d)
	}
}

func TestResetPeerToxicityZero(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	addToxic(t, p, "reset_peer", "downstream", 0, nil) // toxiproxy #603: it still resets
	c := dial(t, p.Listen)
	roundTrip(t, c, "untouched")
	time.Sleep(50 * time.Millisecond)
	roundTrip(t, c, "still untouched")
}

func TestSlicer(t *testing.T) {
	for _, tt := range []struct {
		name      string
		variation int
	}{{"exact", 0}, {"varied", 4}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			const size = 100
			p := newProxy(t, f, func(c *net.TCPConn) { _, _ = c.Write(make([]byte, size)) })
			addToxic(t, p, "slicer", "downstream", 1, toxiclient.Attributes{"average_size": 10, "size_variation": tt.variation, "delay": 20_000})
			c := dial(t, p.Listen)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var reads []int
			total := 0
			buf := make([]byte, size)
			for total < size {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("after %d bytes: %v", total, err)
				}
				reads = append(reads, n)
				total += n
			}
			if len(reads) < 5 || slices.Max(reads) > 10+tt.variation {
				t.Fatalf("reads %v: want pieces of 10±%d bytes", reads, tt.variation)
			}
		})
	}
}

func TestLimitData(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	addToxic(t, p, "limit_data", "downstream", 1, toxiclient.Attributes{"bytes": 10})
	c := dial(t, p.Listen)
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if n != 10 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v: want exactly 10, then the end", n, err)
	}
}

func TestDown(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	live := dial(t, p.Listen)
	roundTrip(t, live, "x")
	// The Ruby gem's .down { }: disable, run, enable.
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", p.Listen); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while down: %v, want ECONNREFUSED", err)
	}
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := live.Read(make([]byte, 1)); err == nil {
		t.Fatal("live connection survived down")
	}
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Listen), "up again")
}

// A bandwidth toxic updated to rate 0 stalls, and back to a rate lets the
// held bytes through: the fault changes kind, the stream is never left
// without either.
func TestBandwidthUpdateToZeroAndBack(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	c := dial(t, p.Listen)
	addToxic(t, p, "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 1000})
	roundTrip(t, c, "paced")
	if _, err := p.UpdateToxic("bandwidth_downstream", -1, toxiclient.Attributes{"rate": 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d, %v after updating to rate 0", n, err)
	}
	if _, err := p.UpdateToxic("bandwidth_downstream", -1, toxiclient.Attributes{"rate": 1000}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after updating back: %q, %v", buf, err)
	}
	fs, _ := f.cs.Faults(p.Name)
	if len(fs) != 1 || fs[0].Rate != 1_000_000 {
		t.Fatalf("faults %+v: want one bandwidth of 1000 KB/s", fs)
	}
}

// An unreachable upstream resets the client (toxiproxy closes it with a
// FIN, which reads as a quiet EOF).
func TestUpstreamUnreachable(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	_ = ln.Close()
	p, err := f.c.CreateProxy("gone", "127.0.0.1:0", gone)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Listen)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%v, want ECONNRESET", err)
	}
}
