package testkit

import (
	"errors"
	"fmt"

	"github.com/faultline-proxy/faultline/proxy"
)

// ErrInvalidReuse is wrapped by CheckNoInvalidReuse's error.
var ErrInvalidReuse = errors.New("testkit: upstream connection reused when it must not be")

// upState is where an upstream connection is in its pool life.
type upState struct {
	busy    bool        // lent to a session whose copy loops have not stopped
	pooled  bool        // released to the pool since it was last lent
	user    proxy.Event // the borrowed or dialed event of the session using it
	dead    bool        // discarded or retried: must never be lent again
	deathBy proxy.Event
}

// CheckNoInvalidReuse checks the proxy's own upstream pool: no upstream
// connection was borrowed (EventBorrowed with Reused) after it was
// discarded (EventDiscarded: invalid, dirty, stale, ...) or found dead
// (EventRetried), nor while the previous session using it had not yet
// stopped its copy loops (no EventInterrupted, EventReleased or
// EventDiscarded since it was lent), nor before that session released it to
// the pool (EventReleased, which the proxy emits before the connection can
// be borrowed). It reads the whole log, whatever its
// cursor, and returns an error wrapping ErrInvalidReuse that quotes, for
// each such borrow, the event that made it wrong and the borrow itself.
func CheckNoInvalidReuse(l *EventLog) error {
	v := violations{sentinel: ErrInvalidReuse}
	ups := make(map[uint64]*upState)
	get := func(id uint64) *upState {
		s := ups[id]
		if s == nil {
			s = &upState{}
			ups[id] = s
		}
		return s
	}
	for _, e := range l.All() {
		if e.Upstream == 0 {
			continue
		}
		s := get(e.Upstream)
		switch e.Kind {
		case proxy.EventDialed:
			s.busy, s.pooled, s.user = true, false, e
		case proxy.EventBorrowed:
			switch {
			case e.Reused && s.dead:
				v.add(fmt.Sprintf("conn %d borrowed upstream %d after it was %s", e.Conn, e.Upstream, deathWord(s.deathBy)), s.deathBy, e)
			case e.Reused && s.busy:
				v.add(fmt.Sprintf("conn %d borrowed upstream %d while conn %d's copy loops on it had not stopped", e.Conn, e.Upstream, s.user.Conn), s.user, e)
			case e.Reused && !s.pooled && s.user.Kind != 0:
				v.add(fmt.Sprintf("conn %d borrowed upstream %d, which conn %d had not released to the pool", e.Conn, e.Upstream, s.user.Conn), s.user, e)
			}
			s.busy, s.pooled, s.user = true, false, e
		case proxy.EventInterrupted:
			s.busy = false
		case proxy.EventReleased:
			s.busy, s.pooled = false, true
		case proxy.EventDiscarded, proxy.EventRetried:
			s.busy = false
			if !s.dead {
				s.dead, s.deathBy = true, e
			}
		}
	}
	return v.err()
}

func deathWord(e proxy.Event) string {
	if e.Kind == proxy.EventRetried {
		return fmt.Sprintf("found dead (%s)", e.Reason)
	}
	return fmt.Sprintf("discarded (%s)", e.Reason)
}
