package proxy

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// BenchmarkEmit measures the cost of an event with nobody listening (the
// relay's normal case) and with one subscriber.
func BenchmarkEmit(b *testing.B) {
	b.Run("no subscriber", func(b *testing.B) {
		var ev bus
		b.ReportAllocs()
		for b.Loop() {
			ev.emit(&Event{Kind: EventAccepted, Conn: 1})
		}
	})
	b.Run("one subscriber", func(b *testing.B) {
		var ev bus
		var n int
		cancel := ev.subscribe(func(Event) { n++ })
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			ev.emit(&Event{Kind: EventAccepted, Conn: 1})
		}
		if n == 0 {
			b.Fatal("subscriber saw no event")
		}
	})
}

// BenchmarkChurn measures connect, one 64-byte echo, close through an
// in-process proxy, with the client, proxy and echo server in one process.
func BenchmarkChurn(b *testing.B) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		b.Run(mode.String(), func(b *testing.B) {
			up := startServer(b, echoHandler)
			p := startProxy(b, Config{Upstream: up.addr(), Mode: mode})
			msg := make([]byte, 64)
			buf := make([]byte, 64)
			for b.Loop() {
				c, err := net.Dial("tcp", p.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
			if mode == ModePool {
				st := p.PoolStats()
				b.ReportMetric(float64(st.Dialed), "dialed")
				b.ReportMetric(float64(st.Reused), "reused")
			}
		})
	}
}

// BenchmarkBulk measures one-way throughput of one connection through an
// in-process proxy in dial mode; SetBytes makes it report MB/s.
func BenchmarkBulk(b *testing.B) {
	up := startServer(b, func(c *net.TCPConn) {
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	})
	p := startProxy(b, Config{Upstream: up.addr()})
	c := dial(b, p.Addr().String())
	chunk := make([]byte, 256<<10)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBulkFault is BenchmarkBulk with a latency fault of 1ns (the shortest there is) on
// both directions, so bytes go through the user-space fault loop instead
// of splice.
func BenchmarkBulkFault(b *testing.B) {
	up := startServer(b, func(c *net.TCPConn) {
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	})
	p := startProxy(b, Config{Upstream: up.addr()})
	c := dial(b, p.Addr().String())
	if _, err := p.AddFault(faults.Latency(time.Nanosecond, 0)); err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddFault1000 measures AddFault on a proxy with 1000 live
// connections, all idle on the no-fault path: it returns once the fault is
// in force on all 2000 copy loops, so its duration is the time for the
// fault to act everywhere. Between adds the fault is removed and a round
// trip on every connection takes each loop back to the no-fault path.
// Reported: p50 and p99 of the add and of the remove.
//
// The faults are quiet (chain.quiet): a waiting loop counts the bytes it
// takes under the session's lock, so it takes the fault when its next byte
// comes and is not woken. The stall is reported
// fired on every loop when added, as if the loop had been woken into it.
// TestFaultInForceOnReturnAt1000Conns and
// TestQuietFaultInForceOnReturnAt1000Conns check that a byte sent after
// AddFault returns is faulted on every connection.
func BenchmarkAddFault1000(b *testing.B) {
	const conns = 1000
	p, cs := liveConns(b, conns)
	for _, f := range []faults.Fault{faults.Latency(time.Nanosecond, 0), faults.Stall(false)} {
		b.Run(string(f.Kind), func(b *testing.B) {
			benchAddFault(b, p, cs, f)
		})
	}
	// Loops copying through user space (here under a slice fault that
	// cuts nothing) count what they read under the session's lock too.
	b.Run("latency-over-slice", func(b *testing.B) {
		if _, err := p.AddFault(faults.Slice(1<<20, 0).WithName("userspace")); err != nil {
			b.Fatal(err)
		}
		for _, c := range cs {
			roundTrip(b, c, "x") // each loop into the user-space path
		}
		benchAddFault(b, p, cs, faults.Latency(time.Nanosecond, 0))
		if err := p.RemoveFault("userspace"); err != nil {
			b.Fatal(err)
		}
	})
}

// benchAddFault adds and removes f b.N times, with a round trip on every
// connection in between, and reports the percentiles.
func benchAddFault(b *testing.B, p *Proxy, cs []*net.TCPConn, f faults.Fault) {
	{
		{
			var add, remove []time.Duration
			for b.Loop() {
				start := time.Now()
				nf, err := p.AddFault(f)
				if err != nil {
					b.Fatal(err)
				}
				add = append(add, time.Since(start))
				start = time.Now()
				if err := p.RemoveFault(nf.Name); err != nil {
					b.Fatal(err)
				}
				remove = append(remove, time.Since(start))
				for _, c := range cs {
					roundTrip(b, c, "x")
				}
			}
			pct := func(d []time.Duration, p int) float64 {
				slices.Sort(d)
				return float64(d[(len(d)-1)*p/100].Microseconds())
			}
			b.ReportMetric(pct(add, 50), "p50-µs/add")
			b.ReportMetric(pct(add, 99), "p99-µs/add")
			b.ReportMetric(pct(remove, 50), "p50-µs/remove")
			b.ReportMetric(pct(remove, 99), "p99-µs/remove")
		}
	}
}
