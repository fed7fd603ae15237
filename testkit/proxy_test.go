package testkit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

func TestNewProxyRelaysAndRecords(t *testing.T) {
	px := NewProxy(t, startEcho(t))
	if !strings.HasPrefix(px.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want a loopback address", px.Addr())
	}
	c := dial(t, px.Addr())
	roundTrip(t, c, "hello")
	acc := px.Await(proxy.EventAccepted)
	_ = c.Close()
	closed := px.Await(proxy.EventClosed, OnConn(acc.Conn))
	if closed.BytesUp != 5 || closed.BytesDown != 5 {
		t.Errorf("closed event %s: got %d bytes up, %d down, want 5 and 5", closed, closed.BytesUp, closed.BytesDown)
	}
	if err := Within(waitTimeout, func() error { return CheckNothingOpen(px) }); err != nil {
		t.Error(err)
	}
}

func TestUnstartedProxyTakesConfigChanges(t *testing.T) {
	px := NewUnstartedProxy(t, startEcho(t), WithSeed(7))
	if px.Addr() != "" {
		t.Errorf("Addr() before Start = %q, want \"\"", px.Addr())
	}
	if px.Config.Seed != 7 {
		t.Errorf("Config.Seed = %d, want 7 from WithSeed", px.Config.Seed)
	}
	px.Config.Mode = proxy.ModePool
	px.Start()
	c := dial(t, px.Addr())
	roundTrip(t, c, "x")
	if b := px.Await(proxy.EventBorrowed); b.Reused {
		t.Errorf("first borrow %s: got reused, want a fresh connection", b)
	}
	if st := px.Pool(); st.Busy != 1 || st.Dialed != 1 {
		t.Errorf("Pool() = %+v, want 1 busy, 1 dialed", st)
	}
}

func TestStartFailureStopsTheTest(t *testing.T) {
	rec := newRecTB(t)
	capture(func() { NewProxy(rec, "") }) // no upstream: an invalid config
	_, fatals, _ := rec.recorded()
	if !strings.Contains(fatals, "invalid config") {
		t.Errorf("Fatalf got %q, want the proxy's invalid config error", fatals)
	}
}

func TestFaultHandle(t *testing.T) {
	px := NewProxy(t, startEcho(t))
	c := dial(t, px.Addr())
	roundTrip(t, c, "warm")
	h := px.Inject(faults.Latency(time.Millisecond, 0).WithName("slow"))
	px.Await(proxy.EventFaultApplied, OfFault("slow"))
	if h.Name() != "slow" || h.Fault().Kind != faults.KindLatency {
		t.Errorf("handle: got %s %s, want slow latency", h.Name(), h.Fault().Kind)
	}
	if err := h.Update(faults.Latency(2*time.Millisecond, 0)); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := h.Fault().Delay; got != 2*time.Millisecond {
		t.Errorf("after Update: Delay = %s, want 2ms", got)
	}
	roundTrip(t, c, "still relayed")
	if err := h.Clear(); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	px.Await(proxy.EventFaultCleared, OfFault("slow"))
	if err := h.Clear(); err != nil {
		t.Errorf("second Clear: %v, want nil", err)
	}
	if cs := px.Conns(); len(cs) != 1 || len(cs[0].Faults) != 0 {
		t.Errorf("Conns() = %+v, want one connection with no fault", cs)
	}
}

func TestFaultUpdateOfAnotherKindIsReported(t *testing.T) {
	rec := newRecTB(t)
	px := NewProxy(rec, startEcho(t))
	h := px.Inject(faults.Latency(time.Millisecond, 0))
	err := h.Update(faults.Stall(false))
	if err == nil {
		t.Fatal("Update to another kind: got nil, want an error")
	}
	if errs, _, _ := rec.recorded(); !strings.Contains(errs, h.Name()) {
		t.Errorf("Errorf got %q, want it to name the fault %s", errs, h.Name())
	}
}

func TestAddFaultErrors(t *testing.T) {
	px := NewProxy(t, startEcho(t))
	if _, err := px.AddFault(faults.Fault{Kind: "nonsense"}); !errors.Is(err, faults.ErrUnknownKind) {
		t.Errorf("AddFault(unknown kind): got %v, want ErrUnknownKind", err)
	}
	px.Inject(faults.Stall(false).WithName("s"))
	if _, err := px.AddFault(faults.Stall(false).WithName("s")); !errors.Is(err, proxy.ErrFaultExists) {
		t.Errorf("AddFault(same name): got %v, want ErrFaultExists", err)
	}
	if err := px.ClearAll(); err != nil {
		t.Errorf("ClearAll: %v", err)
	}
	if err := px.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := px.AddFault(faults.Stall(false)); !errors.Is(err, ErrClosed) {
		t.Errorf("AddFault after Close: got %v, want ErrClosed", err)
	}
	if !px.Events().Closed() {
		t.Error("Events().Closed() after Close = false, want true")
	}
}

func TestClearAllClearsHandles(t *testing.T) {
	px := NewProxy(t, startEcho(t))
	h := px.Inject(faults.Stall(false))
	if err := px.ClearAll(); err != nil {
		t.Fatalf("ClearAll: %v", err)
	}
	if err := h.Clear(); err != nil {
		t.Errorf("Clear after ClearAll: %v, want nil", err)
	}
}

// blockingBackend is a backend whose close blocks until released, with one
// live connection, to see what Close says while it waits.
type blockingBackend struct {
	local
	release chan struct{}
}

func (b *blockingBackend) conns() ([]proxy.ConnInfo, error) {
	return []proxy.ConnInfo{{ID: 42, Client: "127.0.0.1:5555", Upstream: 7, Started: time.Now(), Faults: []string{"stall-1"}}}, nil
}

func (b *blockingBackend) close() error {
	<-b.release
	return b.local.close()
}

func TestCloseWaitsAndSaysOnWhat(t *testing.T) {
	defer func(d time.Duration) { closeWarnEvery = d }(closeWarnEvery)
	closeWarnEvery = 20 * time.Millisecond

	l, err := listenLocal(proxy.Config{Upstream: startEcho(t)})
	if err != nil {
		t.Fatal(err)
	}
	be := &blockingBackend{local: *l, release: make(chan struct{})}
	rec := newRecTB(t)
	px := NewUnstartedProxy(rec, be.addr())
	if err := px.attach(be); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	closed := make(chan struct{})
	go func() {
		defer wg.Done()
		_ = px.Close()
		close(closed)
	}()
	go func() {
		defer wg.Done()
		_ = px.Close() // a second Close waits for the first
	}()
	_ = Within(waitTimeout, func() error {
		if _, _, logs := rec.recorded(); !strings.Contains(logs, "conn=42") {
			return errors.New("not logged yet")
		}
		return nil
	})
	select {
	case <-closed:
		t.Error("Close returned while the backend was still closing")
	default:
	}
	close(be.release)
	wg.Wait()
	_, _, logs := rec.recorded()
	for _, want := range []string{"still waiting", "1 live connection:", "conn=42 from 127.0.0.1:5555 upstream=7", "faults=stall-1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("Close logged %q, want it to contain %q", logs, want)
		}
	}
}

// leakyBackend plays a pool that kept an upstream connection busy after
// its session ended: it hides the released events and counts one more busy.
type leakyBackend struct {
	local
	stray int // busy connections no session holds
}

func (b *leakyBackend) pool() (proxy.PoolStats, error) {
	st, err := b.local.pool()
	st.Busy += b.stray
	return st, err
}

func (b *leakyBackend) subscribe(fn func(proxy.Event)) (func(), error) {
	return b.local.subscribe(func(e proxy.Event) {
		if e.Kind != proxy.EventReleased {
			fn(e)
		}
	})
}

func TestCheckNothingOpenCountsBusyUpstreams(t *testing.T) {
	tests := []struct {
		name  string
		stray int
		want  []string
	}{
		{"one the log names", 1, []string{"connections left open: 1 found", "upstream 1 is busy in the pool, borrowed by conn 1, which has closed", "borrowed conn=1 upstream=1"}},
		{"one more the log cannot name", 2, []string{"connections left open: 2 found", "upstream 1 is busy", "an upstream connection is busy in the pool with no live connection holding it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := listenLocal(proxy.Config{Upstream: startEcho(t), Mode: proxy.ModePool})
			if err != nil {
				t.Fatal(err)
			}
			be := &leakyBackend{local: *l, stray: tt.stray}
			px := NewUnstartedProxy(t, be.addr())
			if err := px.attach(be); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = px.Close() })
			c := dial(t, px.Addr())
			roundTrip(t, c, "x")
			_ = c.Close()
			px.Await(proxy.EventClosed)
			err = Within(waitTimeout, func() error {
				if cs := px.Conns(); len(cs) > 0 {
					return fmt.Errorf("%d still live", len(cs))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			err = CheckNothingOpen(px)
			if !errors.Is(err, ErrLeftOpen) {
				t.Fatalf("got %v, want ErrLeftOpen", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestCheckNothingOpenCatchesALeftOpenConnection(t *testing.T) {
	px := NewProxy(t, startEcho(t), WithPool(proxy.PoolConfig{}))
	c := dial(t, px.Addr())
	roundTrip(t, c, "left open")
	err := CheckNothingOpen(px)
	if !errors.Is(err, ErrLeftOpen) {
		t.Fatalf("CheckNothingOpen with a live connection: got %v, want ErrLeftOpen", err)
	}
	// One connection left open, with its upstream connection busy in the
	// pool: one found, not one per event or per line.
	for _, want := range []string{"connections left open: 1 found", "conn 1 was accepted and has not closed; live: conn=1 from " + c.LocalAddr().String(),
		"upstream=1", "#1 accepted conn=1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), "\n  - "); n != 1 {
		t.Errorf("error %q lists %d violations, want 1", err, n)
	}
	_ = c.Close()
	if err := Within(waitTimeout, func() error { return CheckNothingOpen(px) }); err != nil {
		t.Errorf("after the client closed: %v", err)
	}
	if err := px.Close(); err != nil {
		t.Fatal(err)
	}
	if cs, st := px.Conns(), px.Pool(); len(cs) != 0 || st.Busy != 0 {
		t.Errorf("after Close: Conns() = %v, Pool() = %+v, want nothing live", cs, st)
	}
}
