package proxy

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNoFaultPathSplices shows that with no fault active both copy loops of
// a session relay through splice(2), not through a user-space buffer.
//
// It opens spliceConns sessions, does one echo on each, then has each
// client write without end and never read. The upstream echoes, so both
// directions fill up, and each session's two copy loops end up blocked
// writing to a full destination in the middle of moving bytes. Two
// independent witnesses then say how they move them:
//
//   - The goroutine stacks. A loop that splices is inside internal/poll.Splice
//     (reached from (*net.TCPConn).ReadFrom through net.spliceFrom); a loop
//     that copies through a buffer is in io.copyBuffer and (*net.conn).Write
//     instead. Every copyUp and copyDown goroutine must have
//     session.spliceRelay and internal/poll.Splice on its stack. This is
//     precise (per loop) and immune to the pipe cache below, but names
//     unexported standard-library functions, which a Go release could
//     rename.
//   - The kernel's view. internal/poll.Splice takes a pipe (two
//     descriptors) from a process-wide cache for the whole of a ReadFrom
//     and gives it back only when ReadFrom returns, so 2*spliceConns
//     blocked loops hold 2*spliceConns distinct pipes: at least
//     4*spliceConns more "pipe:" entries in /proc/self/fd than before the
//     sessions, once the cache has been emptied (the cached pipes are
//     closed by finalizers after the garbage collector drops them). A
//     buffered copy opens no pipe at all. The upstream echoes through a
//     buffer too, so that its own pipes are not counted.
//
// An idle loop waits for its source to be readable outside splice (see
// session.spliceRelay), so it holds no pipe.
//
// Checked by hand: with spliceChunk's l.dst.ReadFrom(&io.LimitedReader{R:
// l.src, ...}) replaced by io.Copy(struct{ io.Writer }{l.dst},
// &io.LimitedReader{R: struct{ io.Reader }{l.src}, ...}), which hides the
// *net.TCPConn types and so disables splice, both checks fail.
func TestNoFaultPathSplices(t *testing.T) {
	const spliceConns = 8
	tests := []struct {
		name string
		mode Mode
		// reuse: first open spliceConns sessions and close them, so that
		// the measured ones run on upstream connections reused from the
		// pool.
		reuse      bool
		wantReused uint64 // PoolStats().Reused at the end
	}{
		{name: "dial", mode: ModeDial},
		{name: "pool", mode: ModePool},
		{name: "pool reused", mode: ModePool, reuse: true, wantReused: spliceConns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			settledFDs(t)
			pipesBefore := countPipes(t)

			srv := startServer(t, bufferedEchoHandler)
			p := startProxy(t, Config{Upstream: srv.addr(), Mode: tt.mode})
			ev := record(t, p)
			if tt.reuse {
				// Open all at once: one after another, they would all
				// reuse the first one's upstream connection.
				warm := make([]*net.TCPConn, spliceConns)
				for i := range warm {
					warm[i] = dial(t, p.Addr().String())
					roundTrip(t, warm[i], fmt.Sprintf("warm %d", i))
				}
				for i, c := range warm {
					_ = c.Close()
					ev.waitKind(t, EventReleased, uint64(i+1)) // IDs count from 1 in accept order
				}
			}
			var writers sync.WaitGroup
			clients := make([]*net.TCPConn, spliceConns)
			t.Cleanup(func() {
				for _, c := range clients {
					if c != nil {
						_ = c.Close()
					}
				}
				writers.Wait()
			})
			for i := range clients {
				c := dial(t, p.Addr().String())
				clients[i] = c
				roundTrip(t, c, fmt.Sprintf("splice %d", i))
				writers.Go(func() { writeUntilError(c) })
			}
			if got := p.PoolStats().Reused; got != tt.wantReused {
				t.Errorf("PoolStats().Reused: got %d, want %d", got, tt.wantReused)
			}

			// Wait until both loops of every session are stuck writing
			// inside splice. A loop may instead block in the write of a
			// small take (relayQueued reads up to smallMax bytes when the
			// last count found less than that queued, and the destination
			// can fill during that write): it is on the no-fault path but
			// holds no pipe, and would stay there, since no client reads.
			// Reading a little from every client gives it room; it moves
			// on and blocks again, in splice once it has counted a bulk
			// amount. A loop that never splices never gets there.
			var up, down loopStacks
			nudges := 0
			for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
				up, down = copyLoopStacks("copyUp"), copyLoopStacks("copyDown")
				if up.splicing == spliceConns && down.splicing == spliceConns || time.Now().After(deadline) {
					break
				}
				if up.smallWrite+down.smallWrite > 0 {
					nudges++
					for _, c := range clients {
						drainBriefly(c)
					}
				}
			}
			if up.splicing != spliceConns || down.splicing != spliceConns {
				t.Errorf("copy loops inside internal/poll.Splice: got up %d of %d, down %d of %d, want %d each; one that is not:\n%s",
					up.splicing, up.total, down.splicing, down.total, spliceConns, up.other+down.other)
			}

			if nudges > 0 {
				t.Logf("read from the clients %d times to move loops blocked in a small write", nudges)
			}
			got := countPipes(t) - pipesBefore
			t.Logf("%d pipe descriptors opened while %d sessions are blocked", got, spliceConns)
			if want := 4 * spliceConns; got < want {
				t.Errorf("pipe descriptors opened while %d sessions are blocked: got %d, want at least %d (one pipe, two descriptors, per blocked copy loop)", spliceConns, got, want)
			}
		})
	}
}

// bufferedEchoHandler echoes like echoHandler but through a user-space
// buffer: io.Copy(c, c) on a *net.TCPConn would splice and hold a pipe of
// its own, which the pipe count must not see.
func bufferedEchoHandler(c *net.TCPConn) {
	_, _ = io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
	_ = c.CloseWrite()
	_ = c.Close()
}

// writeUntilError writes to c until a write fails (c is closed).
func writeUntilError(c *net.TCPConn) {
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// drainBriefly reads from c what arrives within a few milliseconds, up to
// 1 MiB, so that a proxy blocked writing to c can go on.
func drainBriefly(c *net.TCPConn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	buf := make([]byte, 64<<10)
	for range 16 {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// loopStacks sums up the goroutines of one kind of copy loop.
type loopStacks struct {
	total    int
	noFault  int // on the no-fault path: session.spliceRelay on the stack
	splicing int // and inside internal/poll.Splice
	// smallWrite: on the no-fault path, writing bytes that relayQueued
	// took into a buffer (see TestNoFaultPathSplices)
	smallWrite int
	other      string // the stack of one that is not splicing, if any
}

// copyLoopStacks finds the goroutines whose stack has function name in
// this package on it and says how many are inside internal/poll.Splice
// on the no-fault path (session.spliceRelay).
func copyLoopStacks(name string) loopStacks {
	var ls loopStacks
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if !strings.Contains(g, "/proxy."+name+"(") {
			continue
		}
		ls.total++
		noFault := strings.Contains(g, ".(*session).spliceRelay(")
		if noFault {
			ls.noFault++
		}
		switch {
		case noFault && strings.Contains(g, "\ninternal/poll.Splice("):
			ls.splicing++
		case noFault && strings.Contains(g, ".(*session).relayQueued(") && strings.Contains(g, ".(*rawWriter).write("):
			ls.smallWrite++
			fallthrough
		default:
			if ls.other == "" {
				ls.other = g + "\n"
			}
		}
	}
	return ls
}

// countPipes counts this process's open pipe descriptors.
func countPipes(t testing.TB) int {
	t.Helper()
	n := 0
	for _, target := range openFDs(t) {
		if strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}
