package control

import (
	"context"
	"slices"
	"sync"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/proxy"
)

// eventLog keeps the last events of every proxy in a ring, each with an ID
// counted from 1. Readers hold a cursor (the last ID they saw) and never
// block the proxies: appending is a copy under a mutex, and a reader that
// falls so far behind that its next event was overwritten is told so
// (errCursorExpired) instead of silently skipping it.
type eventLog struct {
	mu      sync.Mutex // guards the fields below
	ring    []api.Event
	next    uint64        // the ID the next event gets
	wake    chan struct{} // closed and replaced when an event is appended (if watched) or the log closes
	watched bool          // someone waits on wake
	closed  bool
}

func newEventLog(size int) *eventLog {
	return &eventLog{ring: make([]api.Event, size), next: 1, wake: make(chan struct{})}
}

// append adds e from the proxy named name.
func (l *eventLog) append(name string, e proxy.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.next
	l.next++
	l.ring[(id-1)%uint64(len(l.ring))] = api.Event{ID: id, Proxy: name, Event: e}
	if l.watched {
		l.watched = false
		close(l.wake)
		l.wake = make(chan struct{})
	}
}

// last returns the ID of the newest event, 0 if none.
func (l *eventLog) last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1
}

// filter selects events; the zero value selects all.
type filter struct {
	proxy string
	kinds []proxy.EventKind
}

func (f filter) match(e *api.Event) bool {
	return (f.proxy == "" || e.Proxy == f.proxy) && (len(f.kinds) == 0 || slices.Contains(f.kinds, e.Event.Kind))
}

// read returns up to max events after the cursor that match f, and the
// cursor for the next read: the ID of the last event looked at, so events
// that do not match are not looked at again. It fails with
// api.ErrCursorExpired if events after the cursor were overwritten, and
// api.ErrBadRequest for a cursor past the newest event.
func (l *eventLog) read(after uint64, max int, f filter) ([]api.Event, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	newest := l.next - 1
	if after > newest {
		return nil, after, api.Errorf(api.ErrBadRequest, "cursor %d is past the newest event, %d", after, newest)
	}
	oldest := uint64(1)
	if n := uint64(len(l.ring)); newest > n {
		oldest = newest - n + 1
	}
	if after+1 < oldest {
		return nil, after, api.Errorf(api.ErrCursorExpired, "events %d to %d after cursor %d are no longer kept (the log keeps %d); read from %d on knowing they are lost",
			after+1, oldest-1, after, len(l.ring), oldest-1)
	}
	var out []api.Event
	cur := after
	for id := after + 1; id <= newest && len(out) < max; id++ {
		e := &l.ring[(id-1)%uint64(len(l.ring))]
		cur = id
		if f.match(e) {
			out = append(out, *e)
		}
	}
	return out, cur, nil
}

// wait returns once there is an event after the cursor, the log is closed
// or ctx is done; it reports whether there may be events to read.
func (l *eventLog) wait(ctx context.Context, after uint64) bool {
	l.mu.Lock()
	if l.next-1 > after || l.closed {
		l.mu.Unlock()
		return !l.closed
	}
	wake := l.wake
	l.watched = true
	l.mu.Unlock()
	select {
	case <-wake:
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.closed
	case <-ctx.Done():
		return false
	}
}

// close wakes every waiter for good.
func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.watched = false // append must not close wake again
		close(l.wake)
	}
}
