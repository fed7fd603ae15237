package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestCloseWithLiveSessions closes a proxy while sessions are open in every
// state they can be in: idle after a round trip, silent since connecting,
// moving bytes both ways, and, in pool mode, a reused upstream connection
// waiting for its client's first byte and an upstream connection idle in
// the pool. Close must end them all, drain the pool, and leave no
// goroutine and no file descriptor behind.
func TestCloseWithLiveSessions(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		// pooled: also leave an upstream connection idle in the pool and
		// one borrowed again by a client that has sent nothing yet.
		pooled bool
	}{
		{name: "dial", cfg: Config{Mode: ModeDial}},
		{name: "pool", cfg: Config{Mode: ModePool}, pooled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fdsBefore := settledFDs(t)

			up := startServer(t, echoHandler)
			cfg := tt.cfg
			cfg.Upstream = up.addr()
			p, err := Listen("127.0.0.1:0", cfg)
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed { // a Close that hung is not called again
					_ = p.Close()
				}
			})
			ev := record(t, p)
			addr := p.Addr().String()

			// Connection IDs count from 1 in accept order; the clients
			// connect one after another, each once the previous one's
			// session is under way.
			var clients []*net.TCPConn
			var live []uint64 // sessions open when Close is called
			var nextID uint64
			var idleUp uint64 // the upstream connection idle in the pool, if any
			connect := func() (*net.TCPConn, uint64) {
				c := dial(t, addr)
				clients = append(clients, c)
				nextID++
				return c, nextID
			}

			// Two idle sessions, each after one round trip.
			for range 2 {
				c, id := connect()
				roundTrip(t, c, "idle")
				live = append(live, id)
			}

			// One session moving bytes both ways through the echo upstream
			// until Close breaks it.
			busy, id := connect()
			live = append(live, id)
			var wg sync.WaitGroup
			var wErr, rErr error
			flowing := make(chan struct{}) // closed once 1 MiB came back
			wg.Add(2)
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for wErr == nil {
					_, wErr = busy.Write(buf)
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				var n, m int
				for rErr == nil {
					m, rErr = busy.Read(buf)
					if n < 1<<20 && n+m >= 1<<20 {
						close(flowing)
					}
					n += m
				}
			}()
			waitClosed(t, "1 MiB echoed on the busy session", flowing)

			if tt.pooled {
				// A session that ends cleanly leaves its upstream idle in
				// the pool...
				c, id := connect()
				roundTrip(t, c, "pooled")
				_ = c.Close()
				ev.waitFor(t, "released", func(e Event) bool { return e.Kind == EventReleased && e.Conn == id })
				// ...where the next client borrows it and waits for its
				// first byte before using it.
				_, id = connect()
				ev.waitFor(t, "reused borrow", func(e Event) bool { return e.Kind == EventBorrowed && e.Conn == id && e.Reused })
				live = append(live, id)
				// One more clean session leaves a connection idle in the
				// pool when Close is called.
				c, id = connect()
				roundTrip(t, c, "pooled")
				_ = c.Close()
				idleUp = ev.waitFor(t, "released", func(e Event) bool { return e.Kind == EventReleased && e.Conn == id }).Upstream
				if got := p.PoolStats().Idle; got != 1 {
					t.Fatalf("pool idle before Close: got %d, want 1", got)
				}
			} else {
				// A client that connected and sent nothing.
				_, id := connect()
				ev.waitKind(t, EventDialed, id)
				live = append(live, id)
			}
			// A session leaves ActiveConns just after its closed event.
			for deadline := time.Now().Add(waitTimeout); p.ActiveConns() != len(live); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("ActiveConns before Close: got %d, want %d", p.ActiveConns(), len(live))
				}
			}

			if err := closeWithin(t, p, waitTimeout); err != nil {
				t.Errorf("Close: got %v, want nil", err)
			}
			closed = true
			if err := closeWithin(t, p, waitTimeout); err != nil {
				t.Errorf("second Close: got %v, want nil", err)
			}
			if got := p.ActiveConns(); got != 0 {
				t.Errorf("ActiveConns after Close: got %d, want 0", got)
			}
			if st := p.PoolStats(); st.Idle != 0 || st.Busy != 0 {
				t.Errorf("pool after Close: got idle=%d busy=%d, want 0 and 0", st.Idle, st.Busy)
			}

			// The busy client's loops fail once the proxy closed its side.
			waitGroupWithin(t, "busy client's reader and writer", &wg)
			if wErr == nil || rErr == nil {
				t.Errorf("busy client: got write error %v, read error %v; want both non-nil", wErr, rErr)
			}
			// Every other live client sees an orderly close.
			for i, c := range clients {
				if c == busy || !slices.Contains(live, uint64(i+1)) {
					continue
				}
				if err := readErr(t, c); err != nil {
					t.Errorf("client %d after Close: got read error %v, want EOF", i+1, err)
				}
			}

			late, err := net.DialTimeout("tcp", addr, waitTimeout)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial after Close: got %v, want ECONNREFUSED", err)
			}
			if err == nil {
				_ = late.Close()
			}

			checkAllClosed(t, ev, live)
			if tt.pooled {
				// Close drains the pool: every upstream connection is closed.
				for _, e := range ev.of(EventDialed) {
					d, ok := discardedEvent(ev, e.Upstream)
					switch {
					case !ok:
						t.Errorf("upstream %d: dialed but never discarded; events:\n%s", e.Upstream, ev)
					case e.Upstream == idleUp && d.Reason != ReasonProxyClosed:
						t.Errorf("upstream %d idle in the pool: got discarded with reason %q, want %q", idleUp, d.Reason, ReasonProxyClosed)
					}
				}
			}

			for _, c := range clients {
				_ = c.Close()
			}
			up.close()
			goleak.VerifyNone(t)
			waitFDs(t, fdsBefore)
		})
	}
}

// checkAllClosed checks that every accepted session has a closed event,
// and that the live ones were closed by the proxy.
func checkAllClosed(t *testing.T, ev *recorder, live []uint64) {
	t.Helper()
	closedBy := make(map[uint64]Side)
	for _, e := range ev.of(EventClosed) {
		closedBy[e.Conn] = e.By
	}
	for _, e := range ev.of(EventAccepted) {
		by, ok := closedBy[e.Conn]
		switch {
		case !ok:
			t.Errorf("conn %d: accepted but no closed event; events:\n%s", e.Conn, ev)
		case slices.Contains(live, e.Conn) && by != ByProxy:
			t.Errorf("conn %d: got closed by %s, want by proxy; events:\n%s", e.Conn, by, ev)
		}
	}
}

// discardedEvent returns the discarded event of upstream connection up.
func discardedEvent(ev *recorder, up uint64) (Event, bool) {
	for _, e := range ev.of(EventDiscarded) {
		if e.Upstream == up {
			return e, true
		}
	}
	return Event{}, false
}

// closeWithin calls p.Close and fails the test with every goroutine's stack
// if it does not return within d.
func closeWithin(t *testing.T, p *Proxy, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Close did not return within %s; goroutines:\n%s", d, allStacks())
		return nil
	}
}

// waitGroupWithin waits for wg, failing the test after waitTimeout.
func waitGroupWithin(t *testing.T, what string, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	waitClosed(t, what, done)
}

// waitClosed waits for ch to be closed, failing the test after waitTimeout.
func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: not done after %s; goroutines:\n%s", what, waitTimeout, allStacks())
	}
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// openFDs returns the link targets of this process's open file descriptors
// ("socket:[123]", "pipe:[456]", ...), the directory being read included.
func openFDs(t testing.TB) []string {
	t.Helper()
	const dir = "/proc/self/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var fds []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		fds = append(fds, target)
	}
	return fds
}

// releaseSplicePipes lets the runtime close the pipes that internal/poll
// caches for splice: they sit in a sync.Pool, which two collections empty,
// and are closed by a finalizer after that.
func releaseSplicePipes() {
	for range 3 {
		runtime.GC()
	}
}

// settledFDs returns how many file descriptors are open once the network
// poller exists and cached splice pipes have been let go: a baseline that
// later fd counts can be compared with.
func settledFDs(t testing.TB) int {
	t.Helper()
	// The first listener creates the poller's own descriptors, which stay.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	_ = ln.Close()
	n := len(openFDs(t))
	for range 20 {
		releaseSplicePipes()
		time.Sleep(5 * time.Millisecond) // let finalizers run
		m := len(openFDs(t))
		if m == n {
			break
		}
		n = m
	}
	return n
}

// waitFDs waits until no more than want file descriptors are open, failing
// the test after waitTimeout with the ones that are.
func waitFDs(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		releaseSplicePipes()
		fds := openFDs(t)
		if len(fds) <= want {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(fds)
			t.Fatalf("open file descriptors: got %d, want %d; open:\n  %s", len(fds), want, strings.Join(fds, "\n  "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseWhileConnecting closes the proxy while clients keep connecting
// and talking: Close must still end every session it accepted, and a
// client must never be left hanging.
func TestCloseWhileConnecting(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "dial", cfg: Config{Mode: ModeDial}},
		{name: "pool", cfg: Config{Mode: ModePool}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startServer(t, echoHandler)
			cfg := tt.cfg
			cfg.Upstream = up.addr()
			p := startProxy(t, cfg)
			ev := record(t, p)
			addr := p.Addr().String()

			const clients = 4
			var wg sync.WaitGroup
			sessions := make(chan struct{}, 1000) // one per round trip done
			var hung atomic.Int32                 // round trips that timed out
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 5)
					for {
						c, err := net.DialTimeout("tcp", addr, waitTimeout)
						if errors.Is(err, syscall.ECONNREFUSED) {
							return // the listener is closed
						}
						if err != nil {
							// A connection queued when the listener
							// closed is reset by the kernel.
							continue
						}
						// Errors are expected once Close starts, but not a
						// timeout: the proxy must not leave a client hanging.
						_ = c.SetDeadline(time.Now().Add(waitTimeout))
						_, err = c.Write([]byte("hello"))
						if err == nil {
							_, err = io.ReadFull(c, buf)
						}
						switch {
						case err == nil:
							select {
							case sessions <- struct{}{}:
							default:
							}
						case errors.Is(err, os.ErrDeadlineExceeded):
							hung.Add(1)
						}
						_ = c.Close()
					}
				}()
			}
			for range 50 {
				select {
				case <-sessions:
				case <-time.After(waitTimeout):
					t.Fatalf("clients did not complete 50 round trips in %s", waitTimeout)
				}
			}
			if err := closeWithin(t, p, waitTimeout); err != nil {
				t.Errorf("Close: got %v, want nil", err)
			}
			// Each client stops at its first refused dial.
			waitGroupWithin(t, "clients", &wg)
			if n := hung.Load(); n != 0 {
				t.Errorf("round trips that timed out: got %d, want 0", n)
			}
			if got := p.ActiveConns(); got != 0 {
				t.Errorf("ActiveConns after Close: got %d, want 0", got)
			}
			checkAllClosed(t, ev, nil)
		})
	}
}
