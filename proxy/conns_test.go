package proxy

import (
	"errors"
	"io"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/testswitch"
)

func TestConnsReportsLiveBytes(t *testing.T) {
	fx := newFaultFixture(t, Config{}) // "hello" went each way
	// Splice is still running: the counts come from the kernel.
	payload := make([]byte, 1<<20)
	wrote := make(chan error, 1)
	go func() { _, err := fx.c.Write(payload); wrote <- err }()
	if _, err := io.ReadFull(fx.u, make([]byte, len(payload))); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	var ci ConnInfo
	for time.Now().Before(deadline) {
		cs := fx.p.Conns()
		if len(cs) != 1 {
			t.Fatalf("Conns() = %+v, want one", cs)
		}
		if ci = cs[0]; ci.BytesUp == 5+1<<20 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ci.ID != fx.conn || ci.Upstream == 0 || ci.BytesUp != 5+1<<20 || ci.BytesDown != 5 || ci.Pooled || ci.Client != fx.c.LocalAddr().String() {
		t.Errorf("Conns()[0] = %+v, want ID %d, bytes up %d, down 5, client %s", ci, fx.conn, 5+1<<20, fx.c.LocalAddr())
	}
	if up, down := fx.p.Bytes(); up != 5+1<<20 || down != 5 {
		t.Errorf("Bytes() = %d, %d; want %d, 5", up, down, 5+1<<20)
	}
	f := fx.add(t, faults.Latency(time.Nanosecond, 0).WithDir(faults.Down))
	if got := fx.p.Conns()[0].Faults; !slices.Equal(got, []string{f.Name}) {
		t.Errorf("Conns()[0].Faults = %v, want [%s]", got, f.Name)
	}
}

func TestCloseConn(t *testing.T) {
	for _, tt := range []struct {
		how  CloseHow
		want error // the client's read error; nil: EOF
	}{
		{FIN, nil},
		{RST, syscall.ECONNRESET},
	} {
		t.Run(tt.how.String(), func(t *testing.T) {
			fx := newFaultFixture(t, Config{})
			if err := fx.p.CloseConn(fx.conn, tt.how); err != nil {
				t.Fatal(err)
			}
			if err := readErr(t, fx.c); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("client read error %v, want %v", err, tt.want)
			}
			e := fx.ev.waitKind(t, EventClosed, fx.conn)
			if e.By != ByProxy || e.How != tt.how {
				t.Errorf("closed event %v, want by proxy, %s", e, tt.how)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		if err := fx.p.CloseConn(fx.conn+100, FIN); !errors.Is(err, ErrNoConn) {
			t.Errorf("CloseConn(unknown) = %v, want ErrNoConn", err)
		}
	})
}

func TestDrainPool(t *testing.T) {
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr(), Mode: ModePool})
	ev := record(t, p)
	c := dial(t, p.Addr().String())
	roundTrip(t, c, "x")
	_ = c.Close()
	ev.waitKind(t, EventReleased, 0)
	if n := p.DrainPool(); n != 1 {
		t.Errorf("DrainPool() = %d, want 1", n)
	}
	d := ev.waitKind(t, EventDiscarded, 0)
	if st := p.PoolStats(); d.Reason != ReasonDrained || st.Idle != 0 || st.Discarded[ReasonDrained] != 1 {
		t.Errorf("after drain: event %v, stats %+v; want reason drained, no idle", d, st)
	}
}

func TestUpdateFault(t *testing.T) {
	const delay = 300 * time.Millisecond
	fx := newFaultFixture(t, Config{})
	f := fx.add(t, faults.Latency(delay, 0).WithDir(faults.Down).WithName("slow"))
	start := time.Now()
	roundTripVia(t, fx.c, fx.u, "a")
	if took := time.Since(start); took < delay {
		t.Fatalf("round trip under latency took %s, want at least %s", took, delay)
	}
	f.Delay = time.Millisecond
	if _, err := fx.p.UpdateFault(f); err != nil {
		t.Fatal(err)
	}
	e := fx.ev.waitFor(t, "fault-applied after the update", func(e Event) bool {
		return e.Kind == EventFaultApplied && e.Seq > 0 && e.Fault == "slow"
	})
	if e.Dir != Down {
		t.Errorf("applied event %v, want dir down", e)
	}
	start = time.Now()
	roundTripVia(t, fx.c, fx.u, "b")
	if took := time.Since(start); took >= delay {
		t.Errorf("round trip after update took %s, want under the old %s", took, delay)
	}
	// Direction changed: taken off down, put on up.
	f.Dir = faults.Up
	if _, err := fx.p.UpdateFault(f); err != nil {
		t.Fatal(err)
	}
	if got := fx.p.Faults(); len(got) != 1 || got[0].Dir != faults.Up {
		t.Errorf("Faults() = %+v, want one fault, dir up", got)
	}
	fx.ev.waitFor(t, "fault-cleared on down", func(e Event) bool {
		return e.Kind == EventFaultCleared && e.Fault == "slow" && e.Dir == Down
	})

	for _, tt := range []struct {
		name string
		f    faults.Fault
		want error
	}{
		{"unknown name", faults.Latency(time.Nanosecond, 0).WithName("nope"), ErrNoFault},
		{"kind change", faults.Stall(false).WithName("slow"), faults.ErrBadFault},
		{"no name", faults.Latency(time.Nanosecond, 0), faults.ErrBadFault},
		{"invalid", faults.Latency(-1, 0).WithName("slow"), faults.ErrBadFault},
	} {
		if _, err := fx.p.UpdateFault(tt.f); !errors.Is(err, tt.want) {
			t.Errorf("%s: UpdateFault = %v, want %v", tt.name, err, tt.want)
		}
	}
	if got := fx.p.Faults(); len(got) != 1 || got[0].Dir != faults.Up || got[0].Delay != time.Millisecond {
		t.Errorf("after refused updates Faults() = %+v, want the last good one", got)
	}
	fx.p.ClearFaults()
	if got := fx.p.Faults(); len(got) != 0 {
		t.Errorf("after ClearFaults, Faults() = %+v", got)
	}
}

func TestHalfClosedCarriesBytes(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	if err := fx.u.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	e := fx.ev.waitFor(t, "half-closed down", func(e Event) bool { return e.Kind == EventHalfClosed && e.Dir == Down })
	if e.BytesUp != 5 || e.BytesDown != 5 {
		t.Errorf("half-closed event %v, want 5 bytes each way", e)
	}
	// The client writes after the FIN reached it.
	if _, err := io.WriteString(fx.c, "late"); err != nil {
		t.Fatal(err)
	}
	readWithin(t, fx.u, "late", waitTimeout)
	_ = fx.c.Close()
	if c := fx.ev.waitKind(t, EventClosed, fx.conn); c.BytesUp != 9 {
		t.Errorf("closed event %v, want 9 bytes up", c)
	}
}

// TestBreakPoolRelease shows the test-only switch does what the testkit's
// proof relies on: a connection judged invalid is recorded as discarded and
// handed out again.
func TestBreakPoolRelease(t *testing.T) {
	testswitch.BreakPoolRelease.Store(true)
	defer testswitch.BreakPoolRelease.Store(false)
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr(), Mode: ModePool})
	ev := record(t, p)
	c := dial(t, p.Addr().String())
	roundTrip(t, c, "x")
	// The upstream's echo of "y" is in flight or unread when the client resets.
	if _, err := io.WriteString(c, "y"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetLinger(0)
	_ = c.Close()
	d := ev.waitKind(t, EventDiscarded, 0)
	ev.waitKind(t, EventReleased, d.Conn) // recorded as discarded, pooled all the same
	c2 := dial(t, p.Addr().String())
	if _, err := io.WriteString(c2, "z"); err != nil {
		t.Fatal(err)
	}
	b := ev.waitFor(t, "second borrow", func(e Event) bool { return e.Kind == EventBorrowed && e.Conn != d.Conn })
	if !b.Reused || b.Upstream != d.Upstream {
		t.Errorf("with the switch on: discarded %v then borrowed %v; want the same upstream reused", d, b)
	}
	_ = c2.Close()
}
