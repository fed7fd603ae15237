package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

func TestFrameRoundTrip(t *testing.T) {
	b := frame(magicReply, 42, 7, []byte("payload"))
	h, err := parseHeader(b[:headerLen])
	if err != nil {
		t.Fatal(err)
	}
	if h.magic != magicReply || h.conn != 42 || h.seq != 7 || h.length != 7 {
		t.Fatalf("got %+v, want reply of conn 42 seq 7 length 7", h)
	}
	if err := checkSum(b[:headerLen], b[headerLen:]); err != nil {
		t.Fatal(err)
	}
	for i := 4; i < len(b); i++ {
		bad := append([]byte(nil), b...)
		bad[i] ^= 1
		if _, err := parseHeader(bad[:headerLen]); err == nil {
			if err := checkSum(bad[:headerLen], bad[headerLen:]); !errors.Is(err, errBadFrame) {
				t.Errorf("bit flipped in byte %d: got %v, want %v", i, err, errBadFrame)
			}
		}
	}
}

func TestReplyPayloadDiffersByConnAndSeq(t *testing.T) {
	a := replyPayload(1, 10, 1)
	if string(a) != string(replyPayload(1, 10, 1)) {
		t.Fatal("replyPayload is not a function of its arguments")
	}
	for _, b := range [][]byte{replyPayload(1, 11, 1), replyPayload(1, 10, 2), replyPayload(2, 10, 1)} {
		if string(a) == string(b) {
			t.Fatal("two exchanges got the same reply")
		}
	}
}

// ev is an event of proxy "p" for the checker.
func ev(kind proxy.EventKind, conn, up uint64, seq uint64) api.Event {
	return api.Event{ID: seq, Proxy: "p", Event: proxy.Event{Seq: seq, Kind: kind, Conn: conn, Upstream: up}}
}

func TestEventChecker(t *testing.T) {
	tests := []struct {
		name   string
		events []api.Event
		want   string // the violation kind, "" for none
	}{
		{"borrow, release, borrow again", []api.Event{
			ev(proxy.EventDialed, 1, 1, 1), ev(proxy.EventBorrowed, 1, 1, 2), ev(proxy.EventReleased, 1, 1, 3),
			ev(proxy.EventBorrowed, 2, 1, 4), ev(proxy.EventDiscarded, 2, 1, 5),
		}, ""},
		{"borrowed after its discard", []api.Event{
			ev(proxy.EventBorrowed, 1, 1, 1), ev(proxy.EventDiscarded, 1, 1, 2), ev(proxy.EventBorrowed, 2, 1, 3),
		}, "borrowed-after-discard"},
		{"idle one discarded by a borrow's probe, then borrowed", []api.Event{
			ev(proxy.EventBorrowed, 1, 1, 1), ev(proxy.EventReleased, 1, 1, 2), ev(proxy.EventDiscarded, 2, 1, 3),
			ev(proxy.EventBorrowed, 3, 1, 4),
		}, "borrowed-after-discard"},
		{"borrowed while held", []api.Event{
			ev(proxy.EventBorrowed, 1, 1, 1), ev(proxy.EventBorrowed, 2, 1, 2),
		}, "borrowed-while-held"},
		{"released by a session that does not hold it", []api.Event{
			ev(proxy.EventBorrowed, 1, 1, 1), ev(proxy.EventReleased, 2, 1, 2),
		}, "released-not-held"},
		{"same upstream ID on another proxy", []api.Event{
			ev(proxy.EventBorrowed, 1, 1, 1),
			{ID: 2, Proxy: "q", Event: proxy.Event{Seq: 2, Kind: proxy.EventBorrowed, Conn: 5, Upstream: 1}},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newViolations()
			ec := newEventChecker(v)
			for _, e := range tt.events {
				ec.observe(e)
			}
			var got []string
			for k := range v.byKind {
				got = append(got, k)
			}
			if want := []string{tt.want}; tt.want == "" && len(got) != 0 || tt.want != "" && (len(got) != 1 || got[0] != tt.want) {
				t.Errorf("got violations %v (%v), want %v", got, v.details, want)
			}
		})
	}
}

// crossTalkRelay is a pool relay with the classic bug: an upstream
// connection goes back to the pool when the client leaves, whatever is still
// owed on it. The harness's clients must catch it.
type crossTalkRelay struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	idle     []net.Conn
	wg       sync.WaitGroup
}

func startCrossTalkRelay(t *testing.T, upstream string) *crossTalkRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &crossTalkRelay{ln: ln, upstream: upstream}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Go(func() { r.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		r.wg.Wait()
		for _, c := range r.idle {
			c.Close()
		}
	})
	return r
}

func (r *crossTalkRelay) serve(c net.Conn) {
	defer c.Close()
	r.mu.Lock()
	var up net.Conn
	if n := len(r.idle); n > 0 {
		up, r.idle = r.idle[n-1], r.idle[:n-1]
	}
	r.mu.Unlock()
	if up == nil {
		var err error
		if up, err = net.Dial("tcp", r.upstream); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, up) // until the interrupt below
	}()
	_, err := io.Copy(up, c)
	_ = up.SetReadDeadline(time.Unix(1, 0))
	<-done
	_ = up.SetReadDeadline(time.Time{})
	if err != nil {
		up.Close()
		return
	}
	r.mu.Lock()
	r.idle = append(r.idle, up) // the bug: a reply may still be on its way
	r.mu.Unlock()
}

// runLoad runs the harness's clients against addr (an rr upstream behind
// whatever) and returns what they saw.
func runLoad(t *testing.T, addr string, early float64, viol *violations) *loadStats {
	t.Helper()
	l := &load{seed: 3, label: "test", modeIdx: 1, targets: []target{{proxy: "t", addr: addr, upstream: "rr"}},
		early: early, viol: viol, fates: &sync.Map{}, partials: &sync.Map{}, limits: newViolations(), done: &atomic.Int64{}}
	return l.run(context.Background(), 300, 20, time.Now().Add(30*time.Second))
}

// The clients' checks find cross-talk when there is some, and nothing when
// there is none.
func TestClientsCatchCrossTalk(t *testing.T) {
	viol := newViolations()
	rr := &rrServer{seed: 3, maxDelay: 30 * time.Millisecond, report: viol.add}
	up, err := startUpstream(rr.serve)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()

	st := runLoad(t, up.addr(), 0.3, viol)
	if n := viol.total(); n != 0 {
		t.Fatalf("direct to the upstream: %d violations %v, want none", n, viol.details)
	}
	if st.exchanges == 0 || st.clean == 0 {
		t.Fatalf("direct to the upstream: %d exchanges, %d clean connections; want some", st.exchanges, st.clean)
	}

	bad := startCrossTalkRelay(t, up.addr())
	st = runLoad(t, bad.ln.Addr().String(), 0.3, viol)
	if st.violations["foreign-reply"] == 0 {
		t.Fatalf("through a relay that pools connections with replies owed: no foreign reply caught (violations %v, errors %v)", st.violations, st.errors)
	}
	for _, d := range viol.details["foreign-reply"] {
		if !strings.Contains(d, "left early") {
			t.Errorf("detail %q does not say the reply's owner left early", d)
		}
	}
}

func TestGoroutinesFromMetrics(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
	}{
		{"present", "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_threads 9\n", 42},
		{"absent", "faultline_events_logged_total 7\n", -1},
		{"a longer name only", "go_goroutines_total 5\n", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := goroutines(strings.NewReader(tt.body))
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestOwnerOfStrayBytes(t *testing.T) {
	conn := uint64(2)<<32 | 77
	known := func(c uint64) bool { return c == conn }
	p := payload(conn, 3, true, 1000)
	tests := []struct {
		name     string
		from, to int
		want     owner
		found    bool
	}{
		{"whole", 0, 1000, owner{conn: conn, seq: 3, reply: true, offset: 0, n: 1000}, true},
		{"from a block's start", 16, 100, owner{conn: conn, seq: 3, reply: true, offset: 16, n: 84}, true},
		{"from mid-block", 37, 80, owner{conn: conn, seq: 3, reply: true, offset: 37, n: 43}, true},
		{"a block and a bit", 43, 70, owner{conn: conn, seq: 3, reply: true, offset: 43, n: 27}, true},
		{"a tail too short", 990, 1000, owner{}, false},
		{"no whole block", 40, 60, owner{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := ownerOf(p[tt.from:tt.to], known)
			if ok != tt.found || o != tt.want {
				t.Errorf("got %v, %t; want %v, %t", o, ok, tt.want, tt.found)
			}
		})
	}
	if o, ok := ownerOf(frame(magicRequest, conn, 1, nil), known); ok {
		t.Errorf("a header: got %v, want nothing", o)
	}
	stray := append(p[100:140:140], frame(magicRequest, conn+1, 1, payload(conn+1, 1, false, 40))...)
	if o, ok := ownerOf(stray, known); !ok || o.n != 40 {
		t.Errorf("stray bytes then another message: got %v, %t; want the 40 stray bytes", o, ok)
	}
}

func TestParseFlagsRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown mode", []string{"-modes", "dial,proxy"}},
		{"no connections", []string{"-conns", "0"}},
		{"no concurrency", []string{"-concurrency", "-1"}},
		{"early over 1", []string{"-early", "1.5"}},
		{"zero duration", []string{"-max-duration", "0s"}},
		{"unknown fault kind", []string{"-fault-kinds", "corrupt"}},
		{"negative allowance", []string{"-goroutine-allowance", "-1"}},
		{"an argument", []string{"extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseFlags(tt.args, io.Discard); err == nil {
				t.Errorf("parseFlags(%q) accepted it", tt.args)
			}
		})
	}
	cfg, err := parseFlags([]string{"-modes", "pool", "-fault-kinds", "stale,stall"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := newSchedule(nil, "pool", []string{"p"}, 1, cfg.faultKinds, nil).kinds; len(got) != 2 {
		t.Errorf("pool schedule with -fault-kinds stale,stall draws from %v, want those two", got)
	}
}

// Every fault the schedule draws is one the faults package accepts.
func TestScheduleFaultsAreValid(t *testing.T) {
	for _, mode := range []string{"dial", "pool"} {
		s := newSchedule(nil, mode, []string{"p"}, 7, nil, nil)
		seen := map[faults.Kind]bool{}
		for range 2000 {
			f := s.randomFault()
			seen[f.Kind] = true
			if _, err := f.Normalized(); err != nil {
				t.Errorf("%s mode: %+v: %v", mode, f, err)
			}
		}
		if len(seen) != len(modeKinds(mode)) {
			t.Errorf("%s mode: drew kinds %v, want all of %v", mode, seen, modeKinds(mode))
		}
	}
}

func TestSummarizeDump(t *testing.T) {
	dump := `SIGQUIT: quit
PC=0x47a1c1 m=0 sigcode=0

goroutine 0 gp=0x5e1c40 m=0 mp=0x5e2ae0 [idle]:
runtime.futex(0x5e2c20, 0x80, 0x0, 0x0, 0x0, 0x0)
	/usr/local/go/src/runtime/sys_linux_amd64.s:557 +0x21

goroutine 7 gp=0xc000102a80 m=nil [IO wait]:
runtime.gopark(0xc0001a5b28?, 0x0?, 0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/proc.go:435 +0xce
internal/poll.runtime_pollWait(0x7f, 0x72)
	/usr/local/go/src/runtime/netpoll.go:351 +0x85
net.(*conn).Read(0xc00009a028, {0xc0001b0000?, 0x0?, 0x0?})
	/usr/local/go/src/net/net.go:194 +0x45
github.com/faultline-proxy/faultline/proxy.copyDown(0xc0000b4000)
	/src/proxy/session.go:200 +0x1c
created by github.com/faultline-proxy/faultline/proxy.(*session).spawn in goroutine 6
	/src/proxy/session.go:150 +0x9a

goroutine 8 gp=0xc000102c40 m=nil [IO wait]:
runtime.gopark(0xc0001a5b28?, 0x0?, 0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/proc.go:435 +0xce
github.com/faultline-proxy/faultline/proxy.copyDown(0xc0000b4100)
	/src/proxy/session.go:200 +0x1c

goroutine 9 gp=0xc000102e00 m=nil [chan receive]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/proc.go:435 +0xce
net/http.(*persistConn).readLoop(0xc0001c0000)
	/usr/local/go/src/net/http/transport.go:2300 +0x1
`
	got := summarizeDump(dump)
	want := "github.com/faultline-proxy/faultline/proxy.copyDown 2, "
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "net/http.") || !strings.Contains(got, "runtime 1") {
		t.Errorf("got %q, want it to start with %q and name net/http's and the runtime's", got, want)
	}
}

// Only the rest of a reply, from exactly where its client stopped reading
// it, is a partial-reply tail; any other part of another client's message
// is cross-talk.
func TestIsPartialTail(t *testing.T) {
	l := &load{partials: &sync.Map{}}
	l.partials.Store(uint64(7), partialRead{seq: 2, reply: true, n: 100})
	tests := []struct {
		name string
		o    owner
		want bool
	}{
		{name: "the rest", o: owner{conn: 7, seq: 2, reply: true, offset: 100}, want: true},
		{name: "bytes it read", o: owner{conn: 7, seq: 2, reply: true, offset: 99}},
		{name: "a gap", o: owner{conn: 7, seq: 2, reply: true, offset: 101}},
		{name: "another exchange", o: owner{conn: 7, seq: 3, reply: true, offset: 100}},
		{name: "its request", o: owner{conn: 7, seq: 2, reply: false, offset: 100}},
		{name: "a client that read every reply", o: owner{conn: 8, seq: 2, reply: true, offset: 100}},
	}
	for _, tt := range tests {
		if got := l.isPartialTail(tt.o); got != tt.want {
			t.Errorf("%s: isPartialTail(%+v) = %v, want %v", tt.name, tt.o, got, tt.want)
		}
	}
}

// A client that read a reply's header and then left records where it
// stopped, even at payload byte 0, so that the rest of that reply reaching
// another client is told apart as a partial-reply tail; one that read no
// byte of the header records nothing (a whole reply elsewhere is a foreign
// reply). Before the fix, a stop at byte 0 was not recorded, and such a
// tail counted as foreign-bytes.
func TestPartialReadRecorded(t *testing.T) {
	const id = uint64(1)<<32 | 9
	want := frame(magicReply, id, 1, replyPayload(5, id, 1))
	tests := []struct {
		name   string
		sent   int // bytes of want the server sends before it goes quiet
		stored bool
	}{
		{name: "nothing", sent: 0},
		{name: "part of the header", sent: headerLen - 1},
		{name: "the header", sent: headerLen, stored: true},
		{name: "the header and 10 bytes", sent: headerLen + 10, stored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = c.Write(want[:tt.sent])
				_, _ = io.Copy(io.Discard, c) // quiet until the client leaves
			}()
			defer func() { <-done }()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			l := &load{label: "test", partials: &sync.Map{}, fates: &sync.Map{}, viol: newViolations(), limits: newViolations()}
			cl := &clientConn{l: l, id: id, st: newLoadStats(), c: c.(*net.TCPConn)}
			_ = cl.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if cl.readReply(1, want) {
				t.Fatal("readReply reported a whole reply")
			}
			if n := l.viol.total(); n != 0 {
				t.Fatalf("violations %v, want none", l.viol.details)
			}
			at := max(tt.sent-headerLen, 0)
			o := owner{conn: id, seq: 1, reply: true, offset: at}
			if got := l.isPartialTail(o); got != tt.stored {
				t.Errorf("isPartialTail(%+v) = %v, want %v", o, got, tt.stored)
			}
		})
	}
}
