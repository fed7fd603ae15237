package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/faultline-proxy/faultline/faults"
)

// startPool starts a pool-mode proxy in front of an echo upstream.
func startPool(t *testing.T, pc PoolConfig, hooks ...func(*Proxy)) (*Proxy, *server, *recorder) {
	t.Helper()
	up := startServer(t, echoHandler)
	p, err := Listen("127.0.0.1:0", Config{Upstream: up.addr(), Mode: ModePool, Pool: pc})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hooks {
		h(p) // before any connection, so sessions read the hooks race-free
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, up, record(t, p)
}

// useOnce connects, echoes msg, closes with a FIN and waits for the session
// to end. It returns the session's downstream connection ID.
func useOnce(t *testing.T, p *Proxy, ev *recorder, msg string) uint64 {
	t.Helper()
	c := dial(t, p.Addr().String())
	roundTrip(t, c, msg)
	_ = c.Close()
	// The echo came back, so this session's accepted event is the latest.
	acc := ev.of(EventAccepted)
	return ev.waitKind(t, EventClosed, acc[len(acc)-1].Conn).Conn
}

func TestPoolReusesCleanConnection(t *testing.T) {
	p, up, ev := startPool(t, PoolConfig{})
	first := useOnce(t, p, ev, "one")
	rel := ev.waitKind(t, EventReleased, first)
	second := useOnce(t, p, ev, "two")

	b := ev.waitKind(t, EventBorrowed, second)
	if !b.Reused || b.Upstream != rel.Upstream {
		t.Errorf("second borrow = %s; want reused upstream %d", b, rel.Upstream)
	}
	if in := ev.waitKind(t, EventInterrupted, second); in.Took <= 0 {
		t.Errorf("interrupted event = %s; want a positive took", in)
	}
	ev.waitKind(t, EventReleased, second)
	st := p.PoolStats()
	if st.Dialed != 1 || st.Reused != 1 || st.Idle != 1 || st.Busy != 0 || len(st.Discarded) != 0 {
		t.Errorf("pool stats = %+v; want dialed 1, reused 1, idle 1, busy 0, nothing discarded", st)
	}
	up.mu.Lock()
	n := len(up.conns)
	up.mu.Unlock()
	if n != 1 {
		t.Errorf("upstream accepted %d connections, want 1", n)
	}
}

// TestPoolDiscardReasons forces each reason an upstream connection is not
// reused and checks it is discarded, with that reason, and never released.
func TestPoolDiscardReasons(t *testing.T) {
	tests := []struct {
		name   string
		want   Reason
		pool   PoolConfig
		hook   func(t *testing.T, up *server) func(*Proxy)
		client func(t *testing.T, c *net.TCPConn, up *server)
	}{
		{
			name: "upstream closes", want: ReasonUpstreamEOF,
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				roundTrip(t, c, "x")
				closeUpstreams(up, false)
				if err := readErr(t, c); err != nil {
					t.Errorf("client read = %v, want EOF", err)
				}
			},
		},
		{
			name: "upstream resets", want: ReasonUpstreamReset,
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				roundTrip(t, c, "x")
				closeUpstreams(up, true)
				if err := readErr(t, c); !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("client read = %v, want ECONNRESET", err)
				}
			},
		},
		{
			name: "client resets", want: ReasonClientReset,
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				roundTrip(t, c, "x")
				resetClose(c)
			},
		},
		{
			// A deadline the proxy did not set: the timeout is an error like
			// any other, not the proxy's own harmless interrupt.
			name: "foreign timeout", want: ReasonError,
			hook: func(t *testing.T, up *server) func(*Proxy) {
				return func(p *Proxy) {
					p.testHookRelay = func(uc *upConn) { _ = uc.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) }
				}
			},
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				if err := readErr(t, c); !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("client read = %v, want ECONNRESET", err)
				}
			},
		},
		{
			name: "bytes stranded", want: ReasonStranded,
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				// Ask for a large reply and read none of it, so the proxy's
				// downstream writes block with bytes in hand; then end.
				if _, err := io.WriteString(c, "big"); err != nil {
					t.Fatal(err)
				}
				waitUpstreamBlocked(t, up)
				_ = c.CloseWrite()
			},
		},
		{
			name: "bytes unread", want: ReasonUnread,
			hook: func(t *testing.T, up *server) func(*Proxy) {
				return func(p *Proxy) {
					p.testHookRelease = func(uc *upConn) {
						// The upstream speaks after the loops stopped.
						up.mu.Lock()
						_, _ = io.WriteString(up.conns[0], "late")
						up.mu.Unlock()
						waitInq(t, uc.c)
					}
				}
			},
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				roundTrip(t, c, "x")
				_ = c.Close()
			},
		},
		{
			// What the half-close fault does to a pooled connection.
			name: "half-closed", want: ReasonHalfClosed,
			hook: func(t *testing.T, up *server) func(*Proxy) {
				return func(p *Proxy) {
					p.testHookRelay = func(uc *upConn) {
						_ = uc.c.CloseWrite()
						uc.halfClosed = true
					}
				}
			},
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				_ = c.Close()
			},
		},
		{
			name: "past max lifetime", want: ReasonMaxLifetime, pool: PoolConfig{MaxLifetime: 50 * time.Millisecond},
			client: func(t *testing.T, c *net.TCPConn, up *server) {
				roundTrip(t, c, "x")
				time.Sleep(100 * time.Millisecond) // outlive MaxLifetime
				_ = c.Close()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startServer(t, bigReplyEchoHandler)
			p, err := Listen("127.0.0.1:0", Config{Upstream: up.addr(), Mode: ModePool, Pool: tt.pool})
			if err != nil {
				t.Fatal(err)
			}
			if tt.hook != nil {
				tt.hook(t, up)(p)
			}
			t.Cleanup(func() { _ = p.Close() })
			ev := record(t, p)

			c := dial(t, p.Addr().String())
			tt.client(t, c, up)
			d := ev.waitKind(t, EventDiscarded, 0)
			if d.Reason != tt.want {
				t.Errorf("discarded reason = %q (err %v), want %q; events:\n%s", d.Reason, d.Err, tt.want, ev)
			}
			ev.waitKind(t, EventClosed, d.Conn)
			if rel := ev.of(EventReleased); len(rel) != 0 {
				t.Errorf("released %d connections, want none; events:\n%s", len(rel), ev)
			}
			if st := p.PoolStats(); st.Idle != 0 || st.Discarded[tt.want] != 1 {
				t.Errorf("pool stats = %+v; want idle 0, discarded[%s] = 1", st, tt.want)
			}
		})
	}
}

func TestPoolIdleTimeoutAndPoolFull(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		p, _, ev := startPool(t, PoolConfig{IdleTimeout: 50 * time.Millisecond})
		conn := useOnce(t, p, ev, "x")
		rel := ev.waitKind(t, EventReleased, conn)
		d := ev.waitFor(t, "discarded idle-timeout", func(e Event) bool { return e.Kind == EventDiscarded })
		if d.Reason != ReasonIdleTimeout || d.Upstream != rel.Upstream {
			t.Errorf("discarded = %s; want idle-timeout of upstream %d", d, rel.Upstream)
		}
	})
	t.Run("pool full", func(t *testing.T) {
		p, _, ev := startPool(t, PoolConfig{MaxIdle: 1})
		a, b := dial(t, p.Addr().String()), dial(t, p.Addr().String())
		roundTrip(t, a, "a")
		roundTrip(t, b, "b") // both sessions hold an upstream connection now
		_ = a.Close()
		_ = b.Close()
		ev.waitKind(t, EventReleased, 0)
		d := ev.waitKind(t, EventDiscarded, 0)
		if d.Reason != ReasonPoolFull {
			t.Errorf("discarded = %s; want pool-full", d)
		}
	})
}

// TestPoolNeverHandsOutStale closes or resets an idle pooled connection
// from the upstream's side: the next client must get a working connection
// and the dead one must never be borrowed again.
func TestPoolNeverHandsOutStale(t *testing.T) {
	tests := []struct {
		name  string
		reset bool
		want  Reason
	}{
		{"upstream closed while idle", false, ReasonUpstreamEOF},
		{"upstream reset while idle", true, ReasonUpstreamReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, up, ev := startPool(t, PoolConfig{})
			first := useOnce(t, p, ev, "one")
			stale := ev.waitKind(t, EventReleased, first).Upstream
			closeUpstreams(up, tt.reset)
			waitPeerGone(t, p, ev)

			second := useOnce(t, p, ev, "two")
			d := ev.waitKind(t, EventDiscarded, second)
			if d.Upstream != stale || d.Reason != tt.want {
				t.Errorf("discarded = %s; want upstream %d with reason %s", d, stale, tt.want)
			}
			for _, b := range ev.of(EventBorrowed) {
				if b.Upstream == stale && b.Conn == second {
					t.Errorf("stale upstream %d was handed out: %s\nevents:\n%s", stale, b, ev)
				}
			}
		})
	}
}

// TestPoolRetriesConnectionThatDiesBeforeUse lets the upstream close a
// pooled connection after it was borrowed but before the client's first
// byte: the proxy must notice before writing and retry on a fresh one.
func TestPoolRetriesConnectionThatDiesBeforeUse(t *testing.T) {
	p, up, ev := startPool(t, PoolConfig{})
	first := useOnce(t, p, ev, "one")
	stale := ev.waitKind(t, EventReleased, first).Upstream

	c := dial(t, p.Addr().String())
	b := ev.waitFor(t, "reused borrow", func(e Event) bool { return e.Kind == EventBorrowed && e.Reused })
	if b.Upstream != stale {
		t.Fatalf("borrowed %s, want upstream %d", b, stale)
	}
	closeUpstreams(up, false)
	waitPeerGone(t, p, ev)
	roundTrip(t, c, "after the upstream went away")

	r := ev.waitKind(t, EventRetried, b.Conn)
	if r.Upstream != stale || r.Reason != ReasonUpstreamEOF {
		t.Errorf("retried = %s; want upstream %d, reason upstream-eof", r, stale)
	}
	if st := p.PoolStats(); st.Retried != 1 || st.Dialed != 2 {
		t.Errorf("pool stats = %+v; want retried 1, dialed 2", st)
	}
}

// bigReplyEchoHandler echoes, except that "big" is answered with 64 MiB.
func bigReplyEchoHandler(c *net.TCPConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			_ = c.Close()
			return
		}
		if string(buf[:n]) == "big" {
			big := make([]byte, 64<<20)
			_, _ = c.Write(big)
			continue
		}
		if _, err := c.Write(buf[:n]); err != nil {
			_ = c.Close()
			return
		}
	}
}

// closeUpstreams closes every connection the upstream accepted, with an RST
// if reset.
func closeUpstreams(up *server, reset bool) {
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, c := range up.conns {
		if reset {
			resetClose(c)
		} else {
			_ = c.Close()
		}
	}
}

// waitPeerGone waits until every upstream connection the proxy dialed has
// seen its peer's FIN or RST, so the proxy's probe must find it.
func waitPeerGone(t *testing.T, p *Proxy, ev *recorder) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		gone := true
		p.pool.mu.Lock()
		for _, uc := range p.pool.idle {
			if st := tcpState(uc.c); st != tcpCloseWait && st != tcpClose {
				gone = false
			}
		}
		p.pool.mu.Unlock()
		if gone {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle upstream connections still open after %s; events:\n%s", waitTimeout, ev)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitUpstreamBlocked waits until the relay of the upstream's reply has
// stalled: the upstream's send queue holds bytes and has not moved for a few
// polls, so the proxy's downstream write is blocked with bytes in hand.
func waitUpstreamBlocked(t *testing.T, up *server) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	prev, same := -1, 0
	for same < 5 {
		up.mu.Lock()
		var outq int
		if len(up.conns) > 0 {
			outq = sockIoctl(up.conns[0], unix.SIOCOUTQ)
		}
		up.mu.Unlock()
		if outq > 0 && outq == prev {
			same++
		} else {
			same = 0
		}
		prev = outq
		if time.Now().After(deadline) {
			t.Fatalf("upstream never blocked in %s", waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitInq waits until c has unread bytes.
func waitInq(t *testing.T, c *net.TCPConn) {
	deadline := time.Now().Add(waitTimeout)
	for sockIoctl(c, unix.SIOCINQ) == 0 {
		if time.Now().After(deadline) {
			t.Errorf("no bytes arrived in %s", waitTimeout)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func sockIoctl(c *net.TCPConn, req uint) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var n int
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), req) })
	return n
}

// TestToggleDuringChurn: fault changes that land while sessions end (the
// loops see the change after the session's interrupt, or after they have
// returned and the upstream connection went back to the pool) break no
// session: none ends with an RST, and in pool mode every discard is for a
// reason the sessions gave, none ReasonError.
func TestToggleDuringChurn(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			up := startServer(t, echoHandler)
			p := startProxy(t, Config{Upstream: up.addr(), Mode: mode})
			ev := record(t, p)
			stop := make(chan struct{})
			var toggler sync.WaitGroup
			toggler.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := p.AddFault(faults.Latency(time.Nanosecond, 0).WithName("toggle")); err != nil {
						t.Error(err)
						return
					}
					if err := p.RemoveFault("toggle"); err != nil {
						t.Error(err)
						return
					}
				}
			})
			for i := range 300 {
				c := dial(t, p.Addr().String())
				roundTrip(t, c, fmt.Sprintf("session %d", i))
				_ = c.Close()
			}
			close(stop)
			toggler.Wait()
			ev.waitKind(t, EventClosed, 300)
			for _, e := range ev.of(EventClosed) {
				if e.How == RST {
					t.Errorf("session ended with an RST while toggling: %s", e)
				}
			}
			for _, d := range ev.of(EventDiscarded) {
				if d.Reason == ReasonError {
					t.Errorf("discarded for an error while toggling: %s", d)
				}
			}
		})
	}
}

// TestPoolClientResetBeforeAnyByte: a client that resets its connection
// before sending anything, on a reused upstream connection (whose first
// bytes the proxy waits for to probe it once more), is recorded as ended
// by the client with an RST, and the untouched upstream connection goes
// back to the pool.
func TestPoolClientResetBeforeAnyByte(t *testing.T) {
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr(), Mode: ModePool})
	ev := record(t, p)
	warm := dial(t, p.Addr().String())
	roundTrip(t, warm, "warm")
	_ = warm.Close()
	ev.waitKind(t, EventReleased, 1)

	c := dial(t, p.Addr().String())
	ev.waitFor(t, "borrowed conn 2", func(e Event) bool { return e.Kind == EventBorrowed && e.Conn == 2 })
	resetClose(c)
	closed := ev.waitKind(t, EventClosed, 2)
	if closed.By != Client || closed.How != RST {
		t.Errorf("closed event %s: want by client, how RST", closed)
	}
	rel := ev.waitKind(t, EventReleased, 2)
	if rel.Upstream != 1 {
		t.Errorf("released %s: want upstream 1 back in the pool", rel)
	}
}

// TestPoolExhausted holds the only connection of a pool of size 1: a second
// client waits for it and gets it when the first session ends; a third,
// while the second holds it, fails after DialTimeout with ErrPoolExhausted
// and sees a reset, and nothing is dialed beyond the one connection.
func TestPoolExhausted(t *testing.T) {
	up := startServer(t, echoHandler)
	p := startProxy(t, Config{Upstream: up.addr(), Mode: ModePool, DialTimeout: 300 * time.Millisecond, Pool: PoolConfig{Size: 1}})
	ev := record(t, p)

	first := dial(t, p.Addr().String())
	roundTrip(t, first, "one")
	second := dial(t, p.Addr().String())
	if _, err := second.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	acc := ev.waitFor(t, "second accepted", func(e Event) bool { return e.Kind == EventAccepted && e.Conn == 2 })
	_ = first.Close()
	b := ev.waitKind(t, EventBorrowed, acc.Conn)
	if !b.Reused {
		t.Errorf("waiting borrow = %s; want the first session's connection, reused", b)
	}
	buf := make([]byte, 3)
	_ = second.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(second, buf); err != nil || string(buf) != "two" {
		t.Fatalf("second client read %q, %v; want the echo of what it sent while waiting", buf, err)
	}

	third := dial(t, p.Addr().String())
	df := ev.waitKind(t, EventDialFailed, 3)
	if !errors.Is(df.Err, ErrPoolExhausted) || !errors.Is(df.Err, context.DeadlineExceeded) {
		t.Errorf("dial-failed event = %s; want ErrPoolExhausted from the dial timeout", df)
	}
	if err := readErr(t, third); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("third client read error = %v; want ECONNRESET", err)
	}
	roundTrip(t, second, "still")
	if st := p.PoolStats(); st.Dialed != 1 || st.Busy != 1 {
		t.Errorf("pool stats = %+v; want dialed 1, busy 1", st)
	}
}

// TestPoolRecheckIgnoresFaultKick: a fault added between the borrow of an
// idle connection and the client's first bytes kicks the down loop with a
// past read deadline on the upstream socket. The recheck's probe must not
// take that deadline for a failure: the connection is healthy, and a
// retried event (reason error) would be a false record.
func TestPoolRecheckIgnoresFaultKick(t *testing.T) {
	p, _, ev := startPool(t, PoolConfig{})
	useOnce(t, p, ev, "warm")
	c := dial(t, p.Addr().String())
	b := ev.waitFor(t, "second borrow", func(e Event) bool { return e.Kind == EventBorrowed && e.Conn == 2 })
	if !b.Reused {
		t.Fatalf("second borrow %s, want a reused connection", b)
	}
	if _, err := p.AddFault(faults.Latency(time.Millisecond, 0).WithDir(faults.Down)); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "ping")
	for _, e := range ev.all() {
		if e.Conn == 2 && (e.Kind == EventRetried || e.Kind == EventDiscarded) {
			t.Errorf("healthy reused connection recorded as %s; events:\n%s", e, ev)
		}
	}
}
