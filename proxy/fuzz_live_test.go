package proxy

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/echo"
)

// FuzzFaultSequence applies a sequence of fault changes decoded from the
// input (add, update, remove, clear; every kind, fields at and beyond
// their bounds; and CloseConn and DrainPool) to a live proxy in dial or pool mode in front of an echo
// upstream, while a few clients exchange bytes through it. Per input it
// checks that nothing panics (Normalized included: every fault is first
// checked as decoded, and only what it accepts is added, with durations
// and rates capped so that one input runs in well under a second), that
// Close returns, that no goroutine is left, that the pool has nothing
// open or busy after Close, that every accepted connection has exactly
// one closed event, and that what each client connection reads is what it
// sent, in order (in pool mode the clients keep to request and response,
// which pooling needs): a prefix of it (faults that end a connection or a
// direction only cut it short), a subsequence of it under faults that
// drop bytes (blackhole, stall with drop, stale), and no longer than it
// under corrupt.
//
// make test runs the seeds below and those in
// testdata/fuzz/FuzzFaultSequence; search for more with
//
//	go test -run '^$' -fuzz '^FuzzFaultSequence$' -fuzztime 3m ./proxy/
func FuzzFaultSequence(f *testing.F) {
	// One add of each kind, with its own fields, in each mode.
	for k := range len(fuzzKinds) - 1 {
		for mode := range 2 {
			// mode, clients, then op add (0), kind, its fields and a pause.
			f.Add([]byte{byte(mode), 2, 0, byte(k), 3, 4, 5, 0, 1, 0, 2, 2, 0, 4})
		}
	}
	f.Add([]byte{1, 2, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 9, 1, 4, 0, 5})                         // update, remove, clear
	f.Add([]byte{0, 3, 0, 0, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 1, 1, 1, 1, 1}) // huge values
	f.Add([]byte{1, 3, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 6, 0, 1, 9, 2, 2, 2, 6, 5, 2, 0, 3, 3, 0})                      // stall drop, then clear

	up, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = up.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		runFaultSequence(t, up.Addr().String(), in)
	})
}

// fuzzKinds are the kinds a fault is drawn from, and one no kind has.
var fuzzKinds = []faults.Kind{
	faults.KindLatency, faults.KindStall, faults.KindBlackhole, faults.KindReset, faults.KindHalfClose,
	faults.KindBandwidth, faults.KindSlice, faults.KindLimit, faults.KindSlowClose, faults.KindCorrupt,
	faults.KindDropOnAccept, faults.KindConnectDelay, faults.KindRefuse, faults.KindIdleClose, faults.KindStale,
	"bogus",
}

// Values for the fields, from the usual to past every bound.
var (
	fuzzDurations = []time.Duration{0, 1, time.Microsecond, 100 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
		5 * time.Millisecond, time.Second, 24 * time.Hour, 150 * time.Hour, math.MaxInt64, math.MaxInt64/2 + 1, -1, math.MinInt64}
	fuzzInts   = []int64{0, 1, 2, 10, 100, 1000, 1 << 20, math.MaxInt32, math.MaxInt64, math.MaxInt64 - 1, -1, math.MinInt64}
	fuzzProbs  = []float64{0, 0.001, 0.5, 1, -0.1, 1.5, math.NaN(), math.Inf(1), math.SmallestNonzeroFloat64}
	fuzzNames  = []string{"", "a", "b", "c", "bad name", "..", strings.Repeat("n", 65)}
	fuzzDirs   = []faults.Direction{"", faults.Up, faults.Down, faults.Both, "sideways"}
	fuzzSides  = []faults.Side{"", faults.ToClient, faults.ToUpstream, faults.ToBoth, "middle"}
	fuzzModes  = []faults.StaleMode{"", faults.StaleEOF, faults.StaleReset, faults.StaleBlackhole, "gone"}
	fuzzWhich  = []faults.Which{"", faults.All, faults.New, faults.Existing, faults.ByID, "some"}
	fuzzIDSets = [][]uint64{nil, {1}, {2, 3}, {1, 2, 3, 4, 5, 6}, {math.MaxUint64}, {0}}
)

// Caps the harness puts on what it adds, so that each input runs fast:
// faults wait, delay and last milliseconds, and pace at 1 MB/s or more.
const (
	fuzzMaxDelay  = 2 * time.Millisecond
	fuzzMaxSlice  = 50 * time.Microsecond // slice's delay is per piece
	fuzzMaxAfter  = 3 * time.Millisecond
	fuzzMaxFor    = 5 * time.Millisecond
	fuzzMaxIdle   = 3 * time.Millisecond
	fuzzMinRate   = 1 << 20
	fuzzClientsMx = 3  // clients at once
	fuzzConnsMax  = 4  // connections each client opens, one after another
	fuzzOpsMax    = 16 // fault changes per input
)

// fuzzInput reads the input a byte at a time (next); past its end every
// byte is 0.
type fuzzInput struct {
	b []byte
	i int
}

func (r *fuzzInput) next() byte {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *fuzzInput) done() bool { return r.i >= len(r.b) }

func pick[T any](r *fuzzInput, from []T) T { return from[int(r.next())%len(from)] }

// fault decodes one fault: a kind, its own fields, then a byte whose bits
// say which of the rest to set (often fields other kinds take, which
// Normalized must refuse).
func (r *fuzzInput) fault() faults.Fault {
	f := faults.Fault{Kind: pick(r, fuzzKinds), Name: pick(r, fuzzNames)}
	switch f.Kind {
	case faults.KindLatency:
		f.Delay, f.Jitter = pick(r, fuzzDurations), pick(r, fuzzDurations)
	case faults.KindStall:
		f.Drop = r.next()&1 == 1
	case faults.KindReset:
		f.Side = pick(r, fuzzSides)
	case faults.KindHalfClose:
		f.Dir = pick(r, fuzzDirs)
	case faults.KindBandwidth:
		f.Rate = pick(r, fuzzInts)
	case faults.KindSlice:
		f.Size, f.Delay = int(pick(r, fuzzInts)), pick(r, fuzzDurations)
	case faults.KindLimit:
		f.Bytes = pick(r, fuzzInts)
	case faults.KindSlowClose, faults.KindConnectDelay:
		f.Delay = pick(r, fuzzDurations)
	case faults.KindCorrupt:
		f.Prob = pick(r, fuzzProbs)
	case faults.KindIdleClose:
		f.Idle, f.Abort = pick(r, fuzzDurations), r.next()&1 == 1
	case faults.KindStale:
		f.Mode = pick(r, fuzzModes)
	}
	set := r.next()
	if set&1 != 0 {
		f.Dir = pick(r, fuzzDirs)
	}
	if set&2 != 0 {
		f.Target = faults.Target{Which: pick(r, fuzzWhich), IDs: pick(r, fuzzIDSets), Every: int(pick(r, fuzzInts)), Prob: pick(r, fuzzProbs), Count: int(pick(r, fuzzInts))}
	}
	if set&4 != 0 {
		f.After = pick(r, fuzzDurations)
	}
	if set&8 != 0 {
		f.For = pick(r, fuzzDurations)
	}
	if set&16 != 0 {
		f.AfterBytes = pick(r, fuzzInts)
		// An exchange trigger too, from the same pick (no more input is
		// read, so the seeds decode as before but for these fields).
		switch f.AfterBytes % 3 {
		case 1:
			f.FromExchange = int(f.AfterBytes % 5)
		case 2:
			f.EveryExchange = int(f.AfterBytes % 4)
		}
	}
	if set&32 != 0 {
		f.Seed = uint64(r.next())<<56 | uint64(r.next())
	}
	if set&64 != 0 {
		// A field of another kind.
		switch r.next() % 6 {
		case 0:
			f.Delay = pick(r, fuzzDurations)
		case 1:
			f.Jitter = pick(r, fuzzDurations)
		case 2:
			f.Rate = pick(r, fuzzInts)
		case 3:
			f.Prob = pick(r, fuzzProbs)
		case 4:
			f.Idle = pick(r, fuzzDurations)
		case 5:
			f.Mode = pick(r, fuzzModes)
		}
	}
	if set&128 != 0 {
		f.Side = pick(r, fuzzSides)
	}
	return f
}

// capped returns f with its durations and rate inside the harness's caps.
// f has passed Normalized, so none is negative and what must be positive
// stays so.
func capped(f faults.Fault) faults.Fault {
	maxDelay := fuzzMaxDelay
	if f.Kind == faults.KindSlice {
		maxDelay = fuzzMaxSlice
	}
	f.Delay = min(f.Delay, maxDelay)
	f.Jitter = min(f.Jitter, fuzzMaxDelay)
	f.After = min(f.After, fuzzMaxAfter)
	f.For = min(f.For, fuzzMaxFor)
	f.Idle = min(f.Idle, fuzzMaxIdle)
	if f.Rate > 0 {
		f.Rate = max(f.Rate, fuzzMinRate)
	}
	return f
}

// fuzzStream is what one client connection sent and read.
type fuzzStream struct {
	sent, got []byte
}

// fuzzHarm says what the faults added may have done to the bytes.
type fuzzHarm struct {
	mu      sync.Mutex // guards the fields below
	dropped bool       // a fault drops bytes mid-stream: blackhole, stall with drop, stale
	altered bool       // corrupt
}

func (h *fuzzHarm) note(f faults.Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case f.Kind == faults.KindCorrupt:
		h.altered = true
	case f.Kind == faults.KindBlackhole, f.Kind == faults.KindStale, f.Kind == faults.KindStall && f.Drop:
		h.dropped = true
	}
}

func runFaultSequence(t *testing.T, upstream string, in []byte) {
	baseGoroutines := runtime.NumGoroutine()
	r := &fuzzInput{b: in}
	mode := Mode(r.next() % 2)
	nClients := 1 + int(r.next())%fuzzClientsMx
	p, err := Listen("127.0.0.1:0", Config{Upstream: upstream, Mode: mode, DialTimeout: 500 * time.Millisecond, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	var closed bool
	defer func() {
		if !closed {
			_ = p.Close()
		}
	}()
	// Every accepted connection gets exactly one closed event.
	var evMu sync.Mutex
	accepted, closedEv := map[uint64]bool{}, map[uint64]int{}
	cancel := p.Subscribe(func(e Event) {
		evMu.Lock()
		defer evMu.Unlock()
		switch e.Kind {
		case EventAccepted:
			accepted[e.Conn] = true
		case EventClosed:
			closedEv[e.Conn]++
		}
	})
	defer cancel()

	harm := &fuzzHarm{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	streams := make([][]*fuzzStream, nClients)
	for i := range nClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			streams[i] = fuzzClient(p.Addr().String(), uint64(i), in, mode == ModePool, stop)
		}()
	}

	for n := 0; n < fuzzOpsMax && !r.done(); n++ {
		switch op := r.next() % 8; op {
		case 0, 1, 2: // add
			f := r.fault()
			if _, err := f.Normalized(); err != nil {
				continue
			}
			f = capped(f)
			harm.note(f)
			if _, err := p.AddFault(f); err != nil && !errors.Is(err, ErrFaultExists) && !errors.Is(err, ErrNotPool) {
				t.Fatalf("AddFault(%+v): %v", f, err)
			}
		case 3: // update
			f := r.fault()
			if _, err := f.Normalized(); err != nil {
				continue
			}
			f = capped(f)
			harm.note(f)
			if _, err := p.UpdateFault(f); err != nil && !errors.Is(err, ErrNoFault) && !errors.Is(err, faults.ErrBadFault) {
				t.Fatalf("UpdateFault(%+v): %v", f, err)
			}
		case 4: // remove
			name := pick(r, fuzzNames)
			if err := p.RemoveFault(name); err != nil && !errors.Is(err, ErrNoFault) {
				t.Fatalf("RemoveFault(%q): %v", name, err)
			}
		case 5: // clear
			p.ClearFaults()
		case 6: // let bytes flow
			time.Sleep(time.Duration(r.next()%8) * 500 * time.Microsecond)
		case 7: // end a connection from the proxy's side, or drain the pool
			b := r.next()
			if b == 0 {
				p.DrainPool()
				continue
			}
			how := []CloseHow{FIN, RST, 0}[int(b)%3]
			if err := p.CloseConn(uint64(b>>2), how); err != nil && !errors.Is(err, ErrNoConn) && !errors.Is(err, ErrBadConfig) {
				t.Fatalf("CloseConn(%d, %v): %v", b>>2, how, err)
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	// Bytes flow under what is left, then with no fault.
	time.Sleep(8 * time.Millisecond)
	p.ClearFaults()
	time.Sleep(4 * time.Millisecond)
	close(stop)
	wg.Wait()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Close()
	}()
	select {
	case <-done:
		closed = true
	case <-time.After(10 * time.Second):
		t.Fatalf("Close did not return within 10s; goroutines:\n%s", allStacks())
	}
	if st := p.PoolStats(); st.Busy != 0 || st.Idle != 0 {
		t.Errorf("after Close: pool has %d busy and %d idle connections, want none", st.Busy, st.Idle)
	}
	evMu.Lock()
	for c := range accepted {
		if closedEv[c] != 1 {
			t.Errorf("conn %d: %d closed events, want 1", c, closedEv[c])
		}
	}
	for c, n := range closedEv {
		if !accepted[c] {
			t.Errorf("conn %d: %d closed events and no accepted", c, n)
		}
	}
	evMu.Unlock()

	harm.mu.Lock()
	dropped, altered := harm.dropped, harm.altered
	harm.mu.Unlock()
	for i, ss := range streams {
		for j, s := range ss {

			var ok bool
			switch {
			case altered:
				ok = len(s.got) <= len(s.sent)
			case dropped:
				ok = isSubsequence(s.got, s.sent)
			default:
				ok = bytes.HasPrefix(s.sent, s.got)
			}
			if !ok {
				at := mismatchAt(s.sent, s.got)
				lo := max(0, at-16)
				t.Errorf("client %d, connection %d (mode %s, dropped %t, altered %t): read %d bytes that are not what it sent (%d bytes): from byte %d\nsent %x\nread %x",
					i, j, mode, dropped, altered, len(s.got), len(s.sent), at, s.sent[lo:min(len(s.sent), at+32)], s.got[lo:min(len(s.got), at+32)])
			}

		}
	}

	// What the proxy started has ended; the echo upstream's goroutine
	// for each closed connection may take a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseGoroutines {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the proxy closed, %d before it started:\n%s", runtime.NumGoroutine(), baseGoroutines, allStacks())
		}
		time.Sleep(time.Millisecond)
	}
}

// fuzzClient opens connections through addr one after another until stop
// (or fuzzConnsMax of them), writing bytes drawn from its own generator
// and reading what comes back, and returns what each sent and read. In
// dial mode it pipelines: it writes again whether or not the last echo
// came back. In pool mode it keeps to request and response, as pooling
// needs (see the package doc): it writes a chunk, reads its whole echo,
// and leaves if that takes too long, as a client with a read timeout
// does.
func fuzzClient(addr string, id uint64, in []byte, pool bool, stop <-chan struct{}) []*fuzzStream {
	var seed uint64
	for _, b := range in {
		seed = seed*31 + uint64(b)
	}
	rng := rand.New(rand.NewPCG(seed, id))
	var out []*fuzzStream
	buf := make([]byte, 4096)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for range fuzzConnsMax {
		if stopped() {
			break
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(time.Millisecond) // refused, or reset on accept
			continue
		}
		s := &fuzzStream{}
		out = append(out, s)
		for !stopped() {
			chunk := make([]byte, 1+rng.IntN(96))
			for i := range chunk {
				chunk[i] = byte(rng.Uint32())
			}
			if pool {
				if !s.exchange(c, chunk, buf) {
					break
				}
				continue
			}
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Millisecond))
			w, werr := c.Write(chunk)
			s.sent = append(s.sent, chunk[:w]...)
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			n, rerr := c.Read(buf)
			s.got = append(s.got, buf[:n]...)
			if (werr != nil && !isTimeout(werr)) || (rerr != nil && !isTimeout(rerr)) {
				break
			}
		}
		_ = c.Close()
	}
	return out
}

// fuzzReplyTimeout is how long a pool-mode client waits for an echo
// before it leaves: well over what the capped faults delay it.
const fuzzReplyTimeout = 200 * time.Millisecond

// exchange writes chunk and reads its echo; it reports whether the
// connection can go on (the whole echo came back in time).
func (s *fuzzStream) exchange(c net.Conn, chunk, buf []byte) bool {
	_ = c.SetDeadline(time.Now().Add(fuzzReplyTimeout))
	w, err := c.Write(chunk)
	s.sent = append(s.sent, chunk[:w]...)
	if err != nil {
		return false
	}
	for want := len(chunk); want > 0; {
		n, err := c.Read(buf[:min(want, len(buf))])
		s.got = append(s.got, buf[:n]...)
		want -= n
		if err != nil {
			return false
		}
	}
	return true
}

// mismatchAt returns the index of the first byte where got and sent
// differ.
func mismatchAt(sent, got []byte) int {
	for i := range min(len(sent), len(got)) {
		if sent[i] != got[i] {
			return i
		}
	}
	return min(len(sent), len(got))
}

// isSubsequence reports whether sub's bytes appear in s in order.
func isSubsequence(sub, s []byte) bool {
	for _, b := range sub {
		i := slices.Index(s, b)
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
	return true
}
