package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// session dials a websocket session, closed when the test ends.
func (fx *fixture) session(t *testing.T) *client.Session {
	t.Helper()
	s, err := fx.c.Dial(ctx(t))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSessionOps(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	s := fx.session(t)
	conn := dial(t, p.Listen)
	echoOnce(t, conn, "before")

	// Once Inject returns the stall is in force: the echo does not come back.
	f, err := s.Inject(ctx(t), "a", faults.Stall(false).WithName("stop").WithDir(faults.Down))
	if err != nil {
		t.Fatalf("Inject: %v", err)
	}
	if f.Name != "stop" || f.Kind != faults.KindStall || f.Target.Which != faults.All {
		t.Errorf("Inject: got %+v, want stop, stall, target all", f)
	}
	if _, err := io.WriteString(conn, "held"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 4)); n != 0 || !errors.Is(err, errTimeout(err)) {
		t.Fatalf("read under a stall: got %d bytes, %v; want a timeout", n, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))

	f.Drop = true
	if f, err = s.Update(ctx(t), "a", f); err != nil || !f.Drop {
		t.Fatalf("Update: got %+v, %v; want drop", f, err)
	}
	if list, err := fx.c.Faults(ctx(t), "a"); err != nil || len(list) != 1 || !list[0].Drop {
		t.Errorf("Faults after Update: got %+v, %v; want the updated stall", list, err)
	}
	if err := s.Clear(ctx(t), "a", "stop"); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	echoOnce(t, conn, "after") // "held" was dropped with the stall

	for _, name := range []string{"x", "y"} {
		if _, err := s.Inject(ctx(t), "a", faults.Latency(time.Millisecond, 0).WithName(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ClearAll(ctx(t), "a"); err != nil {
		t.Fatalf("ClearAll(a): %v", err)
	}
	if list, err := fx.c.Faults(ctx(t), "a"); err != nil || len(list) != 0 {
		t.Errorf("Faults after ClearAll: got %+v, %v; want none", list, err)
	}
	if _, err := s.Inject(ctx(t), "a", faults.Latency(time.Millisecond, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearAll(ctx(t), ""); err != nil {
		t.Fatalf("ClearAll(every proxy): %v", err)
	}
	if list, err := fx.c.Faults(ctx(t), "a"); err != nil || len(list) != 0 {
		t.Errorf("Faults after ClearAll of every proxy: got %+v, %v; want none", list, err)
	}
}

// errTimeout returns err if it is a timeout, so errors.Is(err,
// errTimeout(err)) reports whether err is one.
func errTimeout(err error) error {
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return err
	}
	return errors.New("not a timeout")
}

func TestSessionErrors(t *testing.T) {
	fx := newFixture(t, control.Options{})
	fx.createProxy(t, api.ProxySpec{Name: "a"})
	s := fx.session(t)
	if _, err := s.Inject(ctx(t), "a", faults.Stall(false).WithName("s")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want *api.Error
	}{
		{"inject: no such proxy", func() error { _, err := s.Inject(ctx(t), "nope", faults.Stall(false)); return err }, api.ErrNotFound},
		{"inject: unknown kind", func() error { _, err := s.Inject(ctx(t), "a", faults.Fault{Kind: "bogus"}); return err }, api.ErrUnknownKind},
		{"inject: name taken", func() error { _, err := s.Inject(ctx(t), "a", faults.Stall(false).WithName("s")); return err }, api.ErrNameTaken},
		{"update: no such fault", func() error { _, err := s.Update(ctx(t), "a", faults.Stall(true).WithName("nope")); return err }, api.ErrNotFound},
		{"clear: no such fault", func() error { return s.Clear(ctx(t), "a", "nope") }, api.ErrNotFound},
		{"clear-all: no such proxy", func() error { return s.ClearAll(ctx(t), "nope") }, api.ErrNotFound},
		{"subscribe: unknown kind", func() error { _, err := s.Subscribe(ctx(t), "", []string{"bogus"}, client.FromNow); return err }, api.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// The session is still usable after error replies.
	if err := s.Clear(ctx(t), "a", "s"); err != nil {
		t.Errorf("Clear after errors: %v", err)
	}
}

func TestSubscribe(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	fx.createProxy(t, api.ProxySpec{Name: "b"})
	s := fx.session(t)
	sub, err := s.Subscribe(ctx(t), "a", []string{"fault-applied", "fault-cleared"}, client.FromNow)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if sub.ID() == "" {
		t.Error("subscription has no ID")
	}
	conn := dial(t, p.Listen)
	echoOnce(t, conn, "live")
	if _, err := s.Inject(ctx(t), "b", faults.Stall(false).WithName("other")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inject(ctx(t), "a", faults.Stall(false).WithName("stop").WithDir(faults.Up)); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx(t), "a", "stop"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, want := range []proxy.EventKind{proxy.EventFaultApplied, proxy.EventFaultCleared} {
		e, err := sub.Next(ctx(t))
		if err != nil {
			t.Fatalf("Next: %v (so far %q)", err, got)
		}
		got = append(got, fmt.Sprintf("%s %s %s", e.Proxy, e.Event.Kind, e.Event.Fault))
		if e.Proxy != "a" || e.Event.Kind != want || e.Event.Fault != "stop" || e.Event.Dir != proxy.Up {
			t.Errorf("event %d: got %+v, want %s of stop, up, on a", len(got), e, want)
		}
	}

	if err := sub.Unsubscribe(ctx(t)); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if _, err := sub.Next(ctx(t)); !errors.Is(err, client.ErrUnsubscribed) {
		t.Errorf("Next after Unsubscribe: got %v, want ErrUnsubscribed", err)
	}
}

func TestSubscribeFromCursor(t *testing.T) {
	fx := newFixture(t, control.Options{})
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	// Two connections: the second's accepted event comes after the first's
	// (a cursor of 0 means from now on).
	for range 2 {
		echoOnce(t, dial(t, p.Listen), "x")
	}
	var past api.Events
	eventually(t, "two accepted events in the log", func() (bool, string) {
		var err error
		past, err = fx.c.Events(ctx(t), client.EventsQuery{Kinds: []string{"accepted"}})
		return err == nil && len(past.Events) == 2, fmt.Sprintf("%+v, %v", past, err)
	})
	s := fx.session(t)
	second := past.Events[1]
	sub, err := s.Subscribe(ctx(t), "", []string{"accepted"}, second.ID-1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := sub.Next(ctx(t))
	if err != nil || e.ID != second.ID || e.Event.Conn != second.Event.Conn {
		t.Errorf("first event after cursor %d: got %+v, %v; want %+v", second.ID-1, e, err, second)
	}
	// Cursor 0: from the first event kept.
	all, err := s.Subscribe(ctx(t), "", []string{"accepted"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := all.Next(ctx(t)); err != nil || e.ID != past.Events[0].ID {
		t.Errorf("first event after cursor 0: got %+v, %v; want %+v", e, err, past.Events[0])
	}
}

func TestSessionEndsWithServer(t *testing.T) {
	fx := newFixture(t, control.Options{})
	s := fx.session(t)
	sub, err := s.Subscribe(ctx(t), "", nil, client.FromNow)
	if err != nil {
		t.Fatal(err)
	}
	_ = fx.srv.Close()
	_, err = sub.Next(ctx(t))
	if !errors.Is(err, client.ErrSessionClosed) {
		t.Fatalf("Next after the server closed: got %v, want ErrSessionClosed", err)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("Next after the server closed: got %v, want a close frame going away", err)
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done not closed once the session ended")
	}
	if _, err := s.Inject(ctx(t), "a", faults.Stall(false)); !errors.Is(err, client.ErrSessionClosed) {
		t.Errorf("Inject after the session ended: got %v, want ErrSessionClosed", err)
	}
}

func TestSessionClose(t *testing.T) {
	fx := newFixture(t, control.Options{})
	s := fx.session(t)
	sub, err := s.Subscribe(ctx(t), "", nil, client.FromNow)
	if err != nil {
		t.Fatal(err)
	}
	if s.Err() != nil {
		t.Errorf("Err of a live session: %v", s.Err())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := sub.Next(ctx(t)); !errors.Is(err, client.ErrSessionClosed) {
		t.Errorf("Next after Close: got %v, want ErrSessionClosed", err)
	}
	if err := s.ClearAll(ctx(t), ""); !errors.Is(err, client.ErrSessionClosed) {
		t.Errorf("ClearAll after Close: got %v, want ErrSessionClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSessionContext(t *testing.T) {
	fx := newFixture(t, control.Options{})
	s := fx.session(t)
	sub, err := s.Subscribe(ctx(t), "", []string{"accepted"}, client.FromNow)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sub.Next(c); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context: got %v, want context.Canceled", err)
	}
	if err := s.ClearAll(c, ""); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("ClearAll with a cancelled context: got %v, want nil or context.Canceled", err)
	}
	// A cancelled request leaves the session usable.
	if err := s.ClearAll(ctx(t), ""); err != nil {
		t.Errorf("ClearAll after a cancelled one: %v", err)
	}
	if _, err := fx.c.Dial(c); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a cancelled context: got %v, want context.Canceled", err)
	}
}

// TestSubscriptionOverflow: a subscriber that does not read is ended with
// ErrOverflow once its bound of unread events is reached; Next still
// returns the events queued before, and subscribing again from the last
// one read goes on with no gap.
func TestSubscriptionOverflow(t *testing.T) {
	const bound = 4
	fx := newFixture(t, control.Options{}, client.WithMaxQueued(bound))
	p := fx.createProxy(t, api.ProxySpec{Name: "a"})
	s := fx.session(t)
	sub, err := s.Subscribe(ctx(t), "a", nil, client.FromNow)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // accepted and dialed each: more than bound events
		echoOnce(t, dial(t, p.Listen), "x")
	}
	eventually(t, "the subscription overflows", func() (bool, string) {
		err := sub.Err()
		return errors.Is(err, client.ErrOverflow), fmt.Sprint(err)
	})
	var last api.Event
	for i := range bound {
		e, err := sub.Next(ctx(t))
		if err != nil {
			t.Fatalf("Next %d of the %d queued: %v", i+1, bound, err)
		}
		if i > 0 && e.ID != last.ID+1 {
			t.Errorf("queued event %d has ID %d after %d", i+1, e.ID, last.ID)
		}
		last = e
	}
	if e, err := sub.Next(ctx(t)); !errors.Is(err, client.ErrOverflow) {
		t.Fatalf("Next after the queued events: got %+v, %v; want ErrOverflow", e, err)
	}
	again, err := s.Subscribe(ctx(t), "a", nil, last.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := again.Next(ctx(t)); err != nil || e.ID != last.ID+1 {
		t.Errorf("first event subscribing again after %d: got %+v, %v; want ID %d", last.ID, e, err, last.ID+1)
	}
}
