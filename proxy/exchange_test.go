package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// exchangeConn connects a client through a proxy in mode to a test
// upstream and returns both ends of the relayed connection.
func exchangeConn(t *testing.T, mode Mode, fs ...faults.Fault) (p *Proxy, ev *recorder, c, u *net.TCPConn) {
	t.Helper()
	up := startServer(t, nil)
	p = startProxy(t, Config{Upstream: up.addr(), Mode: mode})
	ev = record(t, p)
	for _, f := range fs {
		if _, err := p.AddFault(f); err != nil {
			t.Fatalf("AddFault(%+v): %v", f, err)
		}
	}
	c = dial(t, p.Addr().String())
	return p, ev, c, up.next(t)
}

// roundTripExchange sends req from c to u and reply back, checking both arrive.
func roundTripExchange(t *testing.T, c, u net.Conn, req, reply string) {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	readWithin(t, u, req, waitTimeout)
	if _, err := io.WriteString(u, reply); err != nil {
		t.Fatal(err)
	}
	readWithin(t, c, reply, waitTimeout)
}

func TestExchangeStallFromThird(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			p, ev, c, u := exchangeConn(t, mode, faults.Stall(false).WithDir(faults.Down).WithExchange(3, 0).WithName("third"))
			roundTripExchange(t, c, u, "q1", "r1")
			roundTripExchange(t, c, u, "q2", "r2a")
			if _, err := io.WriteString(u, "r2b"); err != nil { // the reply in two runs: one exchange
				t.Fatal(err)
			}
			readWithin(t, c, "r2b", waitTimeout)
			if _, err := io.WriteString(c, "q3"); err != nil {
				t.Fatal(err)
			}
			readWithin(t, u, "q3", waitTimeout) // the request goes up
			if _, err := io.WriteString(u, "r3"); err != nil {
				t.Fatal(err)
			}
			expectNothing(t, c, 200*time.Millisecond) // its reply is held
			ev.waitKind(t, EventFaultFired, 0)
			if err := p.RemoveFault("third"); err != nil {
				t.Fatal(err)
			}
			readWithin(t, c, "r3", waitTimeout)
		})
	}
}

func TestExchangeEverySecondClosesUp(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			_, _, c, u := exchangeConn(t, mode, faults.Limit(0).WithDir(faults.Up).WithExchange(0, 2))
			roundTripExchange(t, c, u, "q1", "r1")
			if _, err := io.WriteString(c, "q2"); err != nil {
				t.Fatal(err)
			}
			// The second request closes the connection before a byte of
			// it goes up.
			if err := readErr(t, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client read: %v, want EOF", err)
			}
			if got, _ := readAll(t, u); len(got) != 0 {
				t.Errorf("upstream got %q of the second request, want nothing", got)
			}
		})
	}
}

// A server that speaks first (a greeting) does so in exchange 0: a fault
// from exchange 1 on leaves it alone and takes the reply to the first
// request.
func TestExchangeGreetingIsZero(t *testing.T) {
	_, _, c, u := exchangeConn(t, ModeDial, faults.Stall(false).WithDir(faults.Down).WithExchange(1, 0))
	if _, err := io.WriteString(u, "hello"); err != nil {
		t.Fatal(err)
	}
	readWithin(t, c, "hello", waitTimeout)
	if _, err := io.WriteString(c, "q1"); err != nil {
		t.Fatal(err)
	}
	readWithin(t, u, "q1", waitTimeout)
	if _, err := io.WriteString(u, "r1"); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, c, 200*time.Millisecond)
}

// On a live connection exchanges count from when the fault applies; the
// loops wait idle, so the fault is published to them without a wake.
func TestExchangeCountsFromApply(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			p, _, c, u := exchangeConn(t, mode)
			roundTripExchange(t, c, u, "q1", "r1")
			roundTripExchange(t, c, u, "q2", "r2")
			if _, err := p.AddFault(faults.Stall(false).WithDir(faults.Down).WithExchange(2, 0)); err != nil {
				t.Fatal(err)
			}
			roundTripExchange(t, c, u, "q3", "r3") // the fault's exchange 1
			if _, err := io.WriteString(c, "q4"); err != nil {
				t.Fatal(err)
			}
			readWithin(t, u, "q4", waitTimeout)
			if _, err := io.WriteString(u, "r4"); err != nil {
				t.Fatal(err)
			}
			expectNothing(t, c, 200*time.Millisecond)
		})
	}
}

// Latency on every second exchange delays those replies only.
func TestExchangeEverySecondLatency(t *testing.T) {
	const delay = 300 * time.Millisecond
	_, _, c, u := exchangeConn(t, ModeDial, faults.Latency(delay, 0).WithDir(faults.Down).WithExchange(0, 2))
	for i, want := range []bool{false, true, false, true} {
		start := time.Now()
		roundTripExchange(t, c, u, "q", "r")
		if got := time.Since(start) >= delay; got != want {
			t.Errorf("exchange %d took %v; delayed %v, want %v", i+1, time.Since(start), got, want)
		}
	}
}

// Corrupt reads bytes through a buffer (relayChunk's copying path): on
// every second exchange each byte of the reply has a bit flipped, and the
// others arrive intact.
func TestExchangeEverySecondCorrupt(t *testing.T) {
	for _, mode := range []Mode{ModeDial, ModePool} {
		t.Run(mode.String(), func(t *testing.T) {
			_, _, c, u := exchangeConn(t, mode, faults.Corrupt(1).WithDir(faults.Down).WithExchange(0, 2))
			for i, corrupted := range []bool{false, true, false, true} {
				if _, err := io.WriteString(c, "q"); err != nil {
					t.Fatal(err)
				}
				readWithin(t, u, "q", waitTimeout)
				if _, err := io.WriteString(u, "reply"); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len("reply"))
				_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatal(err)
				}
				if (string(got) != "reply") != corrupted {
					t.Errorf("exchange %d: reply %q; corrupted %v, want %v", i+1, got, !corrupted, corrupted)
				}
			}
		})
	}
}
