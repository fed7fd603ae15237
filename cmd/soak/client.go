package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Client timing: bounds so that no client can hold the run up.
const (
	dialTimeout  = 3 * time.Second
	readTimeout  = 2 * time.Second  // one reply, or the EOF after the last
	connBound    = 15 * time.Second // a whole connection
	maxExchanges = 6
)

// How a client ends. Most read every reply; an early leaver sends its last
// request and goes before the reply, as a client with a read timeout does.
const (
	leaveNone    = ""
	leaveClose   = "send-close"    // send the last request, close (FIN) at once
	leaveReset   = "send-reset"    // send the last request, close with RST at once
	leaveTimeout = "short-timeout" // wait 1-20ms for the last reply, then close
)

// target is a proxy the load runs through.
type target struct {
	proxy    string // its name
	addr     string // where it listens
	upstream string // "echo" or "rr"
}

// loadStats is what one mode's clients saw.
type loadStats struct {
	conns      int64  // connections attempted
	clean      int64  // connections that ended with every reply right and no error
	exchanges  int64  // replies read and verified
	bytesUp    int64  // bytes the clients wrote
	bytesDown  int64  // bytes the clients read
	byUpstream counts // connections by upstream
	leavers    counts // early leavers by kind
	errors     counts // "phase:kind" of the first error of each connection
	violations counts // by kind (details go to the run's violations)
	limits     counts // what TCP cannot show the proxy, by kind (details go to the run's limits)
}

func newLoadStats() *loadStats {
	return &loadStats{byUpstream: counts{}, leavers: counts{}, errors: counts{}, violations: counts{}, limits: counts{}}
}

func (s *loadStats) merge(o *loadStats) {
	s.conns += o.conns
	s.clean += o.clean
	s.exchanges += o.exchanges
	s.bytesUp += o.bytesUp
	s.bytesDown += o.bytesDown
	s.byUpstream.merge(o.byUpstream)
	s.leavers.merge(o.leavers)
	s.errors.merge(o.errors)
	s.violations.merge(o.violations)
	s.limits.merge(o.limits)
}

// load runs the clients of one mode.
type load struct {
	seed    uint64
	label   string // names the load in violations: "pool mode"
	modeIdx uint64 // makes connection IDs unique over the run
	targets []target
	early   float64 // fraction of early leavers
	viol    *violations
	fates   *sync.Map // conn ID -> how it ended if not cleanly ("left early: send-close"), for the violations' details
	// partials: conn ID -> the partialRead of a client that left while
	// reading a reply, so that the rest of that reply, should another
	// client get it, is told apart (see clientConn.stray).
	partials *sync.Map
	// limits collects what TCP cannot show the proxy (see docs/soak.md):
	// reported with examples, not counted as violations.
	limits *violations
	done   *atomic.Int64
}

// connID is the run-unique ID of the mode's connection i (from 1).
func (l *load) connID(i uint64) uint64 { return l.modeIdx<<32 | i }

// run runs n connections with conc at once, until n are done, ctx is done
// or stopAt passes; it returns what the clients saw.
func (l *load) run(ctx context.Context, n, conc int, stopAt time.Time) *loadStats {
	var next atomic.Uint64
	var wg sync.WaitGroup
	results := make([]*loadStats, conc)
	for w := range conc {
		st := newLoadStats()
		results[w] = st
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				i := next.Add(1)
				if i > uint64(n) {
					return
				}
				l.conn(ctx, l.connID(i), st)
				l.done.Add(1)
			}
		})
	}
	wg.Wait()
	total := newLoadStats()
	for _, st := range results {
		total.merge(st)
	}
	return total
}

// clientConn is one connection's state.
type clientConn struct {
	l      *load
	id     uint64
	t      target
	c      *net.TCPConn
	st     *loadStats
	leave  string
	seq    uint32 // the exchange under way
	buf    []byte
	failed bool // an error or a violation ended it
}

// conn runs one client connection: a few exchanges of random-length
// messages, each reply checked byte for byte.
func (l *load) conn(ctx context.Context, id uint64, st *loadStats) {
	r := rand.New(rand.NewPCG(l.seed, id))
	cl := &clientConn{l: l, id: id, st: st, t: l.targets[r.IntN(len(l.targets))]}
	st.conns++
	st.byUpstream[cl.t.upstream]++
	if r.Float64() < l.early {
		switch p := r.IntN(10); {
		case p < 4:
			cl.leave = leaveClose
		case p < 6:
			cl.leave = leaveReset
		default:
			cl.leave = leaveTimeout
		}
		st.leavers[cl.leave]++
		l.fates.Store(id, "left early: "+cl.leave)
	}
	d := net.Dialer{Timeout: dialTimeout}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	c, err := d.DialContext(dctx, "tcp", cl.t.addr)
	cancel()
	if err != nil {
		cl.fail("dial", err)
		return
	}
	cl.c = c.(*net.TCPConn)
	defer cl.c.Close()
	end := time.Now().Add(connBound)
	_ = cl.c.SetDeadline(end)
	exchanges := 1 + r.IntN(maxExchanges)
	for seq := uint32(1); seq <= uint32(exchanges); seq++ {
		cl.seq = seq
		last := seq == uint32(exchanges)
		req := frame(magicRequest, id, seq, payload(id, seq, false, messageSize(r)))
		_ = cl.c.SetWriteDeadline(earliest(time.Now().Add(readTimeout), end))
		if _, err := cl.c.Write(req); err != nil {
			cl.fail("write", err)
			return
		}
		st.bytesUp += int64(len(req))
		want := req
		if cl.t.upstream == "rr" {
			want = frame(magicReply, id, seq, replyPayload(l.seed, id, seq))
		}
		wait := readTimeout
		if last {
			switch cl.leave {
			case leaveClose:
				return // the deferred Close sends FIN
			case leaveReset:
				_ = cl.c.SetLinger(0)
				return
			case leaveTimeout:
				wait = time.Duration(1+r.IntN(20)) * time.Millisecond
			}
		}
		_ = cl.c.SetReadDeadline(earliest(time.Now().Add(wait), end))
		if !cl.readReply(seq, want) {
			return
		}
		st.exchanges++
	}
	if cl.leave == leaveTimeout {
		return // it read its last reply in time after all; it leaves anyway
	}
	// No byte may follow the last reply: half-close and expect EOF.
	if err := cl.c.CloseWrite(); err != nil {
		cl.fail("close", err)
		return
	}
	_ = cl.c.SetReadDeadline(earliest(time.Now().Add(readTimeout), end))
	extra := make([]byte, 256)
	n, err := io.ReadAtLeast(cl.c, extra, 1)
	switch {
	case n > 0:
		cl.violation("extra-bytes", fmt.Sprintf("%d bytes after the last reply, first %s", n, cl.describe(extra[:n])))
	case errors.Is(err, io.EOF):
		st.clean++
	default:
		cl.fail("close", err)
	}
}

// readReply reads one reply and checks it against want; it reports false
// if the connection is to end (an error, a violation).
func (cl *clientConn) readReply(seq uint32, want []byte) bool {
	if cap(cl.buf) < len(want) {
		cl.buf = make([]byte, len(want))
	}
	got := cl.buf[:len(want)]
	n, err := io.ReadFull(cl.c, got[:headerLen])
	cl.st.bytesDown += int64(n)
	if n < headerLen {
		if !bytes.Equal(got[:n], want[:n]) {
			cl.violation("wrong-byte", fmt.Sprintf("exchange %d: header bytes %x, want %x", seq, got[:n], want[:n]))
			return false
		}
		cl.fail("read", err)
		return false
	}
	h, herr := parseHeader(got[:headerLen])
	switch {
	case herr == nil && h.conn != cl.id:
		cl.violation("foreign-reply", fmt.Sprintf("exchange %d: got %s", seq, cl.describe(got[:headerLen])))
		return false
	case herr == nil && h.seq != seq:
		cl.violation("wrong-seq", fmt.Sprintf("exchange %d: got %s", seq, cl.describe(got[:headerLen])))
		return false
	case !bytes.Equal(got[:headerLen], want[:headerLen]):
		what, o, ok := cl.whatFollows(got[:headerLen])
		cl.stray(o, ok, fmt.Sprintf("exchange %d: header %x, want %x%s", seq, got[:headerLen], want[:headerLen], what))
		return false
	}
	n, err = io.ReadFull(cl.c, got[headerLen:])
	cl.st.bytesDown += int64(n)
	if i := mismatch(got[headerLen:headerLen+n], want[headerLen:headerLen+n]); i >= 0 {
		what, o, ok := cl.whose(got[headerLen+i : headerLen+n])
		cl.stray(o, ok, fmt.Sprintf("exchange %d: payload byte %d of %d is %#02x, want %#02x%s", seq, i, len(want)-headerLen, got[headerLen+i], want[headerLen+i], what))
		return false
	}
	if err != nil {
		// Its header read, the reply's payload is partly read even at n
		// 0: should the rest reach another client, it starts at byte 0.
		cl.l.partials.Store(cl.id, partialRead{seq: seq, reply: h.magic == magicReply, n: n})
		cl.fail("read", err)
		return false
	}
	return true
}

// partialRead is where a client stopped reading a reply, once it had read
// the reply's header: n bytes (0 or more) into the payload of exchange
// seq.
type partialRead struct {
	seq   uint32
	reply bool
	n     int
}

// whatFollows reads what else arrives within a moment after wrong bytes
// and names the first frame header in it, so that a report can say whose
// bytes they were.
// It also reports whether the wrong bytes belong to another connection.
func (cl *clientConn) whatFollows(wrong []byte) (string, owner, bool) {
	_ = cl.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	b := make([]byte, 64<<10)
	n, _ := io.ReadAtLeast(cl.c, b, len(b))
	b = append(wrong, b[:n]...)
	for i := 0; i+headerLen <= len(b); i++ {
		if !bytes.HasPrefix(b[i:], magicRequest[:]) && !bytes.HasPrefix(b[i:], magicReply[:]) {
			continue
		}
		if _, err := parseHeader(b[i : i+headerLen]); err == nil {
			what, o, ok := cl.whose(b[:i])
			return fmt.Sprintf("%s; %d bytes in: %s", what, i, cl.describe(b[i:i+headerLen])), o, ok
		}
	}
	what, o, ok := cl.whose(b)
	return fmt.Sprintf("%s; %d more bytes followed within 200ms, no frame header in them", what, n), o, ok
}

// whose names the message that wrong bytes came from, if it can (ok).
func (cl *clientConn) whose(b []byte) (string, owner, bool) {
	o, ok := ownerOf(b, func(conn uint64) bool {
		m := conn >> 32
		return (m >= 1 && m <= 2 || m >= 100 && m <= 101) && conn&(1<<32-1) != 0
	})
	if !ok {
		return "", o, false
	}
	return ": " + o.String() + cl.l.fateOf(o.conn), o, true
}

// stray records bytes that are not what was sent, whose owner is o if ok:
//   - partial-reply-tail, a known limit and not a violation, when they are
//     the rest of a reply whose client read part of it and left, from
//     exactly where it stopped: the proxy saw the request go up and reply
//     bytes come down last, which is what a complete exchange looks like on
//     the wire (see proxy's package doc, Pool mode);
//   - foreign-bytes when they are any other part of another client's
//     message (cross-talk that does not start at a message's header);
//   - wrong-byte otherwise.
func (cl *clientConn) stray(o owner, ok bool, detail string) {
	switch {
	case ok && o.conn != cl.id && cl.l.isPartialTail(o):
		cl.st.limits["partial-reply-tail"]++
		cl.failed = true
		cl.l.limits.add("partial-reply-tail", fmt.Sprintf("%s, %s, conn %d (%s): %s", cl.l.label, cl.t.proxy, cl.id, cl.role(), detail))
	case ok && o.conn != cl.id:
		cl.violation("foreign-bytes", detail)
	default:
		cl.violation("wrong-byte", detail)
	}
}

// isPartialTail reports whether o's bytes continue a reply exactly where
// its client stopped reading it and left.
func (l *load) isPartialTail(o owner) bool {
	v, ok := l.partials.Load(o.conn)
	if !ok {
		return false
	}
	p := v.(partialRead)
	return p.seq == o.seq && p.reply == o.reply && p.n == o.offset
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func mismatch(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// describe names what bytes that begin with a header belong to.
func (cl *clientConn) describe(b []byte) string {
	if len(b) < headerLen {
		return fmt.Sprintf("%x", b)
	}
	h, err := parseHeader(b[:headerLen])
	if err != nil {
		return fmt.Sprintf("%x (%v)", b[:min(len(b), 32)], err)
	}
	what := "request echo"
	if h.magic == magicReply {
		what = "reply"
	}
	s := fmt.Sprintf("the %s of conn %d seq %d", what, h.conn, h.seq)
	s += cl.l.fateOf(h.conn)
	return s
}

func (cl *clientConn) fail(phase string, err error) {
	cl.failed = true
	kind := phase + ":" + errKind(err)
	cl.st.errors[kind]++
	fate := fmt.Sprintf("met %s at exchange %d", kind, cl.seq)
	if f, ok := cl.l.fates.Load(cl.id); ok {
		fate = f.(string) + "; " + fate
	}
	cl.l.fates.Store(cl.id, fate)
}

// fateOf says how connection id ended, if it did not end cleanly.
func (l *load) fateOf(id uint64) string {
	if f, ok := l.fates.Load(id); ok {
		return fmt.Sprintf(" (that client %s)", f)
	}
	return " (that client ended cleanly, or had not ended yet)"
}

func (cl *clientConn) violation(kind, detail string) {
	cl.failed = true
	cl.st.violations[kind]++
	cl.l.viol.add(kind, fmt.Sprintf("%s, %s, conn %d (%s): %s", cl.l.label, cl.t.proxy, cl.id, cl.role(), detail))
}

func (cl *clientConn) role() string {
	if cl.leave == leaveNone {
		return "reads every reply"
	}
	return "leaves early: " + cl.leave
}
