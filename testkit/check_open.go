package testkit

import (
	"errors"
	"fmt"
	"slices"

	"github.com/faultline-proxy/faultline/proxy"
)

// ErrLeftOpen is wrapped by CheckNothingOpen's error.
var ErrLeftOpen = errors.New("testkit: connections left open")

// CheckNothingOpen checks that nothing is left open on p: every accepted
// connection has its EventClosed, the proxy lists no live connection, and
// no pooled upstream connection is busy without a live connection holding
// it (idle ones may stay pooled). Run it once the client is done; closing
// takes the proxy a moment after the client closes, so wait for it, for
// example with Within.
//
// It returns an error wrapping ErrLeftOpen (a *CheckError) with one
// violation per connection left open, so "1 found" is one connection: a
// downstream connection, quoted with its accepted event and, if the proxy
// still lists it, its live state (its upstream connection, busy in the
// pool, is part of it); or an upstream connection busy in the pool that no
// live connection holds, quoted with the events that borrowed it.
func CheckNothingOpen(p *Proxy) error {
	v := violations{sentinel: ErrLeftOpen}
	accepted := make(map[uint64]proxy.Event) // open downstream conns: accepted, not closed
	borrowed := make(map[uint64]proxy.Event) // upstream conns lent: borrowed, not released or discarded
	for _, e := range p.Events().All() {
		switch e.Kind {
		case proxy.EventAccepted:
			accepted[e.Conn] = e
		case proxy.EventClosed:
			delete(accepted, e.Conn)
		case proxy.EventBorrowed:
			borrowed[e.Upstream] = e
		case proxy.EventReleased, proxy.EventDiscarded:
			delete(borrowed, e.Upstream)
		}
	}
	live := make(map[uint64]proxy.ConnInfo)
	busy := -1 // the pool's busy count; -1 when there is no backend to ask
	if be, err := p.backend(); err == nil {
		// Connections first, then the pool: a session that ends in
		// between lowers the busy count, never raises it.
		cs, err := be.conns()
		if err != nil {
			return fmt.Errorf("%w: cannot list connections: %w", ErrLeftOpen, err)
		}
		for _, c := range cs {
			live[c.ID] = c
		}
		st, err := be.pool()
		if err != nil {
			return fmt.Errorf("%w: cannot read the pool: %w", ErrLeftOpen, err)
		}
		busy = st.Busy
	}

	ids := make([]uint64, 0, len(accepted)+len(live))
	for id := range accepted {
		ids = append(ids, id)
	}
	for id := range live {
		if _, ok := accepted[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	held := make(map[uint64]bool) // upstream conns a listed connection holds
	for _, id := range ids {
		e, open := accepted[id]
		c, isLive := live[id]
		var what string
		switch {
		case open && isLive:
			what = fmt.Sprintf("conn %d was accepted and has not closed; live: %s", id, formatConn(c))
		case open:
			what = fmt.Sprintf("conn %d was accepted and has not closed", id)
		default:
			what = "live: " + formatConn(c)
		}
		var events []proxy.Event
		if open {
			events = append(events, e)
		}
		v.add(what, events...)
		if isLive && c.Upstream != 0 {
			held[c.Upstream] = true
		}
		for up, b := range borrowed {
			if b.Conn == id {
				held[up] = true
			}
		}
	}

	// Busy upstream connections that no listed connection holds: name
	// those the events show, then count the rest.
	if stray := busy - countPooled(live); stray > 0 {
		ups := make([]uint64, 0, len(borrowed))
		for up := range borrowed {
			if !held[up] {
				ups = append(ups, up)
			}
		}
		slices.Sort(ups)
		for _, up := range ups[:min(len(ups), stray)] {
			b := borrowed[up]
			v.add(fmt.Sprintf("upstream %d is busy in the pool, borrowed by conn %d, which has closed", up, b.Conn), b)
		}
		for range stray - min(len(ups), stray) {
			v.add("an upstream connection is busy in the pool with no live connection holding it (the log does not say which)")
		}
	}
	return v.err()
}

// countPooled counts the live connections in pool mode: each holds at
// most one busy upstream connection.
func countPooled(live map[uint64]proxy.ConnInfo) int {
	n := 0
	for _, c := range live {
		if c.Pooled {
			n++
		}
	}
	return n
}

// plural writes n and noun, with an s unless n is 1: "1 connection", "2
// connections".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
