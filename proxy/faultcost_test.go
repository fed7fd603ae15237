package proxy

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// faultCostN are the fault counts the fault-cost benchmarks run with: none,
// and a full proxy (MaxFaults).
var faultCostN = []int{0, 1000}

// BenchmarkFirstEchoBystanderFaults measures connect, one 64-byte echo and
// close through a proxy holding N faults that cannot target the new
// connection: faults for other connection IDs, and faults for the
// connections live when they were added (existing). A new connection's
// cost must not grow with them.
func BenchmarkFirstEchoBystanderFaults(b *testing.B) {
	for _, n := range faultCostN {
		b.Run(fmt.Sprintf("faults=%d", n), func(b *testing.B) {
			up := startServer(b, echoHandler)
			p := startProxy(b, Config{Upstream: up.addr()})
			for i := range n {
				f := faults.Latency(time.Second, 0)
				if i%2 == 0 {
					f = f.WithTarget(faults.Target{Which: faults.ByID, IDs: []uint64{1<<40 + uint64(i)}})
				} else {
					f = f.WithTarget(faults.Target{Which: faults.Existing})
				}
				if _, err := p.AddFault(f); err != nil {
					b.Fatal(err)
				}
			}
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
		})
	}
}

// BenchmarkConnsWithFaults measures Conns on a proxy with 20 live
// connections and N faults in force on every one of them (the most a
// listing can have to name): its cost grows with the faults each
// connection has, once each, not with their square.
func BenchmarkConnsWithFaults(b *testing.B) {
	for _, n := range faultCostN {
		b.Run(fmt.Sprintf("faults=%d", n), func(b *testing.B) {
			p, _ := liveConns(b, 20)
			for range n {
				if _, err := p.AddFault(faults.Latency(time.Millisecond, 0)); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if got := len(p.Conns()); got != 20 {
					b.Fatalf("Conns: got %d connections, want 20", got)
				}
			}
		})
	}
}
