package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// TestEventTruth drives each way a connection can end, with raw sockets on
// loopback, in dial and in pool mode, and checks the exact events the proxy
// records: kind, by, how, dir, reason, fault kind and byte counts (see
// truthOf). Every drive starts with a fresh proxy and one session, whose
// client sends "hello" (5 bytes up) and whose upstream answers "world!" (6
// bytes down) unless the row says otherwise; a drive waits for the events
// that order what it does next, so that the whole log is determined.
func TestEventTruth(t *testing.T) {
	tests := []truthCase{
		// Dial mode: a FIN is relayed as a FIN, an RST as an RST.
		{
			name: "client FIN", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.write(t, x.c, "bye\n")
				closeWrite(t, x.c)
				x.waitHalfClosed(t, Up)
				x.readEOF(t, x.u, "bye\n")
				x.write(t, x.u, "ok")
				closeWrite(t, x.u)
				x.readEOF(t, x.c, "ok")
			},
			want: []string{
				"accepted", "dialed",
				"half-closed dir=up bytes_up=9 bytes_down=6",
				"half-closed dir=down bytes_up=9 bytes_down=8",
				"closed by=client how=FIN bytes_up=9 bytes_down=8",
			},
		},
		{
			name: "client RST", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				resetClose(x.c)
				x.readReset(t, x.u)
			},
			want: []string{"accepted", "dialed", "reset by=client", "closed by=client how=RST bytes_up=5 bytes_down=6"},
		},
		{
			name: "upstream FIN", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.write(t, x.u, "bye")
				closeWrite(t, x.u)
				x.waitHalfClosed(t, Down)
				x.readEOF(t, x.c, "bye")
				x.write(t, x.c, "ok")
				closeWrite(t, x.c)
				x.readEOF(t, x.u, "ok")
			},
			want: []string{
				"accepted", "dialed",
				"half-closed dir=down bytes_up=5 bytes_down=9",
				"half-closed dir=up bytes_up=7 bytes_down=9",
				"closed by=upstream how=FIN bytes_up=7 bytes_down=9",
			},
		},
		{
			name: "upstream RST", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				resetClose(x.u)
				x.readReset(t, x.c)
			},
			want: []string{"accepted", "dialed", "reset by=upstream", "closed by=upstream how=RST bytes_up=5 bytes_down=6"},
		},
		{
			// The client closed; the first byte written to it after its
			// FIN meets an RST, the next write fails.
			name: "write to a client that is gone", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				closeConn(t, x.c)
				x.waitHalfClosed(t, Up)
				x.readEOF(t, x.u, "")
				x.write(t, x.u, "late")
				x.waitSock(t, Client, tcpClose)
				x.write(t, x.u, "more")
			},
			want: []string{
				"accepted", "dialed",
				"half-closed dir=up bytes_up=5 bytes_down=6",
				"reset by=client",
				"closed by=client how=FIN bytes_up=5 bytes_down=10",
			},
		},
		{
			name: "write to an upstream that is gone", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				closeConn(t, x.u)
				x.waitHalfClosed(t, Down)
				x.readEOF(t, x.c, "")
				x.write(t, x.c, "late")
				x.waitSock(t, Upstream, tcpClose)
				x.write(t, x.c, "more")
			},
			want: []string{
				"accepted", "dialed",
				"half-closed dir=down bytes_up=5 bytes_down=6",
				"reset by=upstream",
				"closed by=upstream how=FIN bytes_up=9 bytes_down=6",
			},
		},
		{
			// The client gives up on a stalled reply and closes; the
			// upstream, seeing the FIN, closes too; then the stall is
			// cleared and the held reply meets the client's RST. Nothing
			// was reset by the upstream.
			name: "client gives up on a stall", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Stall(false).WithDir(faults.Down).WithName("stall"))
				x.write(t, x.u, "reply")
				closeConn(t, x.c)
				x.waitHalfClosed(t, Up)
				x.readEOF(t, x.u, "")
				x.remove(t, "stall")
				x.waitSock(t, Client, tcpClose)
				closeConn(t, x.u)
			},
			want: []string{
				"accepted", "dialed",
				"fault-applied stall dir=down", "fault-fired stall dir=down",
				"half-closed dir=up bytes_up=5 bytes_down=11",
				"fault-cleared stall dir=down",
				"reset by=client",
				"closed by=client how=FIN bytes_up=5 bytes_down=11",
			},
		},
		{
			name: "reset fault", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Reset(faults.ToBoth))
				x.readReset(t, x.c)
				x.readReset(t, x.u)
			},
			want: []string{"accepted", "dialed", "fault-fired reset", "closed by=proxy how=RST bytes_up=5 bytes_down=6"},
		},
		{
			name: "reset fault toward the client", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Reset(faults.ToClient))
				x.readReset(t, x.c)
				x.readEOF(t, x.u, "")
			},
			want: []string{"accepted", "dialed", "fault-fired reset", "closed by=proxy how=RST bytes_up=5 bytes_down=6"},
		},
		{
			// The fault's FIN is the first end; the client's FIN, relayed,
			// is the second.
			name: "half-close fault", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.HalfClose(faults.Down))
				x.readEOF(t, x.c, "")
				x.write(t, x.c, "bye")
				closeWrite(t, x.c)
				x.readEOF(t, x.u, "bye")
				closeConn(t, x.u)
			},
			want: []string{
				"accepted", "dialed",
				"fault-applied half-close dir=down", "fault-fired half-close dir=down",
				"half-closed dir=up bytes_up=8 bytes_down=6",
				"closed by=proxy how=FIN bytes_up=8 bytes_down=6",
			},
		},
		{
			name: "limit fault", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Limit(3).WithDir(faults.Up))
				x.write(t, x.c, "abcdef")
				x.readEOF(t, x.u, "abc")
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed",
				"fault-applied limit dir=up", "fault-fired limit dir=up",
				"closed by=proxy how=FIN bytes_up=8 bytes_down=6",
			},
		},
		{
			name: "idle-close fault with FIN", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.IdleClose(20*time.Millisecond, false))
				x.readEOF(t, x.c, "")
				x.readEOF(t, x.u, "")
			},
			want: []string{"accepted", "dialed", "fault-fired idle-close", "closed by=proxy how=FIN bytes_up=5 bytes_down=6"},
		},
		{
			name: "idle-close fault with RST", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.IdleClose(20*time.Millisecond, true))
				x.readReset(t, x.c)
				x.readEOF(t, x.u, "")
			},
			want: []string{"accepted", "dialed", "fault-fired idle-close", "closed by=proxy how=RST bytes_up=5 bytes_down=6"},
		},
		{
			name: "drop-on-accept fault", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.add(t, faults.DropOnAccept())
				x.connectReset(t)
			},
			want: []string{"accepted", "fault-fired drop-on-accept", "closed by=proxy how=RST bytes_up=0 bytes_down=0"},
		},
		{
			// A refused client leaves no event; the live session goes on.
			name: "refuse fault", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Refuse())
				x.refused(t)
				closeWrite(t, x.c)
				x.readEOF(t, x.u, "")
				closeConn(t, x.u)
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed",
				"half-closed dir=up bytes_up=5 bytes_down=6",
				"half-closed dir=down bytes_up=5 bytes_down=6",
				"closed by=client how=FIN bytes_up=5 bytes_down=6",
			},
		},
		{
			name: "proxy close", mode: ModeDial,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.close(t)
				x.readEOF(t, x.c, "")
				x.readEOF(t, x.u, "")
			},
			want: []string{"accepted", "dialed", "closed by=proxy how=FIN bytes_up=5 bytes_down=6"},
		},

		// Pool mode: the session ends at the first end either side sends.
		{
			name: "client FIN", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				closeWrite(t, x.c)
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "released",
				"closed by=client how=FIN bytes_up=5 bytes_down=6",
			},
		},
		{
			name: "client RST", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				resetClose(x.c)
				x.readEOF(t, x.u, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "discarded reason=client-reset",
				"closed by=client how=RST bytes_up=5 bytes_down=6",
			},
		},
		{
			// Also the way a pooled connection is discarded: the
			// upstream's FIN.
			name: "upstream FIN", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.write(t, x.u, "bye")
				closeWrite(t, x.u)
				x.readEOF(t, x.c, "bye")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "discarded reason=upstream-eof",
				"closed by=upstream how=FIN bytes_up=5 bytes_down=9",
			},
		},
		{
			name: "upstream RST", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				resetClose(x.u)
				x.readReset(t, x.c)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "discarded reason=upstream-reset",
				"reset by=upstream",
				"closed by=upstream how=RST bytes_up=5 bytes_down=6",
			},
		},
		{
			// In pool mode the session ends at the client's FIN, so the
			// held reply is never written: it is left unread upstream.
			name: "client gives up on a stall", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Stall(false).WithDir(faults.Down).WithName("stall"))
				x.write(t, x.u, "reply")
				x.waitSock(t, Upstream, 0)
				closeConn(t, x.c)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied stall dir=down", "fault-fired stall dir=down",
				"interrupted", "discarded reason=unread",
				"closed by=client how=FIN bytes_up=5 bytes_down=6",
			},
		},
		{
			name: "reset fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Reset(faults.ToBoth))
				x.readReset(t, x.c)
				x.readReset(t, x.u)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-fired reset",
				"interrupted", "discarded reason=fault",
				"closed by=proxy how=RST bytes_up=5 bytes_down=6",
			},
		},
		{
			name: "half-close fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.HalfClose(faults.Up))
				x.readEOF(t, x.u, "")
				closeConn(t, x.u)
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied half-close dir=up", "fault-fired half-close dir=up",
				"interrupted", "discarded reason=half-closed",
				"closed by=proxy how=FIN bytes_up=5 bytes_down=6",
			},
		},
		{
			// Toward the client: the upstream connection saw nothing
			// unusual and goes back to the pool.
			name: "half-close fault toward the client", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.HalfClose(faults.Down))
				x.readEOF(t, x.c, "")
				closeConn(t, x.c)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied half-close dir=down", "fault-fired half-close dir=down",
				"interrupted", "released",
				"closed by=proxy how=FIN bytes_up=5 bytes_down=6",
			},
		},
		{
			name: "limit fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Limit(3).WithDir(faults.Up))
				x.write(t, x.c, "abcdef")
				x.readEOF(t, x.u, "abc")
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied limit dir=up", "fault-fired limit dir=up",
				"interrupted", "discarded reason=fault",
				"closed by=proxy how=FIN bytes_up=8 bytes_down=6",
			},
		},
		{
			name: "idle-close fault with FIN", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.IdleClose(20*time.Millisecond, false))
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-fired idle-close",
				"interrupted", "released",
				"closed by=proxy how=FIN bytes_up=5 bytes_down=6",
			},
		},
		{
			name: "idle-close fault with RST", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.IdleClose(20*time.Millisecond, true))
				x.readReset(t, x.c)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-fired idle-close",
				"interrupted", "released",
				"closed by=proxy how=RST bytes_up=5 bytes_down=6",
			},
		},
		{
			// The stale connection plays an upstream that closed while
			// idle: the client gets the FIN.
			name: "stale eof fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.add(t, faults.Stale(faults.StaleEOF).WithTarget(faults.Target{Count: 1}))
				x.connect(t)
				x.upstream(t)
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied stale dir=up", "fault-applied stale dir=down", "fault-fired stale",
				"interrupted", "discarded reason=stale",
				"closed by=upstream how=FIN bytes_up=0 bytes_down=0",
			},
		},
		{
			// The same with the client's request there before the loops
			// start: the up loop's write to the stale connection fails
			// (EPIPE), the down loop reads EOF, in either order.
			name: "stale eof fault, request waiting", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.add(t, faults.Stale(faults.StaleEOF).WithTarget(faults.Target{Count: 1}))
				x.connect(t)
				x.write(t, x.c, "hello")
				x.upstream(t)
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied stale dir=up", "fault-applied stale dir=down", "fault-fired stale",
				"interrupted", "discarded reason=stale",
				"closed by=upstream how=FIN bytes_up=0 bytes_down=0",
			},
		},
		{
			// The same with the down loop stalled, so that the up loop's
			// EPIPE is the first failure seen: the end is still the
			// upstream's FIN.
			name: "stale eof fault, down stalled", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.add(t, faults.Stall(false).WithDir(faults.Down))
				x.add(t, faults.Stale(faults.StaleEOF).WithTarget(faults.Target{Count: 1}))
				x.connect(t)
				x.write(t, x.c, "hello")
				x.upstream(t)
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied stall dir=down",
				"fault-applied stale dir=up", "fault-applied stale dir=down", "fault-fired stale",
				"fault-fired stall dir=down",
				"interrupted", "discarded reason=stale",
				"closed by=upstream how=FIN bytes_up=0 bytes_down=0",
			},
		},
		{
			name: "stale reset fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.add(t, faults.Stale(faults.StaleReset).WithTarget(faults.Target{Count: 1}))
				x.connect(t)
				x.upstream(t)
				x.write(t, x.c, "hello")
				x.readReset(t, x.c)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied stale dir=up", "fault-applied stale dir=down", "fault-fired stale",
				"interrupted", "discarded reason=stale",
				"reset by=upstream",
				"closed by=upstream how=RST bytes_up=0 bytes_down=0",
			},
		},
		{
			// Nothing ends a black-holed connection but its client.
			name: "stale blackhole fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.add(t, faults.Stale(faults.StaleBlackhole).WithTarget(faults.Target{Count: 1}))
				x.connect(t)
				x.upstream(t)
				x.write(t, x.c, "hello")
				expectNothing(t, x.c, 50*time.Millisecond)
				closeConn(t, x.c)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"fault-applied stale dir=up", "fault-applied stale dir=down", "fault-fired stale",
				"interrupted", "discarded reason=stale",
				"closed by=client how=FIN bytes_up=0 bytes_down=0",
			},
		},
		staleIdleRow(faults.StaleEOF),
		staleIdleRow(faults.StaleReset),
		{
			name: "drop-on-accept fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.add(t, faults.DropOnAccept())
				x.connectReset(t)
			},
			want: []string{"accepted", "fault-fired drop-on-accept", "closed by=proxy how=RST bytes_up=0 bytes_down=0"},
		},
		{
			name: "refuse fault", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.add(t, faults.Refuse())
				x.refused(t)
				closeWrite(t, x.c)
				x.readEOF(t, x.c, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "released",
				"closed by=client how=FIN bytes_up=5 bytes_down=6",
			},
		},
		{
			// The session's clean connection goes back to the pool, which
			// the closing proxy then empties.
			name: "proxy close", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.close(t)
				x.readEOF(t, x.c, "")
				x.readEOF(t, x.u, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "released",
				"closed by=proxy how=FIN bytes_up=5 bytes_down=6",
				"discarded reason=proxy-closed",
			},
		},
		{
			// A client sends a request and leaves before the reply: the
			// upstream connection owes an answer and is not reused.
			name: "client leaves before the reply", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				x.write(t, x.c, "req")
				x.read(t, x.u, "req")
				closeConn(t, x.c)
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "discarded reason=reply-pending",
				"closed by=client how=FIN bytes_up=8 bytes_down=6",
			},
		},
		{
			name: "pool discard of an idle connection", mode: ModePool,
			drive: func(t *testing.T, x *truthRun) {
				x.start(t)
				closeConn(t, x.c)
				x.wait(t, EventClosed)
				if n := x.p.DrainPool(); n != 1 {
					t.Fatalf("DrainPool: got %d, want 1", n)
				}
				x.readEOF(t, x.u, "")
			},
			want: []string{
				"accepted", "dialed", "borrowed reused=false",
				"interrupted", "released",
				"closed by=client how=FIN bytes_up=5 bytes_down=6",
				"discarded reason=drained",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String()+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			x := newTruthRun(t, tt.mode)
			tt.drive(t, x)
			x.wait(t, EventClosed)
			got := x.truth(len(tt.want))
			if !slices.Equal(got, tt.want) {
				t.Errorf("events:\n  got  %s\n  want %s\nlog:\n%s", strings.Join(got, " | "), strings.Join(tt.want, " | "), x.ev)
			}
		})
	}
}

// truthRun is one row's proxy, in front of an upstream that hands the test
// each connection it accepts: c is the client's end of the session, u the
// upstream's.
type truthRun struct {
	p    *Proxy
	up   *server
	ev   *recorder
	c, u *net.TCPConn
}

func newTruthRun(t *testing.T, mode Mode) *truthRun {
	up := startServer(t, nil)
	p := startProxy(t, Config{Upstream: up.addr(), Mode: mode})
	return &truthRun{p: p, up: up, ev: record(t, p)}
}

// connect opens the client's connection.
func (x *truthRun) connect(t *testing.T) { x.c = dial(t, x.p.Addr().String()) }

// connectReset connects and fails unless the client sees a reset: at
// connect, or at its first read.
func (x *truthRun) connectReset(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", x.p.Addr().String(), waitTimeout)
	if err == nil {
		defer c.Close()
		err = readErr(t, c)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client: got %v, want ECONNRESET", err)
	}
}

// upstream takes the upstream's end of the session's connection.
func (x *truthRun) upstream(t *testing.T) {
	t.Helper()
	x.u = x.up.next(t)
	t.Cleanup(func() { _ = x.u.Close() })
}

// start connects and exchanges "hello" and "world!".
func (x *truthRun) start(t *testing.T) {
	t.Helper()
	x.connect(t)
	x.upstream(t)
	x.write(t, x.c, "hello")
	x.read(t, x.u, "hello")
	x.write(t, x.u, "world!")
	x.read(t, x.c, "world!")
}

func (x *truthRun) write(t *testing.T, c *net.TCPConn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// read reads exactly want from c.
func (x *truthRun) read(t *testing.T, c *net.TCPConn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

// readEOF reads c to its EOF and fails unless it read want.
func (x *truthRun) readEOF(t *testing.T, c *net.TCPConn, want string) {
	t.Helper()
	got, err := readAll(t, c)
	if err != nil || string(got) != want {
		t.Fatalf("read to EOF: got %q, %v; want %q, EOF; events:\n%s", got, err, want, x.ev)
	}
}

// readReset reads c until an error and fails unless it is ECONNRESET.
func (x *truthRun) readReset(t *testing.T, c *net.TCPConn) {
	t.Helper()
	if err := readErr(t, c); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: got %v, want ECONNRESET; events:\n%s", err, x.ev)
	}
}

// refused checks that a new client is refused and leaves no event.
func (x *truthRun) refused(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", x.p.Addr().String(), waitTimeout)
	if err == nil {
		_ = c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: got %v, want ECONNREFUSED", err)
	}
}

func (x *truthRun) add(t *testing.T, f faults.Fault) {
	t.Helper()
	if _, err := x.p.AddFault(f); err != nil {
		t.Fatalf("AddFault(%+v): %v", f, err)
	}
}

func (x *truthRun) remove(t *testing.T, name string) {
	t.Helper()
	if err := x.p.RemoveFault(name); err != nil {
		t.Fatalf("RemoveFault(%q): %v", name, err)
	}
}

func (x *truthRun) close(t *testing.T) {
	t.Helper()
	if err := x.p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// wait waits for the session's first event of kind.
func (x *truthRun) wait(t *testing.T, kind EventKind) { t.Helper(); x.ev.waitKind(t, kind, 1) }

// waitHalfClosed waits for the session's half-closed event in dir.
func (x *truthRun) waitHalfClosed(t *testing.T, dir Direction) {
	t.Helper()
	x.ev.waitFor(t, "half-closed dir="+dir.String(), func(e Event) bool { return e.Kind == EventHalfClosed && e.Dir == dir })
}

// waitSock waits until the proxy's socket toward side is in TCP state
// state, or, for state 0, has bytes queued unread.
func (x *truthRun) waitSock(t *testing.T, side Side, state uint8) {
	t.Helper()
	live := x.p.liveSessions()
	if len(live) != 1 {
		t.Fatalf("live sessions: got %d, want 1", len(live))
	}
	s := live[0]
	c := s.client
	if side == Upstream {
		s.mu.Lock()
		c = s.uc.c
		s.mu.Unlock()
	}
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(time.Millisecond) {
		if state == 0 && sockInq(c) > 0 || state != 0 && tcpState(c) == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy's socket toward the %s: not in state %d after %s (state %d)", side, state, waitTimeout, tcpState(c))
		}
	}
}

// truth returns the proxy's events as truthOf writes them, waiting up to a
// short while for the n that are expected (and then some, that should not
// be there).
func (x *truthRun) truth(n int) []string {
	deadline := time.Now().Add(100 * time.Millisecond)
	for len(x.ev.all()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for an event too many
	var out []string
	for _, e := range x.ev.all() {
		out = append(out, truthOf(e))
	}
	return out
}

// truthOf writes what an event says about a connection's end, without
// what varies from run to run (IDs, times, error texts).
func truthOf(e Event) string {
	s := e.Kind.String()
	switch e.Kind {
	case EventBorrowed:
		s += " reused=" + strconv.FormatBool(e.Reused)
	case EventRetried, EventDiscarded:
		s += " reason=" + string(e.Reason)
	case EventHalfClosed:
		s += " dir=" + e.Dir.String() + " bytes_up=" + strconv.FormatInt(e.BytesUp, 10) + " bytes_down=" + strconv.FormatInt(e.BytesDown, 10)
	case EventReset:
		s += " by=" + e.By.String()
	case EventClosed:
		s += " by=" + e.By.String() + " how=" + e.How.String() + " bytes_up=" + strconv.FormatInt(e.BytesUp, 10) + " bytes_down=" + strconv.FormatInt(e.BytesDown, 10)
	case EventFaultApplied, EventFaultFired, EventFaultCleared:
		s += " " + string(e.FaultKind)
		if e.Dir != "" {
			s += " dir=" + e.Dir.String()
		}
	}
	return s
}

func closeWrite(t *testing.T, c *net.TCPConn) {
	t.Helper()
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
}

func closeConn(t *testing.T, c *net.TCPConn) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// truthCase is a row of TestEventTruth: a drive of a fresh proxy in mode
// and the events it must produce.
type truthCase struct {
	name  string
	mode  Mode
	drive func(t *testing.T, x *truthRun)
	want  []string
}

// staleIdleRow is the truth table's row for a stale fault of mode with no
// target: it makes the idle pool stale, and the next session's borrow
// probes the idle connection, finds what the fault did to it, discards it
// as stale and dials; the client never sees it.
func staleIdleRow(mode faults.StaleMode) truthCase {
	return truthCase{
		name: fmt.Sprintf("stale %s fault on an idle connection", mode), mode: ModePool,
		drive: func(t *testing.T, x *truthRun) {
			x.start(t)
			closeConn(t, x.c)
			x.wait(t, EventClosed)
			x.add(t, faults.Stale(mode))
			x.start(t)
			closeConn(t, x.c)
			x.ev.waitKind(t, EventClosed, 2)
		},
		want: []string{
			"accepted", "dialed", "borrowed reused=false",
			"interrupted", "released",
			"closed by=client how=FIN bytes_up=5 bytes_down=6",
			"fault-fired stale",
			"accepted", "discarded reason=stale", "dialed", "borrowed reused=false",
			"interrupted", "released",
			"closed by=client how=FIN bytes_up=5 bytes_down=6",
		},
	}
}
