package proxy

import (
	"io"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// TestLatencyPipelines: under a latency of L, a stream of small writes
// comes out L late, each write held from when it arrived, not from when
// the loop got to it after holding the one before (which made a stream
// come out up to 2L late: 20 writes 100 ms apart under 1 s took up to 2 s
// each). The bound, 1.5 L, is generous; the lower bound, L, is exact.
func TestLatencyPipelines(t *testing.T) {
	const delay, gap, writes = time.Second, 100 * time.Millisecond, 20
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			fx := newFaultFixture(t, Config{Mode: mode})
			fx.add(t, faults.Latency(delay, 0).WithDir(faults.Up))
			sent := make(chan time.Time, writes)
			go func() { // owned: ends after writes writes, or at the first error
				for i := range writes {
					sent <- time.Now()
					if _, err := fx.c.Write([]byte{byte('a' + i)}); err != nil {
						return
					}
					time.Sleep(gap)
				}
			}()
			_ = fx.u.SetReadDeadline(time.Now().Add(waitTimeout + 2*delay))
			var worst time.Duration
			b := make([]byte, 1)
			for i := range writes {
				if _, err := io.ReadFull(fx.u, b); err != nil || b[0] != byte('a'+i) {
					t.Fatalf("write %d: read %q, %v", i, b, err)
				}
				held := time.Since(<-sent)
				if held < delay {
					t.Errorf("write %d arrived %s after it was sent, under a %s latency", i, held, delay)
				}
				worst = max(worst, held)
			}
			if worst > delay*3/2 {
				t.Errorf("a write arrived %s after it was sent, under a %s latency: want about %s", worst, delay, delay)
			}
			t.Logf("worst: %s after sending, under %s", worst, delay)
		})
	}
}

// TestLatencyWithBandwidth: latency and bandwidth together cost the latency
// once and the rate's time, as a slow link does (toxiproxy's latency plus
// bandwidth toxics: 1.2 s for 10,000 bytes at 10 KB/s behind 200 ms), not
// the latency again for every paced piece (4 s before pipelining). The
// bound, 1.5 times that, is generous.
func TestLatencyWithBandwidth(t *testing.T) {
	const delay, rate, size = 200 * time.Millisecond, 10000, 10000
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Latency(delay, 0).WithDir(faults.Up))
	fx.add(t, faults.Bandwidth(rate).WithDir(faults.Up))
	start := time.Now()
	if _, err := fx.c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	_ = fx.u.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(fx.u, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	want := delay + size*time.Second/rate
	if took < want*9/10 || took > want*3/2 {
		t.Errorf("%d bytes at %d B/s behind %s took %s, want about %s", size, rate, delay, took, want)
	}
	t.Logf("took %s, want about %s", took, want)
}
