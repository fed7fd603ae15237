package proxy

import (
	"testing"

	"github.com/faultline-proxy/faultline/faults"
)

// TestFaultAppliedBeforeFired adds a fault that acts at once on many live
// connections: on each, its fault-applied event must come before its
// fault-fired, though the first loops to switch are ready to fire long
// before the last one has switched and AddFault records the change.
func TestFaultAppliedBeforeFired(t *testing.T) {
	tests := []struct {
		name string
		f    faults.Fault
	}{
		{"half-close", faults.HalfClose(faults.Down)},
		{"limit 0", faults.Limit(0).WithDir(faults.Down)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 32
			p, _ := liveConns(t, n)
			ev := record(t, p)
			if _, err := p.AddFault(tt.f); err != nil {
				t.Fatal(err)
			}
			for id := uint64(1); id <= n; id++ {
				fired := ev.waitFor(t, "fault-fired", func(e Event) bool { return e.Kind == EventFaultFired && e.Conn == id })
				applied := ev.waitFor(t, "fault-applied", func(e Event) bool { return e.Kind == EventFaultApplied && e.Conn == id })
				if applied.Seq > fired.Seq {
					t.Errorf("conn %d: %s before %s", id, fired, applied)
				}
			}
		})
	}
}

// TestRelayedFINBeforeAnswer: a client's FIN, relayed, makes the echo
// upstream close at once; on every connection the half-closed event of
// the client's FIN must come before that of the upstream's answer. (The
// window it looks for is narrow: without the fix, a round of 200
// connections catches it about half the time.)
func TestRelayedFINBeforeAnswer(t *testing.T) {
	const rounds, n = 3, 200
	for range rounds {
		p, cs := liveConns(t, n)
		ev := record(t, p)
		for _, c := range cs {
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}
		for id := uint64(1); id <= n; id++ {
			ev.waitKind(t, EventClosed, id)
			var dirs []Direction
			for _, e := range ev.of(EventHalfClosed) {
				if e.Conn == id {
					dirs = append(dirs, e.Dir)
				}
			}
			if len(dirs) != 2 || dirs[0] != Up || dirs[1] != Down {
				t.Fatalf("conn %d: half-closed in directions %v, want [up down]", id, dirs)
			}
		}
		_ = p.Close()
	}
}
