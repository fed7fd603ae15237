package testkit

import (
	"fmt"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
)

// A Cond is one condition on an event, with a description for failure
// messages. Build one with OnConn, OnUpstream, ... or Where.
type Cond struct {
	desc  string
	match func(proxy.Event) bool
}

// String describes the condition.
func (c Cond) String() string { return c.desc }

// Where is a condition described by desc and decided by fn.
func Where(desc string, fn func(proxy.Event) bool) Cond { return Cond{desc: desc, match: fn} }

// OnConn holds for events of the downstream connection id.
func OnConn(id uint64) Cond {
	return Where(fmt.Sprintf("conn=%d", id), func(e proxy.Event) bool { return e.Conn == id })
}

// OnUpstream holds for events of the upstream connection id.
func OnUpstream(id uint64) Cond {
	return Where(fmt.Sprintf("upstream=%d", id), func(e proxy.Event) bool { return e.Upstream == id })
}

// InDir holds for events in direction d.
func InDir(d proxy.Direction) Cond {
	return Where("dir="+d.String(), func(e proxy.Event) bool { return e.Dir == d })
}

// By holds for events whose By is s (reset, closed).
func By(s proxy.Side) Cond {
	return Where("by="+s.String(), func(e proxy.Event) bool { return e.By == s })
}

// WithReason holds for events with reason r (discarded, retried).
// WithReason(proxy.ReasonStale) holds for every connection a stale fault
// made stale, whether the pool's probe caught it idle or a session was
// handed it; proxy.ReasonUpstreamEOF and proxy.ReasonUpstreamReset are a
// real upstream's FIN and RST only.
func WithReason(r proxy.Reason) Cond {
	return Where("reason="+string(r), func(e proxy.Event) bool { return e.Reason == r })
}

// OfFault holds for events of the fault named name.
func OfFault(name string) Cond {
	return Where("fault="+name, func(e proxy.Event) bool { return e.Fault == name })
}

// IsReused holds for borrowed events whose Reused is b.
func IsReused(b bool) Cond {
	return Where(fmt.Sprintf("reused=%t", b), func(e proxy.Event) bool { return e.Reused == b })
}

// TookOver holds for events whose Took is longer than d (interrupted).
func TookOver(d time.Duration) Cond {
	return Where("took>"+d.String(), func(e proxy.Event) bool { return e.Took > d })
}

// A Pattern matches events of one kind that meet every one of its
// conditions; Kind 0 matches every kind.
type Pattern struct {
	Kind  proxy.EventKind
	Conds []Cond
}

// Match returns the pattern for events of kind meeting every cond.
func Match(kind proxy.EventKind, conds ...Cond) Pattern {
	return Pattern{Kind: kind, Conds: conds}
}

// Match reports whether e matches the pattern.
func (p Pattern) Match(e proxy.Event) bool {
	if p.Kind != 0 && e.Kind != p.Kind {
		return false
	}
	for _, c := range p.Conds {
		if !c.match(e) {
			return false
		}
	}
	return true
}

// String describes the pattern: "borrowed conn=3 reused=true".
func (p Pattern) String() string {
	parts := []string{"any event"}
	if p.Kind != 0 {
		parts[0] = p.Kind.String()
	}
	for _, c := range p.Conds {
		parts = append(parts, c.desc)
	}
	return strings.Join(parts, " ")
}
