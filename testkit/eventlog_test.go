package testkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

func TestEventLogCursor(t *testing.T) {
	l := newEventLog()
	l.add(ev(proxy.EventAccepted, 1, 0))
	l.add(ev(proxy.EventDialed, 1, 1))
	if got := l.Next(); len(got) != 2 {
		t.Fatalf("first Next: got %d events, want 2", len(got))
	}
	if got := l.Next(); len(got) != 0 {
		t.Errorf("second Next: got %v, want nothing new", got)
	}
	l.add(ev(proxy.EventAccepted, 2, 0))
	l.add(ev(proxy.EventDialed, 2, 2))
	l.add(ev(proxy.EventClosed, 1, 1))
	if got := l.Unread(); len(got) != 3 {
		t.Errorf("Unread: got %d events, want 3", len(got))
	}
	e, ok := l.Take(Match(proxy.EventDialed, OnConn(2)).Match)
	if !ok || e.Upstream != 2 {
		t.Fatalf("Take(dialed conn=2) = %v, %t; want upstream 2", e, ok)
	}
	if got := l.Unread(); len(got) != 1 || got[0].Kind != proxy.EventClosed {
		t.Errorf("after Take: unread %v, want only the closed event", got)
	}
	if _, ok := l.Take(Match(proxy.EventAccepted).Match); ok {
		t.Error("Take found an accepted event before the cursor")
	}
	if got := len(l.All()); got != 5 {
		t.Errorf("All: got %d events, want 5 whatever the cursor", got)
	}
	if got := l.Tail(2); len(got) != 2 || got[1].Kind != proxy.EventClosed {
		t.Errorf("Tail(2) = %v, want the last two", got)
	}
}

func TestEventLogWaitWakesOnEvent(t *testing.T) {
	l := newEventLog()
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(10 * time.Millisecond)
		l.add(ev(proxy.EventAccepted, 1, 0))
		l.add(ev(proxy.EventClosed, 1, 0))
	}()
	e, err := l.WaitFor(waitTimeout, proxy.EventClosed, OnConn(1))
	<-done
	if err != nil || e.Kind != proxy.EventClosed {
		t.Fatalf("WaitFor(closed) = %v, %v; want the closed event", e, err)
	}
}

func TestEventLogWaitFailures(t *testing.T) {
	l := newEventLog()
	l.add(proxy.Event{Seq: 1, Kind: proxy.EventAccepted, Conn: 1})
	_, err := l.WaitFor(20*time.Millisecond, proxy.EventClosed, OnConn(1))
	if !errors.Is(err, ErrNoEvent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor timing out: got %v, want ErrNoEvent and DeadlineExceeded", err)
	}
	for _, want := range []string{"closed conn=1", "#1 accepted conn=1", "1 unread"} {
		if err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("WaitFor error %q does not contain %q", err, want)
		}
	}
	l.close()
	_, err = l.Wait(context.Background(), Match(proxy.EventClosed).Match)
	if !errors.Is(err, ErrNoEvent) || !errors.Is(err, ErrClosed) {
		t.Errorf("Wait on a closed log: got %v, want ErrNoEvent and ErrClosed", err)
	}
}

func TestFormatEventQuotesHalfCloseBytes(t *testing.T) {
	e := proxy.Event{Seq: 3, Kind: proxy.EventHalfClosed, Conn: 1, Upstream: 1, Dir: proxy.Down, BytesUp: 12, BytesDown: 40}
	if got, want := FormatEvent(e), "#3 half-closed conn=1 upstream=1 dir=down (bytes_up=12B bytes_down=40B so far)"; got != want {
		t.Errorf("FormatEvent = %q, want %q", got, want)
	}
}

// TestOneDirectionType: a fault's direction and side and an event's are
// one type each, so the faults package's values match events.
func TestOneDirectionType(t *testing.T) {
	e := proxy.Event{Kind: proxy.EventHalfClosed, Conn: 1, Dir: faults.Down, By: faults.ToUpstream}
	if !Match(proxy.EventHalfClosed, InDir(faults.Down), By(proxy.Upstream)).Match(e) {
		t.Errorf("InDir(faults.Down), By(proxy.Upstream) does not match %s", e)
	}
	if Match(proxy.EventHalfClosed, InDir(proxy.Up)).Match(e) {
		t.Errorf("InDir(proxy.Up) matches %s", e)
	}
}

func TestPatternString(t *testing.T) {
	tests := []struct {
		p    Pattern
		want string
	}{
		{Match(proxy.EventBorrowed, OnConn(3), IsReused(true)), "borrowed conn=3 reused=true"},
		{Match(0, OnUpstream(2)), "any event upstream=2"},
		{Match(proxy.EventClosed, By(proxy.Client), InDir(proxy.Up)), "closed by=client dir=up"},
		{Match(proxy.EventHalfClosed, InDir(faults.Down), By(faults.ByProxy)), "half-closed dir=down by=proxy"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
