package proxy

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// EventKind names what happened; in JSON and text it is its name. The
// fields of Event each kind sets besides Seq, Time and Kind:
//
//   - EventAccepted ("accepted"): Conn: a client connected.
//   - EventDialed ("dialed"): Conn, Upstream: a new upstream connection.
//   - EventDialFailed ("dial-failed"): Conn, Err: the upstream could not be
//     dialed.
//   - EventBorrowed ("borrowed"): Conn, Upstream, Reused, Idle (pool mode).
//   - EventRetried ("retried"): Conn, Upstream (the dead one), Reason: a
//     reused connection died before use and was replaced (pool mode).
//   - EventHalfClosed ("half-closed"): Conn, Upstream, Dir, BytesUp,
//     BytesDown (received so far): a FIN was relayed in Dir.
//   - EventReset ("reset"): Conn, Upstream, By: an RST from By (or a write
//     to By, gone) was relayed to the other side.
//   - EventInterrupted ("interrupted"): Conn, Upstream, Took: the copy
//     loops were interrupted and took Took to stop (pool mode).
//   - EventReleased ("released"): Conn, Upstream: the upstream connection
//     went back to the pool.
//   - EventDiscarded ("discarded"): Conn (0 if idle), Upstream, Reason,
//     Err: the upstream connection was closed, not reused (pool mode).
//   - EventClosed ("closed"): Conn, Upstream, BytesUp, BytesDown (written
//     on), By and How (of its first end), Err: the session ended.
//   - EventFaultApplied ("fault-applied"): Conn, Dir, Fault, FaultKind: a
//     fault is in force on a connection's direction.
//   - EventFaultFired ("fault-fired"): Conn, Dir, Fault, FaultKind (Upstream
//     for a stale fault): a fault acted (reset sent, FIN sent, stall began).
//   - EventFaultCleared ("fault-cleared"): Conn, Dir, Fault, FaultKind: a
//     fault no longer acts on a connection's direction.
//
// See docs/events.md for what each claims and in which order they come.
type EventKind uint8

// Event kinds. The fields of Event that each kind sets are listed beside it;
// Seq, Time and Kind are always set.
const (
	EventAccepted     EventKind = iota + 1 // Conn
	EventDialed                            // Conn, Upstream: a new upstream connection is open
	EventDialFailed                        // Conn, Err: the upstream could not be dialed
	EventBorrowed                          // Conn, Upstream, Reused, Idle (when reused)
	EventRetried                           // Conn, Upstream (the dead one), Reason
	EventHalfClosed                        // Conn, Upstream, Dir, BytesUp, BytesDown (received so far): a FIN was relayed in Dir
	EventReset                             // Conn, Upstream, By: an RST from By (or a write to By, gone) was relayed to the other side
	EventInterrupted                       // Conn, Upstream, Took: copy loops interrupted, Took until both stopped
	EventReleased                          // Conn, Upstream: the upstream connection went back to the pool
	EventDiscarded                         // Conn (0 if idle), Upstream, Reason, Err: the upstream connection was closed
	EventClosed                            // Conn, Upstream, BytesUp, BytesDown (written on), By, How (of its first end), Err: the session ended
	EventFaultApplied                      // Conn, Dir, Fault, FaultKind: a fault is in force on a connection's direction
	EventFaultFired                        // Conn, Dir, Fault, FaultKind: a fault acted (reset sent, FIN sent, stall began)
	EventFaultCleared                      // Conn, Dir, Fault, FaultKind: a fault no longer acts on a connection's direction
)

var eventKindNames = [...]string{
	EventAccepted:     "accepted",
	EventDialed:       "dialed",
	EventDialFailed:   "dial-failed",
	EventBorrowed:     "borrowed",
	EventRetried:      "retried",
	EventHalfClosed:   "half-closed",
	EventReset:        "reset",
	EventInterrupted:  "interrupted",
	EventReleased:     "released",
	EventDiscarded:    "discarded",
	EventClosed:       "closed",
	EventFaultApplied: "fault-applied",
	EventFaultFired:   "fault-fired",
	EventFaultCleared: "fault-cleared",
}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// MarshalText encodes the kind as its name.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Direction is the way bytes flow: Up (client to upstream) or Down
// (upstream to client). It is faults.Direction, one type for faults and
// events; an event's Dir is never faults.Both, and is empty for an event
// with no direction.
type Direction = faults.Direction

// The directions of an event's Dir, equal to faults.Up and faults.Down.
const (
	Up   = faults.Up   // client to upstream
	Down = faults.Down // upstream to client
)

// Side names an end of a session in an event's By: Client, Upstream or
// ByProxy. It is faults.Side, one type for faults and events; an event's
// By is never faults.ToBoth, and is empty for an event that names no side.
type Side = faults.Side

// The sides of an event's By, equal to faults.ToClient, faults.ToUpstream
// and faults.ByProxy.
const (
	Client   = faults.ToClient   // the downstream peer, the program under test
	Upstream = faults.ToUpstream // the upstream peer
	ByProxy  = faults.ByProxy    // the proxy itself (a fault, Close, CloseConn, a failed dial)
)

// CloseHow is how a connection ended (an EventClosed's How): FIN ("FIN"),
// an orderly close, or RST ("RST"), an abortive one.
type CloseHow uint8

const (
	FIN CloseHow = iota + 1 // orderly close
	RST                     // abortive close
)

func (h CloseHow) String() string {
	switch h {
	case FIN:
		return "FIN"
	case RST:
		return "RST"
	}
	return ""
}

// MarshalText encodes how as "FIN" or "RST".
func (h CloseHow) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// Reason says why an upstream connection was discarded or a borrow
// retried (an EventDiscarded's or EventRetried's Reason, and the keys of
// PoolStats.Discarded); its value is the text in events and JSON:
//
//   - ReasonUpstreamEOF ("upstream-eof"): the upstream sent FIN;
//   - ReasonUpstreamReset ("upstream-reset"): the upstream sent RST;
//   - ReasonError ("error"): a copy loop failed with an error other than
//     the proxy's own interrupt (a timeout included);
//   - ReasonStranded ("stranded"): bytes read but not written when the
//     loops stopped;
//   - ReasonUnread ("unread"): bytes waiting unread in the upstream socket;
//   - ReasonHalfClosed ("half-closed"): the proxy sent FIN to the upstream;
//   - ReasonMaxLifetime ("max-lifetime"): older than PoolConfig.MaxLifetime;
//   - ReasonIdleTimeout ("idle-timeout"): idle longer than
//     PoolConfig.IdleTimeout;
//   - ReasonClientReset ("client-reset"): the client aborted its
//     connection mid-session;
//   - ReasonPoolFull ("pool-full"): PoolConfig.MaxIdle connections were
//     already idle;
//   - ReasonProxyClosed ("proxy-closed"): the proxy is closing;
//   - ReasonDrained ("drained"): DrainPool closed it while idle;
//   - ReasonFault ("fault"): a fault (reset, limit) ended the session;
//   - ReasonStale ("stale"): a stale fault made it stale, whether the
//     pool's probe caught it idle (Err says what the probe saw) or a
//     session was handed it;
//   - ReasonReplyPending ("reply-pending"): bytes went up after the last
//     bytes came down, so a reply may still come;
//   - ReasonPanic ("panic"): a goroutine of the session that held it
//     panicked.
type Reason string

// Reasons an upstream connection is not reused.
const (
	ReasonUpstreamEOF   Reason = "upstream-eof"   // the upstream sent FIN
	ReasonUpstreamReset Reason = "upstream-reset" // the upstream sent RST
	ReasonError         Reason = "error"          // an error other than the proxy's own interrupt
	ReasonStranded      Reason = "stranded"       // bytes read but not written when the loops stopped
	ReasonUnread        Reason = "unread"         // bytes waiting unread in the upstream socket
	ReasonHalfClosed    Reason = "half-closed"    // the proxy sent FIN to the upstream
	ReasonMaxLifetime   Reason = "max-lifetime"   // older than PoolConfig.MaxLifetime
	ReasonIdleTimeout   Reason = "idle-timeout"   // idle longer than PoolConfig.IdleTimeout
	ReasonClientReset   Reason = "client-reset"   // the client aborted its connection mid-session
	ReasonPoolFull      Reason = "pool-full"      // PoolConfig.MaxIdle connections already idle
	ReasonProxyClosed   Reason = "proxy-closed"   // the proxy is closing
	ReasonDrained       Reason = "drained"        // DrainPool closed it while idle
	ReasonFault         Reason = "fault"          // a fault (reset, limit) ended the session
	ReasonStale         Reason = "stale"          // a stale fault made it stale (caught idle by the probe, or handed to a session)
	ReasonReplyPending  Reason = "reply-pending"  // bytes went up after the last bytes came down: a reply may still come
)

// Event is one thing that happened to a connection. Conn is the downstream
// connection's ID and Upstream the upstream connection's; both count from 1
// per Proxy, and 0 means none. Time is when the event was emitted; it never
// goes back from one Seq to the next.
//
// By and How say who ended a connection and how, attributed to the socket
// where the end was observed, never to the copy loop that noticed it: EOF
// read from a side is that side's FIN; a failed read blames the side read
// from, a failed write or shutdown the side written to (EPIPE only comes
// from a write); a failed splice, which does not say which socket failed,
// blames the side whose socket the kernel closed with an error pending or
// without a FIN from the proxy (the peer reset, or is gone). What the
// proxy does on purpose (a fault, Close, CloseConn, a failed dial) is
// ByProxy. A closed event's By and How are the session's first end: later
// ones (a reset after a FIN) have their own reset event. A stale fault
// plays the upstream, so its ends are the upstream's. Within a session,
// fault-applied comes before the fault-fired of the same change, and a
// FIN or RST relayed is recorded before anything its peer does in answer.
// See docs/events.md for the rules and the truth table that tests them.
type Event struct {
	Seq       uint64        `json:"seq"`
	Time      time.Time     `json:"time"`
	Kind      EventKind     `json:"kind"`
	Conn      uint64        `json:"conn,omitempty"`
	Upstream  uint64        `json:"upstream,omitempty"`
	Reused    bool          `json:"reused,omitempty"`
	Idle      time.Duration `json:"idle,omitempty"`
	Took      time.Duration `json:"took,omitempty"`
	Reason    Reason        `json:"reason,omitempty"`
	Dir       Direction     `json:"dir,omitempty"`
	By        Side          `json:"by,omitempty"`
	How       CloseHow      `json:"how,omitempty"`
	BytesUp   int64         `json:"bytes_up,omitempty"`
	BytesDown int64         `json:"bytes_down,omitempty"`
	Fault     string        `json:"fault,omitempty"`
	FaultKind faults.Kind   `json:"fault_kind,omitempty"`
	Err       error         `json:"-"` // encoded in JSON as "err", its text
}

// String formats the event on one line for logs and failure messages, with
// the JSON's names for its fields: "#5 closed conn=1 upstream=1
// bytes_up=254B bytes_down=1024B by=client how=FIN". Conn is always
// written, Upstream when set, and each kind adds the fields it sets.
func (e Event) String() string {
	s := fmt.Sprintf("#%d %s conn=%d", e.Seq, e.Kind, e.Conn)
	if e.Upstream != 0 {
		s += fmt.Sprintf(" upstream=%d", e.Upstream)
	}
	switch e.Kind {
	case EventBorrowed:
		s += fmt.Sprintf(" reused=%t idle=%s", e.Reused, e.Idle)
	case EventInterrupted:
		s += fmt.Sprintf(" took=%s", e.Took)
	case EventHalfClosed:
		s += fmt.Sprintf(" dir=%s (bytes_up=%dB bytes_down=%dB so far)", e.Dir, e.BytesUp, e.BytesDown)
	case EventFaultApplied, EventFaultFired, EventFaultCleared:
		s += " fault=" + e.Fault
		if e.FaultKind != "" {
			s += " (" + string(e.FaultKind) + ")"
		}
		if e.Dir != "" {
			s += " dir=" + string(e.Dir)
		}
	case EventReset:
		s += " by=" + string(e.By)
	case EventClosed:
		s += fmt.Sprintf(" bytes_up=%dB bytes_down=%dB by=%s how=%s", e.BytesUp, e.BytesDown, e.By, e.How)
	}
	if e.Reason != "" {
		s += " reason=" + string(e.Reason)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}

// bus delivers events to subscribers in Seq order. With no subscriber,
// emitting costs one atomic load.
type bus struct {
	n    atomic.Int32 // number of subscribers; read without mu on the fast path
	mu   sync.Mutex   // guards subs and seq, and orders delivery
	subs []subscriber
	next uint64    // subscriber IDs
	seq  uint64    // the last event's Seq
	last time.Time // the last event's Time
}

type subscriber struct {
	id uint64
	fn func(Event)
}

func (b *bus) on() bool { return b.n.Load() > 0 }

func (b *bus) emit(e *Event) {
	if b.n.Load() == 0 {
		return
	}
	now := time.Now() // before the lock: it is held on another CPU often enough
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) == 0 {
		return
	}
	b.seq++
	e.Seq = b.seq
	if now.Before(b.last) {
		now = b.last
	}
	b.last = now
	e.Time = now
	for _, s := range b.subs {
		s.fn(*e)
	}
}

func (b *bus) subscribe(fn func(Event)) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	b.subs = append(b.subs, subscriber{id, fn})
	b.n.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.subs = slices.DeleteFunc(b.subs, func(s subscriber) bool { return s.id == id })
			b.n.Add(-1)
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
