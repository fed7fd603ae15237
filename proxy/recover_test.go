package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/faultline-proxy/faultline/faults"
)

// syncBuffer is a bytes.Buffer for a logger that sessions write from many
// goroutines.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// panicAt is where TestPanicRecovered makes the victim's session panic.
type panicAt int

const (
	panicRun      panicAt = iota + 1 // in run, before the upstream connection
	panicRelay                       // in run, with the upstream connection, before the copy loops
	panicLoopUp                      // in the up copy loop, mid-stream
	panicLoopDown                    // in the down copy loop, mid-stream
)

func TestPanicRecovered(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		warm bool // pool mode: the victim borrows a connection an earlier session released
		at   panicAt
	}{
		{"dial/run", ModeDial, false, panicRun},
		{"dial/relay", ModeDial, false, panicRelay},
		{"dial/loop-up", ModeDial, false, panicLoopUp},
		{"dial/loop-down", ModeDial, false, panicLoopDown},
		{"pool/run", ModePool, false, panicRun},
		{"pool/relay", ModePool, false, panicRelay},
		{"pool/loop-up", ModePool, false, panicLoopUp},
		{"pool/loop-down", ModePool, false, panicLoopDown},
		{"pool-reused/relay", ModePool, true, panicRelay},
		{"pool-reused/loop-up", ModePool, true, panicLoopUp},
		{"pool-reused/loop-down", ModePool, true, panicLoopDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaks := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // runs last
			var logs syncBuffer
			up := startServer(t, echoHandler)
			p := startProxy(t, Config{Upstream: up.addr(), Mode: tt.mode, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

			var victim atomic.Uint64 // the conn ID to make panic; 0: none yet
			var fired atomic.Bool
			fire := func(s *session, ok bool) {
				if ok && s.id == victim.Load() && fired.CompareAndSwap(false, true) {
					panic("boom at " + tt.name)
				}
			}
			p.testHookPanic = func(at hookPoint, s *session, l *loop) {
				switch tt.at {
				case panicRun:
					fire(s, at == hookRun)
				case panicLoopUp:
					fire(s, at == hookLoop && l.dir == Up && l.n.Load() > 0)
				case panicLoopDown:
					fire(s, at == hookLoop && l.dir == Down && l.n.Load() > 0)
				}
			}
			if tt.at == panicRelay {
				p.testHookRelay = func(uc *upConn) {
					if victim.Load() != 0 && fired.CompareAndSwap(false, true) {
						panic(errors.New("boom with an upstream connection"))
					}
				}
			}

			rec := record(t, p) // after the hooks: a session's first event orders them before it

			// The bystander lives through the victim's panic.
			by := dial(t, p.Addr().String())
			roundTrip(t, by, "before")
			byID := rec.waitKind(t, EventAccepted, 0).Conn
			if tt.warm {
				w := dial(t, p.Addr().String())
				roundTrip(t, w, "warm")
				_ = w.Close()
				rec.waitKind(t, EventReleased, 0)
			}

			victimID := p.connIDs.Load() + 1
			victim.Store(victimID)
			v, err := net.DialTimeout("tcp", p.Addr().String(), waitTimeout)
			if err != nil {
				// The RST of a panic before the copy loops start may
				// beat connect's return, as drop-on-accept's does.
				if (tt.at != panicRun && tt.at != panicRelay) || !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("dial: %v", err)
				}
			} else {
				t.Cleanup(func() { _ = v.Close() })
			}
			if tt.at == panicLoopUp || tt.at == panicLoopDown {
				roundTrip(t, v, "first")
				// A fault on the victim alone makes its loops go round,
				// where the hook waits for them.
				if _, err := p.AddFault(faults.Latency(time.Millisecond, 0).WithTarget(faults.Target{Which: faults.ByID, IDs: []uint64{victimID}})); err != nil {
					t.Fatalf("AddFault: %v", err)
				}
				_, _ = v.Write([]byte("second"))
			}

			// The victim's client sees its connection end: an RST, or EOF.
			if v == nil {
			} else if err := readErr(t, v); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("victim's read: got %v, want ECONNRESET or EOF", err)
			}
			closed := rec.waitKind(t, EventClosed, victimID)
			if closed.By != ByProxy || closed.How != RST || !errors.Is(closed.Err, ErrPanic) {
				t.Errorf("victim's closed event: got %s, want by=proxy how=RST err wrapping ErrPanic", closed)
			}
			if !fired.Load() {
				t.Fatalf("the hook never panicked; events:\n%s", rec)
			}
			if tt.mode == ModePool && tt.at != panicRun {
				d := rec.waitKind(t, EventDiscarded, victimID)
				if d.Reason != ReasonPanic || !errors.Is(d.Err, ErrPanic) {
					t.Errorf("victim's discarded event: got %s, want reason=panic", d)
				}
			}
			if got := logs.String(); !strings.Contains(got, "recovered from a panic") || !strings.Contains(got, "boom") {
				t.Errorf("log: got %q, want the recovered panic", got)
			}

			// Others go on: the bystander, and new connections.
			roundTrip(t, by, "after")
			n := dial(t, p.Addr().String())
			roundTrip(t, n, "new")
			_ = n.Close()
			_ = by.Close()
			rec.waitKind(t, EventClosed, byID)
			waitUntil(t, "no busy pooled connection and no live session", func() bool {
				return p.PoolStats().Busy == 0 && p.ActiveConns() == 0
			})
			_ = closeWithin(t, p, waitTimeout)
			if st := p.PoolStats(); st.Busy != 0 {
				t.Errorf("after Close: %d busy pooled connections, want 0", st.Busy)
			}
		})
	}
}

// TestPanicStopsOtherLoop: the copy loop that did not panic is stopped
// too, even one holding bytes under a latency of minutes.
func TestPanicStopsOtherLoop(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			up := startServer(t, echoHandler)
			p := startProxy(t, Config{Upstream: up.addr(), Mode: mode})
			var armed atomic.Bool
			p.testHookPanic = func(at hookPoint, s *session, l *loop) {
				if at == hookLoop && l.dir == Up && armed.Load() {
					panic("boom")
				}
			}
			rec := record(t, p)
			v := dial(t, p.Addr().String())
			roundTrip(t, v, "first")
			id := rec.waitKind(t, EventAccepted, 0).Conn
			mustAdd(t, p, faults.Latency(10*time.Minute, 0).WithDir(faults.Down))
			_, _ = v.Write([]byte("held")) // its echo is held for 10 minutes
			waitUntil(t, "the echo held", func() bool {
				up, _ := p.Bytes()
				return up >= int64(len("firstheld"))
			})
			armed.Store(true)
			mustAdd(t, p, faults.Slice(1000, 0).WithDir(faults.Up)) // the up loop goes round
			_, _ = v.Write([]byte("x"))
			if err := readErr(t, v); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("read: got %v, want ECONNRESET or EOF", err)
			}
			if e := rec.waitKind(t, EventClosed, id); !errors.Is(e.Err, ErrPanic) {
				t.Errorf("closed event: got %s, want err wrapping ErrPanic", e)
			}
			waitUntil(t, "no live session", func() bool { return p.ActiveConns() == 0 && p.PoolStats().Busy == 0 })
			_ = closeWithin(t, p, waitTimeout)
		})
	}
}

// TestPanicOthersUntouched: many sessions relay while one after another
// panics; none of the others loses or mixes a byte.
func TestPanicOthersUntouched(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			up := startServer(t, echoHandler)
			p := startProxy(t, Config{Upstream: up.addr(), Mode: mode})
			var victims sync.Map // session IDs that panicked
			p.testHookPanic = func(at hookPoint, s *session, l *loop) {
				if s.id%3 == 0 && at == hookLoop && l.n.Load() > 0 {
					victims.Store(s.id, true)
					panic("boom")
				}
			}
			record(t, p) // orders the hook before the sessions' first event
			var wg sync.WaitGroup
			errs := make(chan error, 30)
			for i := range 30 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- echoRounds(p.Addr().String(), i, 20)
				}()
			}
			for range 5 {
				// Chain changes send every loop round, past the hook.
				f := mustAdd(t, p, faults.Slice(4096, 0))
				time.Sleep(5 * time.Millisecond)
				if err := p.RemoveFault(f.Name); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			close(errs)
			var broken int
			for err := range errs {
				switch {
				case err == nil:
				case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE):
					broken++ // a victim
				default:
					t.Error(err)
				}
			}
			var panicked int
			victims.Range(func(any, any) bool { panicked++; return true })
			// (A victim may panic after its client's last round: fewer
			// may break than panicked, never more.)
			if broken > panicked || panicked == 0 {
				t.Errorf("%d connections broke, %d sessions panicked: want as many (and some)", broken, panicked)
			}
			waitUntil(t, "no live session", func() bool { return p.ActiveConns() == 0 && p.PoolStats().Busy == 0 })
			_ = closeWithin(t, p, waitTimeout)
		})
	}
}

// echoRounds sends n numbered messages on a new connection through addr
// and checks each echo; it returns the first error (a reset, for a victim)
// or a mismatch.
func echoRounds(addr string, id, n int) error {
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	for i := range n {
		msg := []byte(strings.Repeat(string(rune('a'+id%26)), 1+i*37%500))
		if _, err := c.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return errors.New("conn " + string(rune('a'+id%26)) + ": echo mismatch: got " + string(got))
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func mustAdd(t *testing.T, p *Proxy, f faults.Fault) faults.Fault {
	t.Helper()
	nf, err := p.AddFault(f)
	if err != nil {
		t.Fatalf("AddFault(%+v): %v", f, err)
	}
	return nf
}

// waitUntil polls cond until it holds, failing the test after waitTimeout.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %s", what, waitTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPanicInSubscriber: a subscriber that panics on an event panics the
// session goroutine that emitted it; the session ends as after any panic,
// its pooled upstream connection is not leaked, and the proxy goes on.
func TestPanicInSubscriber(t *testing.T) {
	tests := []struct {
		mode Mode
		on   EventKind
	}{
		{ModeDial, EventAccepted},
		{ModeDial, EventHalfClosed},
		{ModeDial, EventClosed},
		{ModePool, EventAccepted},
		{ModePool, EventInterrupted}, // in the session's end, before the judge
		{ModePool, EventReleased},    // in the pool's put
		{ModePool, EventClosed},
		// In run once the copy loops are counted, before they start.
		{ModeDial, EventFaultApplied},
		{ModePool, EventFaultApplied},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String()+"/"+tt.on.String(), func(t *testing.T) {
			leaks := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
			up := startServer(t, echoHandler)
			p := startProxy(t, Config{Upstream: up.addr(), Mode: tt.mode})
			if tt.on == EventFaultApplied {
				// Applied to each new connection as its loops are set up.
				mustAdd(t, p, faults.Latency(time.Microsecond, 0))
			}
			var fired atomic.Bool
			cancel := p.Subscribe(func(e Event) {
				if e.Kind == tt.on && fired.CompareAndSwap(false, true) {
					panic("subscriber boom on " + e.Kind.String())
				}
			})
			defer cancel()
			c, err := net.DialTimeout("tcp", p.Addr().String(), waitTimeout)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(waitTimeout))
				if _, err := c.Write([]byte("hi")); err == nil {
					_, _ = io.ReadFull(c, make([]byte, 2)) // the echo, unless the session is gone
					_ = c.(*net.TCPConn).CloseWrite()
					_, _ = io.ReadAll(c) // EOF, or a reset
				}
				_ = c.Close()
			}
			waitUntil(t, "the event fired", fired.Load)
			waitUntil(t, "no live session and no busy pooled connection", func() bool {
				return p.ActiveConns() == 0 && p.PoolStats().Busy == 0
			})
			roundTrip(t, dial(t, p.Addr().String()), "still serving")
			_ = closeWithin(t, p, waitTimeout)
			if st := p.PoolStats(); st.Busy != 0 || st.Idle != 0 {
				t.Errorf("after Close: %d busy, %d idle; want none", st.Busy, st.Idle)
			}
		})
	}
}
