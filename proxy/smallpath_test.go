package proxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// TestNoFaultPathMessageSizes sends messages of sizes around smallMax,
// where the no-fault path switches between reading small messages into a
// buffer and splicing bulk (relayQueued), through an echo upstream in
// dial and pool mode, and checks every byte comes back in order, while a
// quiet fault (a 1 ns latency, which changes the path but delays nothing)
// is added and removed between messages, so the loop moves between the
// paths with bytes in flight.
//
// Checked by hand: with relayQueued writing one byte short of what it
// took ((*bp)[:n-1]), the test fails. That the take honours a fault
// change made before it is TestFaultInForceOnReturnAt1000Conns's and
// TestQuietFaultInForceOnReturnAt1000Conns's to check: with the take made
// whatever the loop's chain, both fail.
func TestNoFaultPathMessageSizes(t *testing.T) {
	sizes := []int{1, 64, 1024, smallMax - 1, smallMax, smallMax + 1, 2 * smallMax, 3*smallMax + 7, 256 << 10, 1, 63}
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := startServer(t, echoHandler)
			p := startProxy(t, Config{Upstream: srv.addr(), Mode: mode})
			rng := rand.New(rand.NewPCG(1, uint64(mode)))
			for round := range 3 {
				c := dial(t, p.Addr().String())
				for i, size := range sizes {
					if i%3 == 2 {
						f, err := p.AddFault(faults.Latency(time.Nanosecond, 0))
						if err != nil {
							t.Fatal(err)
						}
						defer func() { _ = p.RemoveFault(f.Name) }()
						if i%2 == 0 {
							if err := p.RemoveFault(f.Name); err != nil {
								t.Fatal(err)
							}
						}
					}
					msg := make([]byte, size)
					for j := range msg {
						msg[j] = byte(rng.Uint32())
					}
					got := make([]byte, size)
					errc := make(chan error, 1)
					go func() {
						_, err := c.Write(msg) // may exceed the socket buffers: write while reading
						errc <- err
					}()
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					if _, err := io.ReadFull(c, got); err != nil {
						t.Fatalf("round %d, message %d (%d bytes): %v", round, i, size, err)
					}
					if err := <-errc; err != nil {
						t.Fatalf("round %d, message %d: write: %v", round, i, err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("round %d, message %d (%d bytes): echo differs from byte %s", round, i, size, firstDiff(got, msg))
					}
				}
				_ = c.Close()
			}
			if len(p.Conns()) > 0 {
				// Wait for the last session to end before leak checks.
				deadline := time.Now().Add(5 * time.Second)
				for len(p.Conns()) > 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

func firstDiff(a, b []byte) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprint(i)
		}
	}
	return fmt.Sprint(min(len(a), len(b)))
}
