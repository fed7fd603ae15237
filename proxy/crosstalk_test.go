package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lineServer is a line-protocol upstream for cross-talk tests. Each
// connection answers its requests in order: PING with PONG at once, SLOW
// with SLOW-REPLY after slowReply, SPLIT with PART1 at once and the rest of
// its line (PART2) once the test sends on the split channel. got receives
// each request line as the upstream reads it; wrote receives each reply once
// written.
type lineServer struct {
	*server
	got   chan string
	wrote chan string
	split chan struct{}
}

const slowReply = 300 * time.Millisecond

func startLineServer(t *testing.T) *lineServer {
	t.Helper()
	ls := &lineServer{got: make(chan string, 1024), wrote: make(chan string, 1024), split: make(chan struct{})}
	stop := make(chan struct{})
	ls.server = startServer(t, func(c *net.TCPConn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			req := strings.TrimSpace(line)
			ls.got <- req
			var reply string
			switch req {
			case "PING":
				reply = "PONG\n"
			case "SLOW":
				select {
				case <-time.After(slowReply):
				case <-stop:
					return
				}
				reply = "SLOW-REPLY\n"
			case "SPLIT":
				if _, err := io.WriteString(c, "PART1"); err != nil {
					return
				}
				select {
				case <-ls.split:
				case <-stop:
					return
				}
				reply = "PART2\n"
			default:
				reply = "ERR\n"
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
			ls.wrote <- req
		}
	})
	// Registered after startServer's, so it runs first: handlers waiting
	// to reply stop before the server waits for them.
	t.Cleanup(func() { close(stop) })
	return ls
}

func (ls *lineServer) waitGot(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-ls.got:
		if got != want {
			t.Fatalf("upstream read %q, want %q", got, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("upstream did not read %q in %s", want, waitTimeout)
	}
}

func (ls *lineServer) waitWrote(t *testing.T, want string) {
	t.Helper()
	for {
		select {
		case got := <-ls.wrote:
			if got == want {
				return
			}
		case <-time.After(waitTimeout):
			t.Fatalf("upstream did not answer %q in %s", want, waitTimeout)
		}
	}
}

// ping sends PING on a new connection and returns the first line it reads
// (or the error), within waitTimeout.
func ping(t *testing.T, addr string) (string, error) {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, "PING\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestPoolNoCrossTalkAfterClientLeaves: a client sends a request and hangs
// up before the reply (what a client with a read timeout does). The
// upstream connection owes that reply, so it must not go back to the pool:
// the next client must never read the first one's reply.
func TestPoolNoCrossTalkAfterClientLeaves(t *testing.T) {
	up := startLineServer(t)
	p := startProxy(t, Config{Upstream: up.addr(), Mode: ModePool})
	ev := record(t, p)
	addr := p.Addr().String()
	const rounds = 100
	pending := 0
	for i := range rounds {
		a := dial(t, addr)
		if _, err := io.WriteString(a, "SLOW\n"); err != nil {
			t.Fatal(err)
		}
		up.waitGot(t, "SLOW")
		_ = a.Close()
		accepted := ev.of(EventAccepted)
		closed := ev.waitKind(t, EventClosed, accepted[len(accepted)-1].Conn)

		line, err := ping(t, addr)
		switch {
		case err == nil && line != "PONG\n":
			t.Fatalf("round %d: client B read %q, want PONG: another client's reply", i, line)
		case err != nil && !errors.Is(err, io.EOF) && !isReset(err):
			t.Fatalf("round %d: client B: %v", i, err)
		}
		up.waitGot(t, "PING")
		for _, e := range ev.all() {
			if e.Kind == EventDiscarded && e.Conn == closed.Conn && e.Reason == ReasonReplyPending {
				pending++
			}
		}
	}
	if pending != rounds {
		t.Errorf("%d of %d sessions discarded with reason %s; want all\n%s", pending, rounds, ReasonReplyPending, ev)
	}
}

// TestPoolLateReplyTailCaught: a client reads part of a reply and leaves;
// the rest arrives while the upstream connection is idle in the pool. The
// next borrow's probe must find those bytes and not hand the connection
// out. (What TCP cannot show — a tail that arrives only after the next
// client's request went up — is documented in the package doc.)
func TestPoolLateReplyTailCaught(t *testing.T) {
	up := startLineServer(t)
	p := startProxy(t, Config{Upstream: up.addr(), Mode: ModePool})
	ev := record(t, p)
	addr := p.Addr().String()

	a := dial(t, addr)
	_ = a.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(a, "SPLIT\n"); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, len("PART1"))
	if _, err := io.ReadFull(a, part); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	accepted := ev.of(EventAccepted)
	ev.waitKind(t, EventClosed, accepted[len(accepted)-1].Conn)
	up.split <- struct{}{}
	up.waitWrote(t, "SPLIT")
	// The tail is on its way over loopback; wait until it is in the
	// pooled connection's socket.
	waitIdleUnread(t, p)

	line, err := ping(t, addr)
	if err != nil || line != "PONG\n" {
		t.Fatalf("client B read %q, %v; want PONG\n%s", line, err, ev)
	}
}

// waitIdleUnread waits until an idle pooled connection has bytes unread.
func waitIdleUnread(t *testing.T, p *Proxy) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		p.pool.mu.Lock()
		n := 0
		for _, uc := range p.pool.idle {
			n += sockIoctl(uc.c, unix.SIOCINQ)
		}
		p.pool.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no idle pooled connection got the reply's tail in %s", waitTimeout)
}
