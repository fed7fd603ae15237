package proxy

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// addUnchecked puts f in force as AddFault does but without
// faults.Normalized, as a fault that slipped past validation would be. f
// must have its defaults filled in (Dir, Side, Target.Which).
func addUnchecked(t *testing.T, p *Proxy, f faults.Fault) {
	t.Helper()
	fs := &p.faults
	fs.mu.Lock()
	fs.seq++
	if f.Name == "" {
		f.Name = fmt.Sprintf("unchecked-%d", fs.seq)
	}
	af := &activeFault{f: f, seq: fs.seq, rng: rand.New(rand.NewPCG(1, 1)), pickRng: rand.New(rand.NewPCG(1, 2))}
	fs.list = append(fs.list, af)
	fs.index(af)
	pending := p.actLocked(af)
	fs.mu.Unlock()
	pending.wait()
}

// unchecked returns f with the defaults Normalized would fill in.
func unchecked(f faults.Fault) faults.Fault {
	f.Dir, f.Side, f.Target.Which = faults.Both, faults.ToBoth, faults.All
	return f
}

// relayed writes msg on from and fails unless to reads it within
// waitTimeout.
func relayed(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(from, msg); err != nil {
		t.Fatal(err)
	}
	readWithin(t, to, msg, waitTimeout)
}

// TestFaultOutOfBoundsRefused is issue 14's crash: a latency fault with a
// jitter of math.MaxInt64 was accepted, and the first byte through it
// panicked the jitter draw (rand's Int64N(MaxInt64+1)), taking down the
// process. It is refused now, and traffic flows.
func TestFaultOutOfBoundsRefused(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	crash := faults.Latency(time.Millisecond, math.MaxInt64) // {"kind":"latency","delay":"1ms","jitter":"2562047h47m16.854775807s"}
	if _, err := fx.p.AddFault(crash); !errors.Is(err, faults.ErrBadFault) {
		t.Errorf("AddFault(%+v) = %v, want ErrBadFault", crash, err)
	}
	relayed(t, fx.c, fx.u, "the first byte")
	relayed(t, fx.u, fx.c, "and back")
	for _, f := range []faults.Fault{
		faults.Latency(math.MaxInt64, 0),
		faults.Limit(math.MaxInt64),
		faults.Bandwidth(math.MaxInt64),
		faults.Blackhole().WithAfterBytes(math.MaxInt64),
		faults.Blackhole().WithFor(math.MaxInt64),
	} {
		if _, err := fx.p.AddFault(f); !errors.Is(err, faults.ErrBadFault) {
			t.Errorf("AddFault(%+v) = %v, want ErrBadFault", f, err)
		}
	}
	if got := fx.p.Faults(); len(got) != 0 {
		t.Errorf("Faults() = %+v, want none", got)
	}
}

// TestFaultArithmeticSaturates puts faults past every bound in force
// without validation: none may panic or wrap. Before the arithmetic
// saturated, the jitter draw panicked, a limit or after_bytes of
// MaxInt64 wrapped to a count already reached (the limit closed the
// connection, the blackhole swallowed the bytes), and two connect-delays
// summed to a negative wait (none).
func TestFaultArithmeticSaturates(t *testing.T) {
	t.Run("jitter and delay", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		for range 2 { // two: their delays add up past MaxInt64
			addUnchecked(t, fx.p, unchecked(faults.Fault{Kind: faults.KindLatency, Delay: math.MaxInt64, Jitter: math.MaxInt64}).WithDir(faults.Up))
		}
		if _, err := io.WriteString(fx.c, "held"); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, fx.u, 200*time.Millisecond) // held, and the proxy still runs
		if _, err := io.WriteString(fx.u, "down flows"); err != nil {
			t.Fatal(err)
		}
		readWithin(t, fx.c, "down flows", waitTimeout)
	})
	t.Run("limit", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		addUnchecked(t, fx.p, unchecked(faults.Fault{Kind: faults.KindLimit, Bytes: math.MaxInt64}))
		relayed(t, fx.c, fx.u, "not limited")
		relayed(t, fx.u, fx.c, "either way")
		// A wrapped end would count as the first limit used up and hide
		// this one.
		fx.add(t, faults.Limit(4).WithDir(faults.Up))
		relayed(t, fx.c, fx.u, "four")
		_ = fx.c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := fx.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("client read after the 4-byte limit: %v, want EOF", err)
		}
	})
	t.Run("after bytes", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		addUnchecked(t, fx.p, unchecked(faults.Fault{Kind: faults.KindBlackhole, AfterBytes: math.MaxInt64}))
		relayed(t, fx.c, fx.u, "not yet")
		relayed(t, fx.u, fx.c, "either way")
	})
	t.Run("connect delay", func(t *testing.T) {
		up := startServer(t, echoHandler)
		p := startProxy(t, Config{Upstream: up.addr()})
		for range 2 {
			addUnchecked(t, p, unchecked(faults.Fault{Kind: faults.KindConnectDelay, Delay: math.MaxInt64/2 + 1}))
		}
		c := dial(t, p.Addr().String())
		if _, err := io.WriteString(c, "wait"); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, c, 200*time.Millisecond)
	})
	t.Run("bandwidth", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		addUnchecked(t, fx.p, unchecked(faults.Fault{Kind: faults.KindBandwidth, Rate: math.MaxInt64}))
		roundTripVia(t, fx.c, fx.u, strings.Repeat("x", 100<<10))
	})
}

// TestBandwidthBanksNoCredit: a bandwidth-limited direction that was idle
// must not send a reply at once on the credit of the pause. Before the
// burst was capped, a reply of one second's worth after 1.5 s idle
// arrived in milliseconds.
func TestBandwidthBanksNoCredit(t *testing.T) {
	const rate = 256 << 10
	const size = rate // one second's worth
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Bandwidth(rate).WithDir(faults.Down))
	roundTripVia(t, fx.u, fx.c, "warm up the pacing")
	time.Sleep(1500 * time.Millisecond)

	reply := strings.Repeat("r", size)
	start := time.Now()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = io.WriteString(fx.u, reply)
	}()
	readWithin(t, fx.c, reply, waitTimeout)
	took := time.Since(start)
	<-wrote
	if want := time.Duration(0.4 * float64(size) / float64(rate) * float64(time.Second)); took < want {
		t.Errorf("a %d-byte reply at %d B/s after an idle pause took %v, want at least %v", size, rate, took, want)
	}
}

// TestStaleDefaultLeavesSessionsAlone: a stale fault with its default
// target makes the idle pool stale and nothing else; new sessions work
// while it is in force. With a target, the sessions it picks meet a stale
// connection (TestFaultStale).
func TestStaleDefaultLeavesSessionsAlone(t *testing.T) {
	p, _, ev := startPool(t, PoolConfig{})
	useOnce(t, p, ev, "idle")
	for p.PoolStats().Idle != 1 {
		time.Sleep(time.Millisecond)
	}
	f, err := p.AddFault(faults.Stale(faults.StaleEOF))
	if err != nil {
		t.Fatal(err)
	}
	if f.Target.Which != faults.IdlePool {
		t.Errorf("stale's target = %q, want %q", f.Target.Which, faults.IdlePool)
	}
	for i := range 3 {
		c := dial(t, p.Addr().String())
		roundTrip(t, c, fmt.Sprintf("session %d", i))
		_ = c.Close()
	}
	// Only the idle one is stale, caught by the probe before a session
	// got it: no session was opted in.
	if got := p.PoolStats().Discarded[ReasonStale]; got != 1 {
		t.Errorf("discarded stale = %d, want 1: the idle one, caught by the probe", got)
	}
	for _, e := range ev.of(EventDiscarded) {
		if e.Upstream != 1 || e.Reason != ReasonStale || !errors.Is(e.Err, io.EOF) {
			t.Errorf("discarded %v; want only upstream 1, the idle one, stale (the probe saw EOF)", e)
		}
	}
	for _, e := range ev.of(EventFaultFired) {
		if e.Conn != 0 {
			t.Errorf("stale fired on session %d: %v", e.Conn, e)
		}
	}
}

// TestMaxFaults: a proxy takes MaxFaults faults, then refuses with
// ErrTooManyFaults until one is removed.
func TestMaxFaults(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	for i := range MaxFaults {
		fx.add(t, faults.Latency(time.Millisecond, 0).WithTarget(faults.Target{Which: faults.ByID, IDs: []uint64{1<<40 + uint64(i)}}))
	}
	if _, err := fx.p.AddFault(faults.Blackhole()); !errors.Is(err, ErrTooManyFaults) {
		t.Fatalf("AddFault past %d: %v, want ErrTooManyFaults", MaxFaults, err)
	}
	fx.remove(t, fx.p.Faults()[0].Name)
	fx.add(t, faults.Latency(time.Millisecond, 0).WithName("room-again"))
	roundTripVia(t, fx.c, fx.u, "fine")
}

// TestFaultCandidates checks the index new sessions pick faults from: a
// fault for an ID reaches that connection only, once it is accepted; an
// update that changes the target moves the fault in the index; a removed
// fault reaches no one; an existing-only fault reaches no new session.
func TestFaultCandidates(t *testing.T) {
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr()})
	faultsOf := func(id uint64) []string {
		for _, ci := range p.Conns() {
			if ci.ID == id {
				return ci.Faults
			}
		}
		t.Fatalf("no connection %d in %+v", id, p.Conns())
		return nil
	}
	open := func() uint64 {
		c := dial(t, p.Addr().String())
		roundTrip(t, c, "x")
		return p.Conns()[len(p.Conns())-1].ID
	}
	mustAdd := func(f faults.Fault) {
		t.Helper()
		if _, err := p.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
	slow := faults.Latency(time.Millisecond, 0)
	mustAdd(slow.WithName("for-3").WithTarget(faults.Target{Which: faults.ByID, IDs: []uint64{3}}))
	mustAdd(slow.WithName("old-ones").WithTarget(faults.Target{Which: faults.Existing}))
	mustAdd(slow.WithName("new-ones").WithTarget(faults.Target{Which: faults.New}))
	for _, tt := range []struct {
		id   uint64
		want []string
	}{{1, []string{"new-ones"}}, {2, []string{"new-ones"}}, {3, []string{"for-3", "new-ones"}}} {
		if id := open(); id != tt.id {
			t.Fatalf("connection ID %d, want %d", id, tt.id)
		}
		if got := faultsOf(tt.id); !slices.Equal(got, tt.want) {
			t.Errorf("connection %d has faults %v, want %v", tt.id, got, tt.want)
		}
	}
	if _, err := p.UpdateFault(slow.WithName("for-3").WithTarget(faults.Target{Which: faults.ByID, IDs: []uint64{5}})); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveFault("new-ones"); err != nil {
		t.Fatal(err)
	}
	mustAdd(slow.WithName("all").WithDir(faults.Up))
	for _, tt := range []struct {
		id   uint64
		want []string
	}{{4, []string{"all"}}, {5, []string{"for-3", "all"}}} {
		if id := open(); id != tt.id {
			t.Fatalf("connection ID %d, want %d", id, tt.id)
		}
		if got := faultsOf(tt.id); !slices.Equal(got, tt.want) {
			t.Errorf("connection %d has faults %v, want %v", tt.id, got, tt.want)
		}
	}
	if got := faultsOf(3); !slices.Equal(got, []string{"all"}) {
		t.Errorf("connection 3 after the update has faults %v, want [all]", got)
	}
	if got := faultsOf(1); !slices.Equal(got, []string{"all"}) {
		t.Errorf("connection 1 has faults %v, want [all]", got)
	}
}
