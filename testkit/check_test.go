package testkit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// checkCase is one synthetic log for a check: want is "" when the check must
// pass, else text its error must contain.
type checkCase struct {
	name string
	log  *EventLog
	want []string
}

func runChecks(t *testing.T, sentinel error, check func(*EventLog) error, tests []checkCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(tt.log)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, sentinel) {
				t.Fatalf("got %v, want an error wrapping %v", err, sentinel)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func borrowed(conn, up uint64, reused bool) proxy.Event {
	e := ev(proxy.EventBorrowed, conn, up)
	e.Reused = reused
	return e
}

func discarded(conn, up uint64, r proxy.Reason) proxy.Event {
	e := ev(proxy.EventDiscarded, conn, up)
	e.Reason = r
	return e
}

func TestCheckNoInvalidReuse(t *testing.T) {
	now := time.Now()
	runChecks(t, ErrInvalidReuse, CheckNoInvalidReuse, []checkCase{
		{name: "released then reused", log: events(now,
			ev(proxy.EventDialed, 1, 1), ev(proxy.EventInterrupted, 1, 1), ev(proxy.EventReleased, 1, 1),
			borrowed(2, 1, true), ev(proxy.EventInterrupted, 2, 1), ev(proxy.EventReleased, 2, 1),
			borrowed(3, 1, true))},
		{name: "discarded, then a fresh one", log: events(now,
			ev(proxy.EventDialed, 1, 1), ev(proxy.EventInterrupted, 1, 1), discarded(1, 1, proxy.ReasonUnread),
			ev(proxy.EventDialed, 2, 2))},
		{name: "reused after discarded", log: events(now,
			ev(proxy.EventDialed, 1, 1), ev(proxy.EventInterrupted, 1, 1), discarded(1, 1, proxy.ReasonClientReset),
			ev(proxy.EventReleased, 1, 1), borrowed(2, 1, true)),
			want: []string{"1 found", "conn 2 borrowed upstream 1 after it was discarded (client-reset)", "#3 discarded conn=1 upstream=1 reason=client-reset", "#5 borrowed conn=2 upstream=1 reused=true"}},
		{name: "reused after retried", log: events(now,
			ev(proxy.EventDialed, 1, 1), ev(proxy.EventReleased, 1, 1),
			proxy.Event{Kind: proxy.EventRetried, Conn: 2, Upstream: 1, Reason: proxy.ReasonUpstreamEOF}, borrowed(3, 1, true)),
			want: []string{"conn 3 borrowed upstream 1 after it was found dead (upstream-eof)"}},
		{name: "reused while the previous session runs", log: events(now,
			ev(proxy.EventDialed, 1, 1), ev(proxy.EventReleased, 1, 1),
			borrowed(2, 1, true), borrowed(3, 1, true)),
			want: []string{"conn 3 borrowed upstream 1 while conn 2's copy loops on it had not stopped", "#3 borrowed conn=2", "#4 borrowed conn=3"}},
		{name: "reused before it was released", log: events(now,
			ev(proxy.EventDialed, 1, 1), ev(proxy.EventInterrupted, 1, 1), borrowed(2, 1, true)),
			want: []string{"conn 2 borrowed upstream 1, which conn 1 had not released to the pool", "#1 dialed conn=1", "#3 borrowed conn=2"}},
	})
}

func TestCheckInterruptsWithin(t *testing.T) {
	now := time.Now()
	interrupted := func(conn uint64, took time.Duration) proxy.Event {
		e := ev(proxy.EventInterrupted, conn, conn)
		e.Took = took
		return e
	}
	check := func(l *EventLog) error { return CheckInterruptsWithin(l, 100*time.Millisecond) }
	runChecks(t, ErrSlowInterrupt, check, []checkCase{
		{name: "fast", log: events(now, interrupted(1, time.Millisecond), interrupted(2, 100*time.Millisecond))},
		{name: "slow", log: events(now, interrupted(1, time.Millisecond), interrupted(2, 2*time.Second)),
			want: []string{"conn 2: copy loops took 2s to stop, over 100ms", "#2 interrupted conn=2 upstream=2 took=2s"}},
	})
}

func TestCheckNoWriteAfterClose(t *testing.T) {
	now := time.Now()
	fin := func(conn uint64, dir proxy.Direction, up int64) proxy.Event {
		return proxy.Event{Kind: proxy.EventHalfClosed, Conn: conn, Upstream: conn, Dir: dir, BytesUp: up, BytesDown: 10}
	}
	closed := func(conn uint64, up int64) proxy.Event {
		return proxy.Event{Kind: proxy.EventClosed, Conn: conn, Upstream: conn, BytesUp: up, BytesDown: 10, By: proxy.Upstream, How: proxy.FIN}
	}
	runChecks(t, ErrWriteAfterClose, CheckNoWriteAfterClose, []checkCase{
		{name: "client closed after the FIN", log: events(now, fin(1, proxy.Down, 5), closed(1, 5))},
		{name: "client wrote before its own FIN", log: events(now, fin(1, proxy.Up, 5), closed(1, 9))},
		{name: "not closed yet", log: events(now, fin(1, proxy.Down, 5))},
		{name: "client wrote after the FIN", log: events(now, fin(1, proxy.Down, 5), fin(2, proxy.Down, 3), closed(2, 3), closed(1, 12)),
			want: []string{"1 found", "conn 1: the client wrote 7 bytes after the proxy relayed the upstream's FIN to it (5 bytes before, 12 at close)",
				"#1 half-closed conn=1 upstream=1 dir=down (bytes_up=5B bytes_down=10B so far)", "#4 closed conn=1"}},
	})
}

// TestCheckNoWriteAfterCloseCannotJudgePoolMode: in pool mode an upstream
// FIN ends the session, so a write after it is never counted; the check
// says it cannot judge rather than pass.
func TestCheckNoWriteAfterCloseCannotJudgePoolMode(t *testing.T) {
	now := time.Now()
	closed := proxy.Event{Kind: proxy.EventClosed, Conn: 1, Upstream: 1, BytesUp: 5, BytesDown: 6, By: proxy.Upstream, How: proxy.FIN}
	pool := events(now, ev(proxy.EventAccepted, 1, 0), ev(proxy.EventDialed, 1, 1), borrowed(1, 1, false),
		ev(proxy.EventInterrupted, 1, 1), discarded(1, 1, proxy.ReasonUpstreamEOF), closed)
	err := CheckNoWriteAfterClose(pool)
	if !errors.Is(err, ErrCannotJudge) || errors.Is(err, ErrWriteAfterClose) {
		t.Fatalf("pool-mode log: got %v, want ErrCannotJudge", err)
	}
	if want := "conn 1 is in pool mode"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	dial := events(now, ev(proxy.EventAccepted, 1, 0), ev(proxy.EventDialed, 1, 1), closed)
	if err := CheckNoWriteAfterClose(dial); err != nil {
		t.Errorf("dial-mode log: got %v, want nil", err)
	}
	if got := CheckLog(pool); len(got) != 0 {
		t.Errorf("CheckLog on a pool-mode log: got %v, want no violation", got)
	}
}

func TestCheckGaveUpWithin(t *testing.T) {
	now := time.Now()
	at := func(e proxy.Event, d time.Duration) proxy.Event { e.Time = now.Add(d); return e }
	stall := func(conn uint64, d time.Duration) proxy.Event {
		return at(proxy.Event{Kind: proxy.EventFaultFired, Conn: conn, Dir: proxy.Down, Fault: "stall-1"}, d)
	}
	fin := func(conn uint64, d time.Duration) proxy.Event {
		return at(proxy.Event{Kind: proxy.EventHalfClosed, Conn: conn, Dir: proxy.Up}, d)
	}
	closed := func(conn uint64, by proxy.Side, d time.Duration) proxy.Event {
		return at(proxy.Event{Kind: proxy.EventClosed, Conn: conn, By: by, How: proxy.FIN}, d)
	}
	check := func(l *EventLog) error { return CheckGaveUpWithin(l, time.Second, time.Second) }
	named := newEventLog()
	named.noteFault(faults.Stall(false).WithName("quiet"))
	named.add(at(proxy.Event{Kind: proxy.EventFaultFired, Conn: 1, Fault: "quiet"}, 0))
	named.close()
	runChecks(t, ErrNoGiveUp, check, []checkCase{
		{name: "gave up in time", log: events(now, stall(1, 0), fin(1, 1100*time.Millisecond), closed(1, proxy.Upstream, 1200*time.Millisecond))},
		{name: "closed by the client in time", log: events(now, stall(1, 0), closed(1, proxy.Client, 1500*time.Millisecond))},
		{name: "stall cleared first", log: events(now, stall(1, 0),
			at(proxy.Event{Kind: proxy.EventFaultCleared, Conn: 1, Dir: proxy.Down, Fault: "stall-1"}, 100*time.Millisecond),
			closed(1, proxy.Upstream, 5*time.Second))},
		{name: "not a stall", log: events(now, at(proxy.Event{Kind: proxy.EventFaultFired, Conn: 1, Fault: "reset-1"}, 0))},
		{name: "gave up late", log: events(now, stall(1, 0), fin(1, 3*time.Second)),
			want: []string{"conn 1: the client gave up 3s after the stall began, over its deadline 1s + 1s", "fault=stall-1", "#2 half-closed conn=1"}},
		{name: "ended by the upstream", log: events(now, stall(1, 0), closed(1, proxy.Upstream, time.Second)),
			want: []string{"conn 1: the client never gave up on the stall; the session was ended by the upstream"}},
		{name: "never, proxy closed", log: events(now, stall(1, 0)),
			want: []string{"conn 1: the client never gave up on the stall before the proxy closed"}},
		{name: "a stall the testkit injected under a name", log: named,
			want: []string{"conn 1", "fault=quiet"}},
	})
}

func TestCheckGaveUpWithinOpenLog(t *testing.T) {
	l := newEventLog()
	l.add(proxy.Event{Seq: 1, Time: time.Now(), Kind: proxy.EventFaultFired, Conn: 1, Dir: proxy.Down, Fault: "stall-1"})
	err := CheckGaveUpWithin(l, time.Minute, time.Minute)
	if !errors.Is(err, ErrNoGiveUp) || !strings.Contains(err.Error(), "not yet decided") {
		t.Errorf("stall just begun: got %v, want ErrNoGiveUp saying not yet decided", err)
	}
	l.add(proxy.Event{Seq: 2, Time: time.Now(), Kind: proxy.EventClosed, Conn: 1, By: proxy.Client})
	if err := CheckGaveUpWithin(l, time.Minute, time.Minute); err != nil {
		t.Errorf("after the client closed: got %v, want nil", err)
	}
}
