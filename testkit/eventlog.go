package testkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// DefaultWaitTimeout bounds a wait given no timeout of its own. It is
// generous on purpose: a wait that reaches it has failed, not run slowly.
const DefaultWaitTimeout = 10 * time.Second

// DefaultTail is how many events failure messages quote from a log's end.
const DefaultTail = 20

var (
	// ErrNoEvent is returned by a wait that ended without a matching event:
	// its time ran out or the proxy closed.
	ErrNoEvent = errors.New("testkit: no matching event")
	// ErrClosed is returned for an operation on a closed Proxy, and wrapped
	// by a wait that ended because the proxy closed.
	ErrClosed = errors.New("testkit: proxy closed")
)

// EventLog records every event of a proxy from the moment it starts, and
// keeps a cursor: Next and the waits return only what is newer than the
// last read and move the cursor on, so each assertion in a test sees only
// what happened since the previous one. All, Tail and the checks ignore the
// cursor and read the whole log.
//
// An EventLog is safe for use by many goroutines.
type EventLog struct {
	mu     sync.Mutex // guards the fields below
	events []proxy.Event
	cursor int                    // index of the first unread event
	kinds  map[string]faults.Kind // fault name to kind, for faults injected through the testkit
	wake   chan struct{}          // closed and replaced on every event and on close
	closed bool
	name   string // the remote proxy's name, "" in-process; WriteJSON writes it
}

// NewEventLog returns a closed log holding events, to read and check a
// recorded run, for example events decoded from the control API's JSON.
func NewEventLog(events ...proxy.Event) *EventLog {
	l := newEventLog()
	for _, e := range events {
		l.add(e)
	}
	l.close()
	return l
}

func newEventLog() *EventLog {
	return &EventLog{wake: make(chan struct{}), kinds: make(map[string]faults.Kind)}
}

// add records e. It is the proxy's subscriber: quick, never blocking.
func (l *EventLog) add(e proxy.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.events = append(l.events, e)
	close(l.wake)
	l.wake = make(chan struct{})
}

// close marks the log complete: no event will be added, and waits end.
func (l *EventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.wake)
}

// proxyName returns the name of the proxy the log records, "" for an
// in-process proxy.
func (l *EventLog) proxyName() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.name
}

// noteFault remembers the kind of a fault injected through the testkit, so
// that checks can tell what a fault-fired event was.
func (l *EventLog) noteFault(f faults.Fault) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kinds[f.Name] = f.Kind
}

// eventFaultKind returns the kind of the fault of a fault event: the
// event's own FaultKind, else faultKind of its name.
func (l *EventLog) eventFaultKind(e proxy.Event) faults.Kind {
	if e.FaultKind != "" {
		return e.FaultKind
	}
	return l.faultKind(e.Fault)
}

// faultKind returns the kind of the named fault: the one it was injected
// with, or, for a fault the testkit did not inject, the kind the proxy names
// unnamed faults after ("stall-1" is a stall); "" if neither tells.
func (l *EventLog) faultKind(name string) faults.Kind {
	l.mu.Lock()
	k, ok := l.kinds[name]
	l.mu.Unlock()
	if ok {
		return k
	}
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		return faults.Kind(name[:i])
	}
	return ""
}

// Closed reports whether the log is complete: its proxy is closed and no
// event will be added.
func (l *EventLog) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Len returns how many events the log holds.
func (l *EventLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// All returns every event recorded so far, in Seq order. It does not move
// the cursor.
func (l *EventLog) All() []proxy.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]proxy.Event(nil), l.events...)
}

// Tail returns the last n events (all if fewer), for failure messages.
func (l *EventLog) Tail(n int) []proxy.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]proxy.Event(nil), l.events[max(0, len(l.events)-n):]...)
}

// Next returns the events recorded since the last read and moves the cursor
// past them.
func (l *EventLog) Next() []proxy.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]proxy.Event(nil), l.events[l.cursor:]...)
	l.cursor = len(l.events)
	return out
}

// Unread returns the events since the last read without moving the cursor.
func (l *EventLog) Unread() []proxy.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]proxy.Event(nil), l.events[l.cursor:]...)
}

// Cursor returns the Seq of the last event read, 0 if none was.
func (l *EventLog) Cursor() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cursor == 0 {
		return 0
	}
	return l.events[l.cursor-1].Seq
}

// Take looks through the unread events for the first that match accepts.
// If there is one, it moves the cursor past it and returns it; the unread
// events before it are read too. If there is none, the cursor stays.
func (l *EventLog) Take(match func(proxy.Event) bool) (proxy.Event, bool) {
	e, ok, _ := l.take(match)
	return e, ok
}

// take is Take that also returns a channel closed on the next change.
func (l *EventLog) take(match func(proxy.Event) bool) (proxy.Event, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := l.cursor; i < len(l.events); i++ {
		if match(l.events[i]) {
			l.cursor = i + 1
			return l.events[i], true, nil
		}
	}
	if l.closed {
		return proxy.Event{}, false, nil
	}
	return proxy.Event{}, false, l.wake
}

// Wait waits for the first unread event that match accepts, moves the
// cursor past it and returns it. It fails with an error wrapping ErrNoEvent
// (and ctx.Err(), or ErrClosed when the proxy closed first) that quotes the
// log's tail.
func (l *EventLog) Wait(ctx context.Context, match func(proxy.Event) bool) (proxy.Event, error) {
	for {
		e, ok, wake := l.take(match)
		if ok {
			return e, nil
		}
		if wake == nil {
			return proxy.Event{}, fmt.Errorf("%w before the proxy closed (%w); %s", ErrNoEvent, ErrClosed, l.tailText())
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return proxy.Event{}, fmt.Errorf("%w: %w; %s", ErrNoEvent, ctx.Err(), l.tailText())
		}
	}
}

// WaitFor waits up to timeout (DefaultWaitTimeout if zero) for the first
// unread event of kind that meets every cond, as Wait does. Its error names
// what it waited for.
func (l *EventLog) WaitFor(timeout time.Duration, kind proxy.EventKind, conds ...Cond) (proxy.Event, error) {
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m := Match(kind, conds...)
	e, err := l.Wait(ctx, m.Match)
	if err != nil {
		return e, fmt.Errorf("waiting %s for %s: %w", timeout, m, err)
	}
	return e, nil
}

// tailText quotes the last DefaultTail events and says where the cursor is.
func (l *EventLog) tailText() string {
	l.mu.Lock()
	n, cur := len(l.events), l.cursor
	l.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d events, %d unread", n, n-cur)
	if tail := l.Tail(DefaultTail); len(tail) > 0 {
		fmt.Fprintf(&b, "; the last %d:\n%s", len(tail), FormatEvents(tail))
	}
	return b.String()
}

// String quotes every event, one per line.
func (l *EventLog) String() string { return FormatEvents(l.All()) }

// FormatEvents quotes events one per line, indented, as failure messages
// show them.
func FormatEvents(events []proxy.Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("    ")
		b.WriteString(FormatEvent(e))
		b.WriteByte('\n')
	}
	return b.String()
}

// FormatEvent quotes one event as failure messages show it: its String.
func FormatEvent(e proxy.Event) string { return e.String() }
