package proxy

import (
	"sync"
	"testing"
)

// TestEventOrder emits from several goroutines at once and checks that a
// subscriber sees Seq counting up by one and Time never going back.
func TestEventOrder(t *testing.T) {
	var b bus
	var got []Event // appended under b's mutex: calls are one at a time
	cancel := b.subscribe(func(e Event) { got = append(got, e) })
	const workers, each = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				b.emit(&Event{Kind: EventAccepted, Conn: uint64(w + 1)})
			}
		})
	}
	wg.Wait()
	cancel()
	b.emit(&Event{Kind: EventAccepted}) // after cancel: not delivered
	if len(got) != workers*each {
		t.Fatalf("subscriber saw %d events, want %d", len(got), workers*each)
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d", i, e.Seq, i+1)
		}
		if i > 0 && e.Time.Before(got[i-1].Time) {
			t.Fatalf("event Seq %d at %v is before Seq %d at %v", e.Seq, e.Time, got[i-1].Seq, got[i-1].Time)
		}
	}
}
