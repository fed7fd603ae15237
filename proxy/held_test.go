package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// TestRemovalReleasesHeldBytes: removing (or updating) a fault is in force
// on the bytes it holds: what a removed latency, bandwidth or slice fault
// holds is delivered at once, in order, and a removed slow-close sends the
// FIN it held. Each fault would hold its bytes for minutes; the test allows
// seconds.
func TestRemovalReleasesHeldBytes(t *testing.T) {
	const long = 10 * time.Minute
	tests := []struct {
		name   string
		mode   Mode
		fault  faults.Fault
		size   int          // bytes sent
		update faults.Fault // if set, the fault is updated to this instead of removed
		fin    bool         // the sender closes after sending: the FIN is what is held
	}{
		{name: "latency up", fault: faults.Latency(long, 0).WithDir(faults.Up), size: 4},
		{name: "latency down", fault: faults.Latency(long, 0).WithDir(faults.Down), size: 4},
		{name: "latency up, pool", mode: ModePool, fault: faults.Latency(long, 0).WithDir(faults.Up), size: 4},
		{name: "latency with jitter", fault: faults.Latency(long, time.Minute).WithDir(faults.Up), size: 4},
		{name: "latency updated shorter", fault: faults.Latency(long, 0).WithDir(faults.Up), size: 4,
			update: faults.Latency(time.Millisecond, 0).WithDir(faults.Up)},
		{name: "bandwidth", fault: faults.Bandwidth(100).WithDir(faults.Up), size: 10000},
		{name: "bandwidth updated faster", fault: faults.Bandwidth(100).WithDir(faults.Up), size: 10000,
			update: faults.Bandwidth(100 << 20).WithDir(faults.Up)},
		{name: "slice", fault: faults.Slice(1, time.Second).WithDir(faults.Up), size: 100},
		{name: "slow-close", fault: faults.SlowClose(long).WithDir(faults.Up), size: 4, fin: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFaultFixture(t, Config{Mode: tt.mode})
			f := fx.add(t, tt.fault.WithName("held"))
			src, dst := net.Conn(fx.c), net.Conn(fx.u)
			if tt.fault.Dir == faults.Down {
				src, dst = fx.u, fx.c
			}
			msg := bytes.Repeat([]byte("0123456789"), tt.size/10+1)[:tt.size]
			if _, err := src.Write(msg); err != nil {
				t.Fatal(err)
			}
			if tt.fin {
				_ = src.(*net.TCPConn).CloseWrite()
				// The bytes go through at once; the FIN is held.
				readWithin(t, dst, string(msg), waitTimeout)
			}
			// Wait until the fault holds something.
			switch {
			case tt.fin:
				fx.ev.waitFor(t, "slow-close fired", func(e Event) bool { return e.Kind == EventFaultFired && e.Fault == f.Name })
			case tt.size >= 100:
				// Bandwidth and slice let a few bytes through first (slice
				// reads all 100 into a buffer: none wait in the socket).
				waitHolding(t, fx, tt.fault.Dir, func(s *session, l *loop) bool { return l.n.Load() > int64(len("hello")) })
			default:
				waitHolding(t, fx, tt.fault.Dir, func(s *session, l *loop) bool { return sockInq(l.src) > 0 })
			}
			time.Sleep(20 * time.Millisecond) // let the loop reach its hold

			if tt.update.Kind != "" {
				if _, err := fx.p.UpdateFault(tt.update.WithName(f.Name)); err != nil {
					t.Fatal(err)
				}
			} else {
				fx.remove(t, f.Name)
			}
			_ = dst.SetReadDeadline(time.Now().Add(waitTimeout))
			if tt.fin {
				if n, err := dst.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Fatalf("after the removal: read %d bytes, %v; want the held FIN (EOF)", n, err)
				}
				return
			}
			got, err := io.ReadAll(io.LimitReader(dst, int64(len(msg))))
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("after the change: got %d of %d bytes (%v), in order: %v; want all, in order, at once",
					len(got), len(msg), err, bytes.Equal(got, msg[:len(got)]))
			}
		})
	}
}

// waitHolding waits until holding is true of the fixture's session and
// its loop in dir.
func waitHolding(t *testing.T, fx *faultFixture, dir faults.Direction, holding func(*session, *loop) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		for _, s := range fx.p.liveSessions() {
			l := &s.up
			if dir == faults.Down {
				l = &s.down
			}
			if s.id == fx.conn && holding(s, l) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the fault held nothing in %s", waitTimeout)
}
