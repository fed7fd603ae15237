package proxy

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// TestFaultChurnLosesNothing adds, updates and removes faults that only
// delay or cut up bytes (latency, bandwidth, slice, a stall that keeps what
// it held) in random order, hundreds of times, while a stream runs each way
// at once (trickling while the faults change), in both modes. Every byte must arrive, once, in order: the
// faults change when bytes arrive, never which.
func TestFaultChurnLosesNothing(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			const changes = 400
			const size = 32 << 20 // each way
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			fx := newFaultFixture(t, Config{Mode: mode})

			churned := make(chan struct{})
			go func() { // owned: the test waits on churned
				defer close(churned)
				defer fx.p.ClearFaults() // a stall must let go of what it held
				r := rand.New(rand.NewPCG(seed, 0))
				in := map[string]bool{}
				for range changes {
					f := harmlessFault(r)
					var err error
					switch {
					case !in[f.Name]:
						_, err = fx.p.AddFault(f)
						in[f.Name] = true
					case r.IntN(2) == 0:
						_, err = fx.p.UpdateFault(f)
					default:
						err = fx.p.RemoveFault(f.Name)
						in[f.Name] = false
					}
					if err != nil {
						t.Errorf("changing %+v: %v", f, err)
						return
					}
					time.Sleep(time.Duration(r.IntN(500)) * time.Microsecond)
				}
			}()

			type result struct {
				sent, got        digest
				sendErr, recvErr error
				trickled         int64
			}
			run := func(c *net.TCPConn, seed [32]byte) <-chan result {
				out := make(chan result, 1)
				go func() { // owned: the test receives from out
					// Generous: both streams take about a second.
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					var r result
					sent := make(chan struct{})
					go func() { // owned: this goroutine waits on sent
						defer close(sent)
						tw := &trickle{w: c, until: churned}
						r.sent, r.sendErr = sendStream(tw, seed, size)
						r.trickled = tw.trickled
					}()
					r.got, r.recvErr = recvStream(c, size)
					<-sent
					out <- r
				}()
				return out
			}
			cr, ur := run(fx.c, clientSeed), run(fx.u, upstreamSeed)
			client, upstream := <-cr, <-ur
			<-churned
			if client.sent != upstream.got || upstream.sent != client.got || client.sent.n != size || upstream.sent.n != size {
				t.Errorf("up: sent %v (%v), received %v (%v); down: sent %v (%v), received %v (%v); events:\n%s",
					client.sent, client.sendErr, upstream.got, upstream.recvErr, upstream.sent, upstream.sendErr, client.got, client.recvErr, tail(fx.ev, 12))
			}
			t.Logf("bytes sent while the faults changed: %d up, %d down", client.trickled, upstream.trickled)
			// The connection is still fine after it all.
			roundTripVia(t, fx.c, fx.u, fmt.Sprintf("after %d changes", changes))
		})
	}
}

// trickle passes writes to w in pieces of 16 KiB with a pause before
// each until the until channel is closed, then at full speed: the
// stream keeps moving while the faults change.
type trickle struct {
	w        io.Writer
	until    <-chan struct{}
	trickled int64 // bytes written before until was closed
}

func (t *trickle) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		select {
		case <-t.until:
			n, err := t.w.Write(b[done:])
			return done + n, err
		default:
			time.Sleep(100 * time.Microsecond)
		}
		n, err := t.w.Write(b[done:min(len(b), done+16<<10)])
		done += n
		t.trickled += int64(n)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// harmlessFault returns one of four named faults that change when bytes
// move but never which bytes: each name keeps its kind, so an update finds
// the same kind.
func harmlessFault(r *rand.Rand) faults.Fault {
	dir := []faults.Direction{faults.Up, faults.Down, faults.Both}[r.IntN(3)]
	switch r.IntN(4) {
	case 0:
		return faults.Latency(time.Duration(1+r.IntN(300))*time.Microsecond, 0).WithName("lat").WithDir(dir)
	case 1:
		return faults.Bandwidth(int64(64+r.IntN(512)) << 20).WithName("bw").WithDir(dir)
	case 2:
		return faults.Slice(1024+r.IntN(64<<10), 0).WithName("slice").WithDir(dir)
	default:
		return faults.Stall(false).WithName("stall").WithDir(dir)
	}
}
