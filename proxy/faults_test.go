package proxy

import (
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// faultFixture is a dial-mode proxy with one live connection: the client
// end c and the upstream end u.
type faultFixture struct {
	p    *Proxy
	ev   *recorder
	c, u *net.TCPConn
	conn uint64
}

func newFaultFixture(t *testing.T, cfg Config) *faultFixture {
	t.Helper()
	up := startServer(t, nil)
	cfg.Upstream = up.addr()
	p := startProxy(t, cfg)
	ev := record(t, p)
	c := dial(t, p.Addr().String())
	u := up.next(t)
	roundTripVia(t, c, u, "hello")
	return &faultFixture{p: p, ev: ev, c: c, u: u, conn: ev.waitKind(t, EventAccepted, 0).Conn}
}

func (fx *faultFixture) add(t *testing.T, f faults.Fault) faults.Fault {
	t.Helper()
	nf, err := fx.p.AddFault(f)
	if err != nil {
		t.Fatalf("AddFault(%+v): %v", f, err)
	}
	return nf
}

func (fx *faultFixture) remove(t *testing.T, name string) {
	t.Helper()
	if err := fx.p.RemoveFault(name); err != nil {
		t.Fatalf("RemoveFault(%q): %v", name, err)
	}
}

// readWithin reads len(want) bytes from c within d and fails unless they
// are want.
func readWithin(t *testing.T, c net.Conn, want string, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

// expectNothing checks that nothing arrives on c for d: the read must end
// with c's own deadline.
func expectNothing(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var b [64]byte
	if n, err := c.Read(b[:]); !errors.Is(err, errDeadline) {
		t.Fatalf("read %q, %v; want nothing until the deadline", b[:n], err)
	}
}

func TestFaultToggleLatencyLosesNothing(t *testing.T) {
	const toggles = 1000
	const size = 128 << 20 // each way
	fx := newFaultFixture(t, Config{})

	toggled := make(chan struct{})
	go func() {
		defer close(toggled)
		for range toggles {
			if _, err := fx.p.AddFault(faults.Latency(time.Nanosecond, 0).WithName("lat")); err != nil {
				t.Errorf("AddFault: %v", err)
				return
			}
			if err := fx.p.RemoveFault("lat"); err != nil {
				t.Errorf("RemoveFault: %v", err)
				return
			}
		}
	}()
	// Each end sends half its stream, waits until the toggling is over,
	// sends the rest and half-closes, all while reading the other's.
	type result struct {
		sent, got        digest
		sendErr, recvErr error
	}
	run := func(c *net.TCPConn, seed [32]byte) <-chan result {
		out := make(chan result, 1)
		go func() {
			_ = c.SetDeadline(time.Now().Add(bulkTimeout))
			var r result
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				w := &halfGate{w: c, gateAt: size / 2, gate: toggled}
				r.sent, r.sendErr = sendStream(w, seed, size)
				_ = c.CloseWrite()
			}()
			r.got, r.recvErr = recvStream(c, -1)
			<-sent
			out <- r
		}()
		return out
	}
	cr, ur := run(fx.c, clientSeed), run(fx.u, upstreamSeed)
	client, upstream := <-cr, <-ur
	if client.sent != upstream.got || upstream.sent != client.got || client.sent.n != size || upstream.sent.n != size {
		t.Errorf("up: sent %v (%v), received %v (%v); down: sent %v (%v), received %v (%v); events:\n%s", client.sent, client.sendErr, upstream.got, upstream.recvErr, upstream.sent, upstream.sendErr, client.got, client.recvErr, tail(fx.ev, 12))
	}
	applied := 0
	for _, e := range fx.ev.of(EventFaultApplied) {
		if e.Conn == fx.conn {
			applied++
		}
	}
	if applied != 2*toggles {
		t.Errorf("fault-applied events on conn %d = %d, want %d (both directions, %d toggles)", fx.conn, applied, 2*toggles, toggles)
	}
}

// halfGate passes writes to w but, once gateAt bytes went through, blocks
// until gate is closed.
type halfGate struct {
	w      io.Writer
	n      int64
	gateAt int64
	gate   <-chan struct{}
}

func (h *halfGate) Write(b []byte) (int, error) {
	if h.n >= h.gateAt {
		<-h.gate
	}
	n, err := h.w.Write(b)
	h.n += int64(n)
	return n, err
}

func TestFaultRemovedReturnsToSplice(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	f := fx.add(t, faults.Latency(time.Millisecond, 0))
	roundTripVia(t, fx.c, fx.u, "through the fault")
	if ls := copyLoopStacks("copyUp"); ls.noFault != 0 {
		t.Fatalf("with a fault, %d of %d copyUp loops are on the no-fault path, want 0", ls.noFault, ls.total)
	}
	fx.remove(t, f.Name)
	roundTripVia(t, fx.c, fx.u, "spliced again")
	deadline := time.Now().Add(waitTimeout)
	for {
		// TestNoFaultPathSplices shows that path splices.
		up, down := copyLoopStacks("copyUp"), copyLoopStacks("copyDown")
		if up.total == 1 && down.total == 1 && up.noFault == 1 && down.noFault == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after removing the fault: copyUp %d/%d on the no-fault path, copyDown %d/%d; a loop that is not:\n%s%s",
				up.noFault, up.total, down.noFault, down.total, up.other, down.other)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFaultLatencyDelays(t *testing.T) {
	const delay = 200 * time.Millisecond
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Latency(delay, 0).WithDir(faults.Down))
	start := time.Now()
	roundTripVia(t, fx.c, fx.u, "slow")
	if took := time.Since(start); took < delay {
		t.Errorf("round trip took %s, want at least the %s latency", took, delay)
	}
}

func TestFaultStall(t *testing.T) {
	t.Run("held bytes are delivered", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		f := fx.add(t, faults.Stall(false).WithDir(faults.Down))
		if _, err := io.WriteString(fx.u, "held"); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, fx.c, 200*time.Millisecond) // a client's deadline catches the stall
		if _, err := io.WriteString(fx.c, "up still flows"); err != nil {
			t.Fatal(err)
		}
		readWithin(t, fx.u, "up still flows", waitTimeout)
		fx.remove(t, f.Name)
		readWithin(t, fx.c, "held", waitTimeout)
	})
	t.Run("drop", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		f := fx.add(t, faults.Stall(true).WithDir(faults.Down))
		if _, err := io.WriteString(fx.u, "dropped"); err != nil {
			t.Fatal(err)
		}
		waitQueued(t, fx.p, fx.conn)
		fx.remove(t, f.Name)
		if _, err := io.WriteString(fx.u, "kept"); err != nil {
			t.Fatal(err)
		}
		readWithin(t, fx.c, "kept", waitTimeout)
	})
	t.Run("for a duration", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		fx.add(t, faults.Stall(false).WithFor(100*time.Millisecond))
		if _, err := io.WriteString(fx.u, "late"); err != nil {
			t.Fatal(err)
		}
		readWithin(t, fx.c, "late", waitTimeout)
		fx.ev.waitKind(t, EventFaultCleared, fx.conn)
		if got := fx.p.Faults(); len(got) != 0 {
			t.Errorf("faults after For = %v, want none", got)
		}
	})
}

// waitQueued waits until the upstream socket of connection conn has
// unread bytes at the proxy.
func waitQueued(t *testing.T, p *Proxy, conn uint64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, s := range p.liveSessions() {
			if s.id == conn && sockInq(s.uc.c) > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bytes queued at the proxy in %s", waitTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFaultBlackhole(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	f := fx.add(t, faults.Blackhole().WithDir(faults.Up))
	if _, err := io.WriteString(fx.c, "into the void"); err != nil {
		t.Fatalf("client write into a blackhole: %v", err)
	}
	expectNothing(t, fx.u, 200*time.Millisecond)
	if _, err := io.WriteString(fx.u, "down still flows"); err != nil {
		t.Fatal(err)
	}
	readWithin(t, fx.c, "down still flows", waitTimeout)
	fx.ev.waitFor(t, "fault-fired blackhole", func(e Event) bool { return e.Kind == EventFaultFired && e.Fault == f.Name })
	fx.remove(t, f.Name)
	roundTripVia(t, fx.c, fx.u, "after")
}

func TestFaultReset(t *testing.T) {
	tests := []struct {
		name             string
		side             faults.Side
		clientSeesReset  bool
		upstreamSeesRset bool
	}{
		{"toward client", faults.ToClient, true, false},
		{"toward upstream", faults.ToUpstream, false, true},
		{"both", faults.ToBoth, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFaultFixture(t, Config{})
			fx.add(t, faults.Reset(tt.side))
			for _, end := range []struct {
				name  string
				c     net.Conn
				reset bool
			}{{"client", fx.c, tt.clientSeesReset}, {"upstream", fx.u, tt.upstreamSeesRset}} {
				err := readErr(t, end.c)
				if got := errors.Is(err, syscall.ECONNRESET); got != end.reset {
					t.Errorf("%s read error = %v; want ECONNRESET: %t", end.name, err, end.reset)
				}
			}
			fx.ev.waitKind(t, EventFaultFired, fx.conn)
			cl := fx.ev.waitKind(t, EventClosed, fx.conn)
			if cl.By != ByProxy || cl.How != RST {
				t.Errorf("closed = %s, want by=proxy how=RST", cl)
			}
		})
	}
}

func TestFaultHalfClose(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.HalfClose(faults.Down))
	if err := readErr(t, fx.c); err != nil {
		t.Fatalf("client read = %v, want EOF from the half-close", err)
	}
	// The other direction keeps flowing.
	if _, err := io.WriteString(fx.c, "still talking"); err != nil {
		t.Fatalf("client write after half-close: %v", err)
	}
	readWithin(t, fx.u, "still talking", waitTimeout)
	fired := fx.ev.waitKind(t, EventFaultFired, fx.conn)
	if fired.Dir != Down {
		t.Errorf("fired = %s, want dir=down", fired)
	}
}

func TestFaultTargets(t *testing.T) {
	up := startServer(t, nil)
	p := startProxy(t, Config{Upstream: up.addr()})
	c1 := dial(t, p.Addr().String())
	u1 := up.next(t)
	c2 := dial(t, p.Addr().String())
	u2 := up.next(t)
	roundTripVia(t, c1, u1, "one")
	roundTripVia(t, c2, u2, "two")

	// By ID: only connection 1.
	f, err := p.AddFault(faults.Blackhole().WithDir(faults.Up).WithTarget(faults.Target{Which: faults.ByID, IDs: []uint64{1}}))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c1, "dropped")
	expectNothing(t, u1, 100*time.Millisecond)
	roundTripVia(t, c2, u2, "untouched")
	_ = p.RemoveFault(f.Name)

	// New only: live connections are untouched, the next one is not.
	if _, err := p.AddFault(faults.Blackhole().WithDir(faults.Up).WithTarget(faults.Target{Which: faults.New})); err != nil {
		t.Fatal(err)
	}
	roundTripVia(t, c2, u2, "old connection")
	c3 := dial(t, p.Addr().String())
	u3 := up.next(t)
	_, _ = io.WriteString(c3, "new connection")
	expectNothing(t, u3, 100*time.Millisecond)
}

func TestFaultErrors(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Blackhole().WithName("bh"))
	if _, err := fx.p.AddFault(faults.Stall(false).WithName("bh")); !errors.Is(err, ErrFaultExists) {
		t.Errorf("AddFault with a taken name: %v, want ErrFaultExists", err)
	}
	if err := fx.p.RemoveFault("nope"); !errors.Is(err, ErrNoFault) {
		t.Errorf("RemoveFault(nope): %v, want ErrNoFault", err)
	}
	if _, err := fx.p.AddFault(faults.Fault{Kind: "melt"}); !errors.Is(err, faults.ErrUnknownKind) {
		t.Errorf("AddFault(melt): %v, want ErrUnknownKind", err)
	}
	if got := fx.p.Faults(); len(got) != 1 || got[0].Name != "bh" {
		t.Errorf("faults = %+v, want only bh (a refused fault changes nothing)", got)
	}
}

func TestFaultResetInPoolModeDiscards(t *testing.T) {
	p, _, ev := startPool(t, PoolConfig{})
	c := dial(t, p.Addr().String())
	roundTrip(t, c, "x")
	if _, err := p.AddFault(faults.Reset(faults.ToClient)); err != nil {
		t.Fatal(err)
	}
	if err := readErr(t, c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read = %v, want ECONNRESET", err)
	}
	d := ev.waitKind(t, EventDiscarded, 0)
	if d.Reason != ReasonFault {
		t.Errorf("discarded = %s, want reason fault", d)
	}
	if rel := ev.of(EventReleased); len(rel) != 0 {
		t.Errorf("released %v after a reset fault, want none", rel)
	}
}

// tail formats the last n events of ev.
func tail(ev *recorder, n int) string {
	all := ev.all()
	s := ""
	for _, e := range all[max(0, len(all)-n):] {
		s += "  " + e.String() + "\n"
	}
	return s
}

func TestFaultBandwidth(t *testing.T) {
	const rate = 1 << 20 // 1 MiB/s
	const size = 256 << 10
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Bandwidth(rate).WithDir(faults.Up))
	start := time.Now()
	sent := make(chan error, 1)
	go func() {
		_, err := fx.c.Write(make([]byte, size))
		sent <- err
	}()
	got, err := recvStream(io.LimitReader(fx.u, size), -1)
	if err != nil || got.n != size {
		t.Fatalf("upstream got %v, %v; want %d bytes", got, err, size)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// 256 KiB at 1 MiB/s takes 250ms; allow the first 50ms burst.
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("%d bytes at %d B/s took %s, want at least 150ms", size, rate, took)
	}
}

func TestFaultSlice(t *testing.T) {
	const delay = 20 * time.Millisecond
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Slice(4, delay).WithDir(faults.Down))
	start := time.Now()
	if _, err := io.WriteString(fx.u, "0123456789abcdef"); err != nil { // 4 pieces
		t.Fatal(err)
	}
	readWithin(t, fx.c, "0123456789abcdef", waitTimeout)
	if took := time.Since(start); took < 3*delay {
		t.Errorf("4 pieces took %s, want at least 3 delays of %s", took, delay)
	}
}

func TestFaultLimit(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Limit(10).WithDir(faults.Up))
	if _, err := io.WriteString(fx.c, "0123456789 and more"); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, fx.u)
	if err != nil || string(got) != "0123456789" {
		t.Fatalf("upstream read %q, %v; want the first 10 bytes, then EOF", got, err)
	}
	if err := readErr(t, fx.c); err != nil {
		t.Errorf("client read = %v, want EOF (a FIN)", err)
	}
	cl := fx.ev.waitKind(t, EventClosed, fx.conn)
	if cl.By != ByProxy || cl.How != FIN {
		t.Errorf("closed = %s, want by=proxy how=FIN", cl)
	}
}

func TestFaultSlowClose(t *testing.T) {
	const delay = 200 * time.Millisecond
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.SlowClose(delay).WithDir(faults.Up))
	start := time.Now()
	_ = fx.c.CloseWrite()
	if err := readErr(t, fx.u); err != nil {
		t.Fatalf("upstream read = %v, want EOF", err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("FIN relayed after %s, want at least %s", took, delay)
	}
	// The other direction still works.
	if _, err := io.WriteString(fx.u, "after"); err != nil {
		t.Fatal(err)
	}
	readWithin(t, fx.c, "after", waitTimeout)
}

func TestFaultCorruptIsSeeded(t *testing.T) {
	run := func() []byte {
		fx := newFaultFixture(t, Config{})
		fx.add(t, faults.Corrupt(0.5).WithDir(faults.Up).WithSeed(42))
		msg := make([]byte, 1000)
		if _, err := fx.c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		_ = fx.u.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.ReadFull(fx.u, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	a, b := run(), run()
	changed := 0
	for _, x := range a {
		if x != 0 {
			changed++
		}
	}
	if changed < 300 || changed > 700 {
		t.Errorf("%d of 1000 bytes corrupted at p=0.5, want about 500", changed)
	}
	if string(a) != string(b) {
		t.Errorf("two runs with seed 42 corrupted differently")
	}
}

func TestFaultAtConnect(t *testing.T) {
	t.Run("drop on accept", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		fx.add(t, faults.DropOnAccept())
		roundTripVia(t, fx.c, fx.u, "live connection untouched")
		c, err := net.Dial("tcp", fx.p.Addr().String())
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
			err = readErr(t, c)
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("new connection: %v, want ECONNRESET", err)
		}
	})
	t.Run("connect delay", func(t *testing.T) {
		const delay = 200 * time.Millisecond
		up := startServer(t, echoHandler)
		p := startProxy(t, Config{Upstream: up.addr()})
		if _, err := p.AddFault(faults.ConnectDelay(delay)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		roundTrip(t, dial(t, p.Addr().String()), "slow start")
		if took := time.Since(start); took < delay {
			t.Errorf("first echo after %s, want at least %s", took, delay)
		}
	})
}

// pickedConns opens n connections to p, one at a time, and returns the IDs
// that the fault named name was applied to.
func pickedConns(t *testing.T, p *Proxy, up *server, ev *recorder, name string, n int) []uint64 {
	t.Helper()
	for range n {
		c := dial(t, p.Addr().String())
		u := up.next(t)
		// Down is never faulted here; a byte through it shows the session
		// is set up.
		if _, err := io.WriteString(u, "x"); err != nil {
			t.Fatal(err)
		}
		readWithin(t, c, "x", waitTimeout)
	}
	var ids []uint64
	for _, e := range ev.all() {
		if e.Kind == EventFaultApplied && e.Fault == name {
			ids = append(ids, e.Conn)
		}
	}
	return ids
}

func TestFaultPicks(t *testing.T) {
	start := func(t *testing.T, seed uint64) (*Proxy, *server, *recorder) {
		up := startServer(t, nil)
		p := startProxy(t, Config{Upstream: up.addr(), Seed: seed})
		return p, up, record(t, p)
	}
	up := faults.Blackhole().WithDir(faults.Up)
	t.Run("every 2nd", func(t *testing.T) {
		p, srv, ev := start(t, 1)
		if _, err := p.AddFault(up.WithName("bh").WithTarget(faults.Target{Which: faults.New, Every: 2})); err != nil {
			t.Fatal(err)
		}
		if got := pickedConns(t, p, srv, ev, "bh", 6); !slices.Equal(got, []uint64{2, 4, 6}) {
			t.Errorf("picked %v, want [2 4 6]", got)
		}
	})
	t.Run("count", func(t *testing.T) {
		p, srv, ev := start(t, 1)
		if _, err := p.AddFault(up.WithName("bh").WithTarget(faults.Target{Count: 2})); err != nil {
			t.Fatal(err)
		}
		if got := pickedConns(t, p, srv, ev, "bh", 4); !slices.Equal(got, []uint64{1, 2}) {
			t.Errorf("picked %v, want [1 2]", got)
		}
	})
	t.Run("probability replays with the seed", func(t *testing.T) {
		picks := func(seed uint64) []uint64 {
			p, srv, ev := start(t, seed)
			if _, err := p.AddFault(up.WithName("bh").WithTarget(faults.Target{Prob: 0.5})); err != nil {
				t.Fatal(err)
			}
			return pickedConns(t, p, srv, ev, "bh", 16)
		}
		a, b, other := picks(7), picks(7), picks(8)
		if !slices.Equal(a, b) {
			t.Errorf("seed 7 picked %v, then %v; want the same", a, b)
		}
		if len(a) == 0 || len(a) == 16 {
			t.Errorf("p=0.5 picked %d of 16", len(a))
		}
		if slices.Equal(a, other) {
			t.Logf("seeds 7 and 8 picked the same %v (possible, unlikely)", a)
		}
	})
}

func TestFaultAfter(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	f := fx.add(t, faults.Blackhole().WithDir(faults.Up).WithAfter(100*time.Millisecond))
	roundTripVia(t, fx.c, fx.u, "before it acts")
	fx.ev.waitFor(t, "fault-applied", func(e Event) bool { return e.Kind == EventFaultApplied && e.Fault == f.Name })
	_, _ = io.WriteString(fx.c, "dropped")
	expectNothing(t, fx.u, 100*time.Millisecond)
}

func TestFaultRefuse(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	f := fx.add(t, faults.Refuse())
	if c, err := net.Dial("tcp", fx.p.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Fatalf("dial while refusing: %v, want ECONNREFUSED", err)
	}
	roundTripVia(t, fx.c, fx.u, "live connection goes on")
	fx.remove(t, f.Name)
	dial(t, fx.p.Addr().String()) // the same address again
	fx.ev.waitKind(t, EventAccepted, fx.conn+1)
}

func TestFaultIdleClose(t *testing.T) {
	t.Run("FIN, dial mode", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		fx.add(t, faults.IdleClose(100*time.Millisecond, false))
		if err := readErr(t, fx.c); err != nil {
			t.Fatalf("idle client read = %v, want EOF", err)
		}
		if err := readErr(t, fx.u); err != nil {
			t.Errorf("upstream read = %v, want EOF", err)
		}
		cl := fx.ev.waitKind(t, EventClosed, fx.conn)
		if cl.By != ByProxy || cl.How != FIN {
			t.Errorf("closed = %s, want by=proxy how=FIN", cl)
		}
	})
	t.Run("RST", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		fx.add(t, faults.IdleClose(100*time.Millisecond, true))
		if err := readErr(t, fx.c); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("idle client read = %v, want ECONNRESET", err)
		}
	})
	t.Run("pool keeps the upstream connection", func(t *testing.T) {
		p, _, ev := startPool(t, PoolConfig{})
		c := dial(t, p.Addr().String())
		roundTrip(t, c, "x")
		if _, err := p.AddFault(faults.IdleClose(100*time.Millisecond, false)); err != nil {
			t.Fatal(err)
		}
		if err := readErr(t, c); err != nil {
			t.Fatalf("idle client read = %v, want EOF", err)
		}
		ev.waitKind(t, EventReleased, 0)
	})
	t.Run("busy connection stays", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		fx.add(t, faults.IdleClose(300*time.Millisecond, false))
		for range 30 {
			roundTripVia(t, fx.c, fx.u, "busy")
			time.Sleep(20 * time.Millisecond)
		}
		if fired := fx.ev.of(EventFaultFired); len(fired) != 0 {
			t.Errorf("busy connection closed: %v", fired)
		}
	})
}

func TestFaultHalfCloseInPoolModeDiscards(t *testing.T) {
	p, _, ev := startPool(t, PoolConfig{})
	c := dial(t, p.Addr().String())
	roundTrip(t, c, "x")
	if _, err := p.AddFault(faults.HalfClose(faults.Up)); err != nil {
		t.Fatal(err)
	}
	ev.waitKind(t, EventFaultFired, 0)
	_ = c.Close()
	d := ev.waitKind(t, EventDiscarded, 0)
	if d.Reason != ReasonHalfClosed {
		t.Errorf("discarded = %s, want reason half-closed", d)
	}
}

func TestFaultAfterBytes(t *testing.T) {
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Blackhole().WithDir(faults.Up).WithAfterBytes(10))
	if _, err := io.WriteString(fx.c, "0123456789 and the rest"); err != nil {
		t.Fatal(err)
	}
	readWithin(t, fx.u, "0123456789", waitTimeout)
	expectNothing(t, fx.u, 100*time.Millisecond)
	if _, err := io.WriteString(fx.u, "down flows"); err != nil {
		t.Fatal(err)
	}
	readWithin(t, fx.c, "down flows", waitTimeout)
	fx.ev.waitKind(t, EventFaultFired, fx.conn)
}

func TestFaultRemoveAfterClose(t *testing.T) {
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr()})
	f, err := p.AddFault(faults.IdleClose(time.Hour, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveFault(f.Name); err != nil {
		t.Errorf("RemoveFault after Close: %v", err)
	}
	if _, err := p.AddFault(faults.Blackhole()); !errors.Is(err, ErrProxyClosed) {
		t.Errorf("AddFault after Close: %v, want ErrProxyClosed", err)
	}
}

func TestFaultStale(t *testing.T) {
	t.Run("dial mode refuses it", func(t *testing.T) {
		fx := newFaultFixture(t, Config{})
		if _, err := fx.p.AddFault(faults.Stale(faults.StaleEOF)); !errors.Is(err, ErrNotPool) {
			t.Errorf("AddFault(stale) in dial mode: %v, want ErrNotPool", err)
		}
	})
	tests := []struct {
		mode      faults.StaleMode
		idleCatch bool // the probe catches the idle ones (as stale)
		client    func(t *testing.T, c *net.TCPConn)
	}{
		{faults.StaleEOF, true, func(t *testing.T, c *net.TCPConn) {
			if err := readErr(t, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client on a stale connection read %v, want EOF or ECONNRESET", err)
			}
		}},
		{faults.StaleReset, true, func(t *testing.T, c *net.TCPConn) {
			if err := readErr(t, c); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client on a stale connection read %v, want ECONNRESET", err)
			}
		}},
		{faults.StaleBlackhole, false, func(t *testing.T, c *net.TCPConn) {
			expectNothing(t, c, 200*time.Millisecond) // only a deadline catches a blackhole
			_ = c.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			p, _, ev := startPool(t, PoolConfig{})
			// Two idle connections in the pool.
			a, b := dial(t, p.Addr().String()), dial(t, p.Addr().String())
			roundTrip(t, a, "a")
			roundTrip(t, b, "b")
			_ = a.Close()
			_ = b.Close()
			for p.PoolStats().Idle != 2 {
				time.Sleep(time.Millisecond)
			}
			mark := len(ev.all())
			if _, err := p.AddFault(faults.Stale(tt.mode).WithTarget(faults.Target{Count: 1})); err != nil {
				t.Fatal(err)
			}
			// The next session is handed a connection that goes stale
			// after the probe.
			c := dial(t, p.Addr().String())
			if _, err := io.WriteString(c, "request"); err != nil {
				t.Fatal(err)
			}
			tt.client(t, c)
			d := ev.waitFor(t, "discarded stale", func(e Event) bool { return e.Kind == EventDiscarded && e.Reason == ReasonStale })
			if tt.mode == faults.StaleBlackhole {
				// No probe can catch a blackhole: the other idle one is
				// handed out too, and found out only by its client.
				c2 := dial(t, p.Addr().String())
				_, _ = io.WriteString(c2, "request")
				expectNothing(t, c2, 200*time.Millisecond)
				_ = c2.Close()
				for p.PoolStats().Discarded[ReasonStale] != 2 {
					time.Sleep(time.Millisecond)
				}
			}
			// Then a good connection.
			fine, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				t.Fatalf("dial: %v; events:\n%s", err, ev)
			}
			t.Cleanup(func() { _ = fine.Close() })
			roundTrip(t, fine, "fine")
			// Every connection the fault made stale is discarded as
			// stale: the 2 idle ones, which the probe caught (its EOF
			// or RST was the fault's), and the session's; none as the
			// upstream's EOF or RST.
			st := p.PoolStats()
			if tt.idleCatch && (st.Discarded[ReasonStale] != 3 || st.Discarded[ReasonUpstreamEOF] != 0 || st.Discarded[ReasonUpstreamReset] != 0) {
				t.Errorf("discarded %v; want 3 stale: the 2 idle ones caught by the probe, and the session's", st.Discarded)
			}
			for _, e := range ev.all()[mark:] {
				if e.Kind == EventReleased && e.Upstream == d.Upstream {
					t.Errorf("stale upstream %d released: %s", d.Upstream, e)
				}
			}
		})
	}
}

// TestFaultInForceOnReturnAt1000Conns: on each of 1000 live connections,
// the first byte sent after AddFault returns is already held by the stall,
// and all of them are delivered once it is removed.
func TestFaultInForceOnReturnAt1000Conns(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 connections")
	}
	const conns = 1000
	p, cs := liveConns(t, conns)
	for round := range 3 {
		f, err := p.AddFault(faults.Stall(false).WithDir(faults.Up))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if _, err := c.Write([]byte{'a' + byte(round)}); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(200 * time.Millisecond)
		for i, c := range cs {
			_ = c.SetReadDeadline(deadline)
			if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
				t.Fatalf("round %d, conn %d: a byte sent after AddFault returned came back (%d bytes, %v)", round, i, n, err)
			}
		}
		if err := p.RemoveFault(f.Name); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		for i, c := range cs {
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'a'+byte(round) {
				t.Fatalf("round %d, conn %d: after the stall got %q, %v", round, i, buf, err)
			}
		}
	}
}

// TestQuietFaultInForceOnReturnAt1000Conns does the same for latency, which
// a loop waiting on the no-fault path takes without being woken (see
// session.spliceRelay): on each of 1000 live connections, the first byte
// sent after AddFault returns is held, and the first byte sent after
// RemoveFault returns is not.
func TestQuietFaultInForceOnReturnAt1000Conns(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 connections")
	}
	const (
		conns = 1000
		delay = time.Second
	)
	p, cs := liveConns(t, conns)
	// echoAll sends b on every connection, reads it back from each, and
	// calls back(i) as conn i's comes back.
	echoAll := func(b byte, back func(i int)) {
		for _, c := range cs {
			if _, err := c.Write([]byte{b}); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 1)
		for i, c := range cs {
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := io.ReadFull(c, buf); err != nil || buf[0] != b {
				t.Fatalf("conn %d: sent %q, got %q, %v", i, b, buf, err)
			}
			back(i)
		}
	}
	for round := range 2 {
		f, err := p.AddFault(faults.Latency(delay, 0).WithDir(faults.Up))
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		echoAll('a'+byte(round), func(i int) {
			if took := time.Since(sent); took < delay {
				t.Fatalf("round %d, conn %d: a byte sent after AddFault returned came back after %s, before the %s latency", round, i, took, delay)
			}
		})
		if err := p.RemoveFault(f.Name); err != nil {
			t.Fatal(err)
		}
		sent = time.Now()
		echoAll('A'+byte(round), func(int) {})
		// Generous: the latency would have added a whole second.
		if took := time.Since(sent); took >= delay/2 {
			t.Fatalf("round %d: bytes sent after RemoveFault returned took %s to come back, as if still delayed", round, took)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestFaultLatencyHoldsEachByte: bytes that arrive while earlier ones are
// held are not taken early: each reaches the client at least the delay
// after it reached the proxy (the splice path leaves them in the kernel).
func TestFaultLatencyHoldsEachByte(t *testing.T) {
	const delay = 300 * time.Millisecond
	fx := newFaultFixture(t, Config{})
	fx.add(t, faults.Latency(delay, 0).WithDir(faults.Down))
	sent := make(map[byte]time.Time)
	for _, b := range []byte("ab") {
		sent[b] = time.Now()
		if _, err := fx.u.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * 2 / 3)
	}
	_ = fx.c.SetReadDeadline(time.Now().Add(waitTimeout))
	buf := make([]byte, 1)
	for _, want := range []byte("ab") {
		if _, err := io.ReadFull(fx.c, buf); err != nil || buf[0] != want {
			t.Fatalf("read %q, %v; want %q", buf, err, want)
		}
		if held := time.Since(sent[want]); held < delay {
			t.Errorf("%q arrived %s after it was sent, under a %s latency", want, held, delay)
		}
	}
}

// TestFaultedConnMemory: an idle connection with a fault in force on both
// directions costs the proxy (Go heap and stacks) well under 32 KiB: its
// loops hold no buffer while idle. The test's own client and echo server
// ends are measured first, direct, and taken off.
func TestFaultedConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("2000 connections")
	}
	const conns = 1000
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr()})
	if _, err := p.AddFault(faults.Latency(time.Millisecond, 0)); err != nil {
		t.Fatal(err)
	}
	mem := func() float64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapInuse + ms.StackInuse)
	}
	perConn := func(addr string) float64 {
		before := mem()
		for range conns {
			roundTrip(t, dial(t, addr), "x")
		}
		return (mem() - before) / conns / 1024
	}
	direct := perConn(up.addr())
	through := perConn(p.Addr().String())
	per := through - direct
	t.Logf("%.1f KiB per idle connection with a latency fault on both directions (%.1f through the proxy, %.1f direct)", per, through, direct)
	if per > 32 {
		t.Errorf("%.1f KiB per faulted idle connection, want at most 32", per)
	}
}
