package testkit

import (
	"errors"
	"fmt"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// ErrNoGiveUp is wrapped by CheckGaveUpWithin's error.
var ErrNoGiveUp = errors.New("testkit: client did not give up on a stalled connection in time")

// CheckGaveUpWithin checks that the client gave up on every stalled
// connection within its own deadline plus bound, as a client whose read (or
// write) deadline interrupts it must.
//
// A connection C is stalled from the first EventFaultFired of a stall fault
// on C (a fault-fired event of kind stall; for events recorded without a
// kind, a fault injected through the testkit as a stall or named "stall-N"). The client gave up at the first of these events on C:
// a FIN from it (EventHalfClosed Dir proxy.Up), an RST from it (EventReset
// By proxy.Client) or the end of the session by it (EventClosed By
// proxy.Client). A connection whose stall was cleared (EventFaultCleared)
// before the client gave up is not judged: the client had nothing to give up
// on.
//
// Violations: the client gave up later than deadline+bound after the stall
// began; the session ended some other way (by the upstream or the proxy);
// or the connection is still open and the stall began longer ago than
// deadline+bound (one that began more recently is reported as not yet
// decided, so a test should wait for the client to give up, or for
// deadline+bound, before checking). Target the stall at the connections
// the client is waiting on: an idle pooled connection stalls without the
// client noticing, rightly. Stall only the direction toward the client
// (faults.Stall(...).WithDir(faults.Down)): a stall up also holds back the
// client's FIN and RST, so the proxy cannot see the client give up until
// the stall ends.
//
// It reads the whole log and returns an error wrapping ErrNoGiveUp that
// quotes the stall and how the connection ended.
func CheckGaveUpWithin(l *EventLog, deadline, bound time.Duration) error {
	v := violations{sentinel: ErrNoGiveUp}
	limit := deadline + bound
	stalls := make(map[uint64]proxy.Event) // conn -> stall still in force, not yet given up on
	var order []uint64                     // conns in the order their stall began
	for _, e := range l.All() {
		st, stalled := stalls[e.Conn]
		switch {
		case e.Kind == proxy.EventFaultFired && l.eventFaultKind(e) == faults.KindStall:
			if !stalled {
				stalls[e.Conn] = e
				order = append(order, e.Conn)
			}
		case !stalled:
		case e.Kind == proxy.EventFaultCleared && e.Fault == st.Fault:
			delete(stalls, e.Conn)
		case gaveUp(e):
			delete(stalls, e.Conn)
			if took := e.Time.Sub(st.Time); took > limit {
				v.add(fmt.Sprintf("conn %d: the client gave up %s after the stall began, over its deadline %s + %s", e.Conn, took.Round(time.Millisecond), deadline, bound), st, e)
			}
		case e.Kind == proxy.EventClosed:
			delete(stalls, e.Conn)
			v.add(fmt.Sprintf("conn %d: the client never gave up on the stall; the session was ended by the %s", e.Conn, e.By), st, e)
		}
	}
	closed := l.Closed()
	for _, c := range order {
		st, ok := stalls[c]
		if !ok {
			continue
		}
		open := time.Since(st.Time).Round(time.Millisecond)
		switch {
		case closed:
			v.add(fmt.Sprintf("conn %d: the client never gave up on the stall before the proxy closed", c), st)
		case open > limit:
			v.add(fmt.Sprintf("conn %d: the client has not given up %s after the stall began, over its deadline %s + %s", c, open, deadline, bound), st)
		default:
			v.add(fmt.Sprintf("conn %d: not yet decided: the client has not given up %s after the stall began (deadline %s + %s)", c, open, deadline, bound), st)
		}
	}
	return v.err()
}

// gaveUp reports whether e shows the client ending its connection.
func gaveUp(e proxy.Event) bool {
	switch e.Kind {
	case proxy.EventHalfClosed:
		return e.Dir == proxy.Up
	case proxy.EventReset, proxy.EventClosed:
		return e.By == proxy.Client
	}
	return false
}
