package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/proxy"
)

// eventKinds are the events the checker reads: those that move an upstream
// connection between the pool, a session and the bin.
var eventKinds = []string{"dialed", "borrowed", "retried", "released", "discarded"}

// upKey names an upstream connection: IDs count per proxy.
type upKey struct {
	proxy string
	id    uint64
}

// poolCounts are one proxy's upstream connection events, counted.
type poolCounts struct {
	dialed, borrowedFresh, borrowedReused, retried, released int64
	discarded                                                counts              // by reason
	errs                                                     map[string][]string // by discard reason: the first distinct errors
}

// eventChecker follows every upstream connection through the event stream
// and reports a borrow of one that was discarded or that another session
// still holds. It is safe for concurrent use.
type eventChecker struct {
	viol *violations

	mu     sync.Mutex       // guards the fields below
	holder map[upKey]uint64 // the session that holds it; absent: idle or never borrowed
	dead   map[upKey]uint64 // discarded, by the Seq of its discard
	counts map[string]*poolCounts
	lastID uint64 // the log ID of the last event seen
	err    error  // why the stream ended early, if it did
}

func newEventChecker(viol *violations) *eventChecker {
	return &eventChecker{viol: viol, holder: map[upKey]uint64{}, dead: map[upKey]uint64{}, counts: map[string]*poolCounts{}}
}

// follow reads sub until ctx is done or the stream ends; an end before ctx
// is recorded as the checker's error.
func (ec *eventChecker) follow(ctx context.Context, sub *client.Subscription) {
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				ec.mu.Lock()
				ec.err = err
				ec.mu.Unlock()
			}
			return
		}
		ec.observe(e)
	}
}

func (ec *eventChecker) pc(name string) *poolCounts {
	c := ec.counts[name]
	if c == nil {
		c = &poolCounts{discarded: counts{}, errs: map[string][]string{}}
		ec.counts[name] = c
	}
	return c
}

// observe applies one event.
func (ec *eventChecker) observe(ae api.Event) {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	ec.lastID = ae.ID
	e := ae.Event
	k := upKey{ae.Proxy, e.Upstream}
	c := ec.pc(ae.Proxy)
	switch e.Kind {
	case proxy.EventDialed:
		c.dialed++
	case proxy.EventBorrowed:
		if e.Reused {
			c.borrowedReused++
		} else {
			c.borrowedFresh++
		}
		if seq, ok := ec.dead[k]; ok {
			ec.viol.add("borrowed-after-discard", fmt.Sprintf("proxy %s: upstream %d borrowed by conn %d (event #%d) after its discard (event #%d)", ae.Proxy, e.Upstream, e.Conn, e.Seq, seq))
		}
		if h, ok := ec.holder[k]; ok {
			ec.viol.add("borrowed-while-held", fmt.Sprintf("proxy %s: upstream %d borrowed by conn %d (event #%d) while conn %d holds it", ae.Proxy, e.Upstream, e.Conn, e.Seq, h))
		}
		ec.holder[k] = e.Conn
	case proxy.EventRetried:
		c.retried++
	case proxy.EventReleased:
		c.released++
		if h, ok := ec.holder[k]; !ok || h != e.Conn {
			ec.viol.add("released-not-held", fmt.Sprintf("proxy %s: upstream %d released by conn %d (event #%d), held by %d", ae.Proxy, e.Upstream, e.Conn, e.Seq, h))
		}
		delete(ec.holder, k)
	case proxy.EventDiscarded:
		c.discarded[string(e.Reason)]++
		if e.Err != nil && len(c.errs[string(e.Reason)]) < 3 && !slices.Contains(c.errs[string(e.Reason)], e.Err.Error()) {
			c.errs[string(e.Reason)] = append(c.errs[string(e.Reason)], e.Err.Error())
		}
		if seq, ok := ec.dead[k]; ok {
			ec.viol.add("discarded-twice", fmt.Sprintf("proxy %s: upstream %d discarded again (event #%d, first #%d)", ae.Proxy, e.Upstream, e.Seq, seq))
		}
		ec.dead[k] = e.Seq
		delete(ec.holder, k)
	}
}

// caughtUp reports whether the checker has seen every event of its kinds
// that the server has logged so far.
func (ec *eventChecker) caughtUp(ctx context.Context, cl *client.Client) (bool, error) {
	ec.mu.Lock()
	last, err := ec.lastID, ec.err
	ec.mu.Unlock()
	if err != nil {
		return false, err
	}
	evs, err := cl.Events(ctx, client.EventsQuery{After: last, Kinds: eventKinds, Limit: 1})
	if err != nil {
		if errors.Is(err, api.ErrCursorExpired) {
			return false, fmt.Errorf("event stream: %w", err)
		}
		return false, err
	}
	return len(evs.Events) == 0, nil
}

// snapshot returns a copy of the counts of proxy name.
func (ec *eventChecker) snapshot(name string) poolCounts {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	c := *ec.pc(name)
	c.discarded = counts{}
	c.discarded.merge(ec.pc(name).discarded)
	c.errs = maps.Clone(c.errs)
	return c
}

// streamErr returns why the event stream ended early, or nil.
func (ec *eventChecker) streamErr() error {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	return ec.err
}
