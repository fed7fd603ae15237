package proxy

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/faultline-proxy/faultline/faults"
)

// errRechain means a loop's fault chain changed: go round and load it.
var errRechain = errors.New("proxy: fault chain changed")

// errDeadline is what a read interrupted by a past deadline returns.
var errDeadline = os.ErrDeadlineExceeded

// errLimit ends a loop whose limit fault closed the connection.
var errLimit = errors.New("proxy: limit reached")

// errStopped means the session stopped a fault loop while it waited.
var errStopped = errors.New("proxy: session stopped")

// bufPool holds the buffers of copy loops that run through faults; the
// splice path needs none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Ways a fault change rewrites a loop's list of faults in force.
const (
	opAppend  = iota // add the set's fault at the end
	opDelete         // remove the fault at index i
	opReplace        // put the set's fault at index i
)

// chainKey names one rewrite of one chain within an applySet: loops that
// had the same chain get the same new one.
type chainKey struct {
	old *chain
	op  int
}

// rechain rewrites l.active by op (with the set's fault af, at index i
// for opDelete and opReplace) and returns the chain composed from it.
// Loops that ran under the same chain share the result, composed once:
// within one set, the same op on the same list gives the same list.
// Called with the proxy's fault mutex held, which also guards l.active;
// l.chain is always the chain of l.active.
func (as *applySet) rechain(l *loop, op, i int, af *activeFault) *chain {
	k := chainKey{l.chain.Load(), op}
	c, ok := as.memo[k]
	if !ok {
		var next []*activeFault
		switch op {
		case opAppend:
			next = append(slices.Clip(l.active), af)
		case opDelete:
			next = slices.Delete(slices.Clone(l.active), i, i+1)
		case opReplace:
			next = slices.Clone(l.active)
			next[i] = af
		}
		c = composeChain(next)
		if as.memo == nil {
			as.memo = make(map[chainKey]*chain)
		}
		as.memo[k] = c
	}
	if c == nil {
		l.active = nil
	} else {
		l.active = c.all
	}
	return c
}

// change rewrites l's faults by op (see rechain) and publishes the new
// chain under s.mu. kind is the event that will say the change is in
// force. How the loop takes the chain depends on where it is:
//
//   - It has returned: nothing to do but a poke (and nothing to touch:
//     its session may have handed its upstream connection back to the
//     pool).
//   - It looks at its chain under s.mu before it takes any byte (it is
//     counting bytes, or stalled: l.checking), and nothing of c acts on an
//     idle connection (chain.quiet): the chain is in force now. A stall or
//     blackhole is reported fired now, as a loop woken into it would; the
//     poke wakes a stalled loop so that held bytes move under the new
//     chain.
//   - Otherwise it is interrupted: the kick flag first, then a read
//     deadline in the past on its source, so no byte is read under the old
//     chain from now on (a read already in the kernel completes, and the
//     loop switches before the next), and the set's batch is registered
//     with it, which it acks once it runs under the new chain (or stops).
//     The flag and the deadline change together under s.mu, against
//     resume.
func (as *applySet) change(s *session, l *loop, kind EventKind, op, i int, af *activeFault) {
	if op != opDelete && af.f.ByExchange() {
		s.exchOn.Store(true) // before the chain is published: copyUp counts from its next write
	}
	c := as.rechain(l, op, i, af)
	var fired *activeFault
	s.mu.Lock()
	g := l.gen.Add(1)
	l.chain.Store(c)
	stopped := l.stoppedRun.Load()
	switch {
	case stopped:
	case l.checking && c.quiet():
		fired = l.claimFired(c)
	default:
		l.kick.Store(true)
		_ = l.src.SetReadDeadline(time.Unix(1, 0))
		if as.b != nil {
			as.b.left.Add(1)
			l.acks = append(l.acks, pendingAck{g, as.b})
		}
	}
	s.mu.Unlock()
	// Poke even a loop that has returned: in dial mode it may still hold
	// the FIN of a slow-close (dialLoopEnded), which the change may free.
	l.poke()
	as.fault, as.fkind = af.f.Name, af.f.Kind
	as.items = append(as.items, pendingApply{s, l, kind, fired})
}

// dropHeld drops what waits unread in l's source, as removing a stall
// with drop does, unless the loop has returned (its source may be back in
// the pool, holding another session's bytes).
func (s *session) dropHeld(l *loop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !l.stoppedRun.Load() {
		_ = discardQueued(l.src)
	}
}

// claimFired returns the stall, or else the blackhole, that c puts in
// force on l at once and that was not reported fired on l yet, and notes
// it as reported; nil if none. Called with s.mu held.
func (l *loop) claimFired(c *chain) *activeFault {
	switch {
	case c == nil:
	case c.stall != nil:
		if c.stall.f.AfterBytes == 0 && !c.stall.f.ByExchange() && l.firedStall != c.stall {
			l.firedStall = c.stall
			return c.stall
		}
	case c.blackhole != nil:
		if c.blackhole.f.AfterBytes == 0 && !c.blackhole.f.ByExchange() && l.firedBlackhole != c.blackhole {
			l.firedBlackhole = c.blackhole
			return c.blackhole
		}
	}
	return nil
}

// faultApplyTimeout bounds how long AddFault and RemoveFault wait for one
// copy loop to switch chains. A loop parked in a read switches at once; one
// blocked writing to a peer that does not read cannot read either, and
// switches before its next read, so waiting for it longer buys nothing.
const faultApplyTimeout = time.Second

// pendingApply is a loop given a new chain, and the event to emit once the
// loop runs under it.
type pendingApply struct {
	s     *session
	l     *loop
	kind  EventKind    // EventFaultApplied or EventFaultCleared
	fired *activeFault // a stall or blackhole to report fired after it, if any
}

// applyBatch counts the copy loops one fault change waits for; the last
// loop to switch closes done, so the waiter wakes once. emitted is closed
// once the change's events are out: a loop that switched waits for it
// before the change fires (see session.awaitApplied), so fault-applied
// comes before fault-fired.
type applyBatch struct {
	left    atomic.Int64
	done    chan struct{}
	emitted chan struct{}
}

// isEmitted reports whether the change's events are out.
func (b *applyBatch) isEmitted() bool {
	select {
	case <-b.emitted:
		return true
	default:
		return false
	}
}

func (b *applyBatch) ack() {
	if b.left.Add(-1) == 0 {
		close(b.done)
	}
}

// pendingAck is a batch waiting for a loop to run under gen.
type pendingAck struct {
	gen uint64
	b   *applyBatch
}

// applySet is one fault change of one fault: the loops it changed, the
// chains it composed, and the batch that counts the loops that have not
// switched yet (nil when the loops have not started, so nothing need be
// waited for).
type applySet struct {
	b     *applyBatch
	items []pendingApply
	memo  map[chainKey]*chain
	fault string      // the fault changed
	fkind faults.Kind // and its kind
}

// itemsPool keeps the item lists of finished sets: a change to thousands
// of connections then allocates little but its new chains.
var itemsPool sync.Pool // of *[]pendingApply

// newApplySet returns a set whose batch is held open until wait.
func newApplySet() *applySet {
	b := &applyBatch{done: make(chan struct{}), emitted: make(chan struct{})}
	b.left.Store(1)
	as := &applySet{b: b}
	if p, ok := itemsPool.Get().(*[]pendingApply); ok {
		as.items = (*p)[:0]
	}
	return as
}

// wait waits until every loop of the set runs under its change, or has
// stopped, or faultApplyTimeout passed, then emits each one's event
// (fault-applied or fault-cleared): the event means the change is in
// force.
func (as *applySet) wait() {
	if as == nil {
		return
	}
	if as.b != nil {
		as.b.ack() // the hold newApplySet took
		if len(as.items) > 0 {
			timer := time.NewTimer(faultApplyTimeout)
			select {
			case <-as.b.done:
			case <-timer.C:
			}
			timer.Stop()
		}
	}
	for _, pa := range as.items {
		pa.s.emit(&Event{Kind: pa.kind, Dir: pa.l.dir, Fault: as.fault, FaultKind: as.fkind})
		if f := pa.fired; f != nil {
			pa.s.emit(&Event{Kind: EventFaultFired, Dir: pa.l.dir, Fault: f.f.Name, FaultKind: f.f.Kind})
		}
	}
	if as.b != nil {
		close(as.b.emitted)
	}
	if cap(as.items) > 0 {
		items := as.items
		clear(items)
		as.items = nil
		itemsPool.Put(&items)
	}
}

// signalApplied tells the batches waiting on l that it runs under its
// latest gen, or has stopped.
func (s *session) signalApplied(l *loop) (acked bool) {
	s.mu.Lock()
	if len(l.acks) == 0 {
		s.mu.Unlock()
		return false
	}
	applied, stopped := l.applied.Load(), l.stoppedRun.Load()
	l.unemitted = slices.DeleteFunc(l.unemitted, (*applyBatch).isEmitted)
	kept := l.acks[:0]
	for _, a := range l.acks {
		if stopped || a.gen <= applied {
			a.b.ack()
			l.unemitted = append(l.unemitted, a.b)
		} else {
			kept = append(kept, a)
		}
	}
	acked = len(kept) < len(l.acks)
	clear(l.acks[len(kept):])
	l.acks = kept
	s.mu.Unlock()
	return acked
}

// awaitApplied waits until the events of the fault changes l switched to
// are out (at most faultApplyTimeout, as their waiter waits), so that what
// the loop does under them is recorded after they are. Called by the loop
// before a fault fires.
func (s *session) awaitApplied(l *loop) {
	s.mu.Lock()
	pending := l.unemitted
	l.unemitted = nil
	s.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	timer := time.NewTimer(faultApplyTimeout)
	defer timer.Stop()
	for _, b := range pending {
		select {
		case <-b.emitted:
		case <-timer.C:
			return
		}
	}
}

// poke wakes the loop if it waits on its wake channel.
func (l *loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (s *session) wakeLoops() {
	s.up.poke()
	s.down.poke()
}

// resume decides whether a copy loop that returned err goes round again:
// after a chain change, or after the read deadline of a kick (which it then
// clears), unless the session is stopping.
func (s *session) resume(l *loop, err error) bool {
	switch {
	case errors.Is(err, errRechain):
		return !s.isStopped()
	case errors.Is(err, errStopped):
		return false
	case !l.kick.Load() || !errors.Is(err, errDeadline):
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	l.kick.Store(false)
	_ = l.src.SetReadDeadline(time.Time{})
	return true
}

// copyThrough relays one direction through its fault chain until EOF (nil),
// an error, or a chain change (errRechain): chunk by chunk, by splice when
// the chain only times or counts bytes, else through a buffer in user space.
func (s *session) copyThrough(l *loop, c, eff *chain, until int64) error {
	if eff != nil && eff.halfClose != nil && !l.halfClosed {
		s.fireHalfClose(l, eff.halfClose)
	}
	switch {
	case l.halfClosed:
		return s.discard(l, c, nil)
	case eff.stall != nil:
		return s.stall(l, c, eff.stall)
	case eff.blackhole != nil:
		return s.discard(l, c, eff.blackhole)
	}
	base := bufSize
	if eff.corrupt == nil && eff.slice == nil {
		base = spliceChunkMax // no buffer: relayChunk splices
	}
	if eff.rate > 0 {
		// Read no more than 50ms worth at a time, so pacing stays smooth.
		base = int(min(int64(base), max(1, eff.rate/20)))
	}
	// relayChunk counts the bytes it takes under s.mu, while c is still
	// the loop's chain: a change needs no wake while the loop waits.
	if !s.beginChecking(l, c) {
		return errRechain
	}
	defer s.endChecking(l)
	stop := int64(-1) // the byte count at which an armed fault acts
	if until > 0 {
		stop = addSat(l.n.Load(), until)
	}
	limit, limitAt := l.firstLimit(eff)
	for l.chain.Load() == c {
		chunk := base
		if limit != nil {
			left := limitAt - l.n.Load()
			if left <= 0 {
				s.awaitApplied(l)
				s.fireClose(limit, Event{Dir: l.dir}, false, false)
				return errLimit
			}
			chunk = int(min(int64(chunk), left))
		}
		if stop >= 0 {
			left := stop - l.n.Load()
			if left <= 0 {
				return errRechain
			}
			chunk = int(min(int64(chunk), left))
		}
		if err := s.relayChunk(l, c, eff, chunk); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
	return errRechain
}

// effective returns what of chain c acts at the loop's byte count now and
// on exchange k (see session.exchangeAt), and how many more bytes until
// the next fault waiting for AfterBytes acts (0 if none waits). A fault's
// AfterBytes count from the loop's first run under it.
func (l *loop) effective(c *chain, k int64) (*chain, int64) {
	if c == nil || !c.armed {
		return c, 0
	}
	l.exchSeen = k
	n := l.n.Load()
	var acting []*activeFault
	var until int64
	for _, af := range c.all {
		if !af.f.OnExchange(k) {
			continue
		}
		if af.f.AfterBytes > 0 {
			if l.armedFrom == nil {
				l.armedFrom = make(map[*activeFault]int64)
			}
			from, ok := l.armedFrom[af]
			if !ok {
				from = n
				l.armedFrom[af] = from
			}
			if at := addSat(from, af.f.AfterBytes); n < at {
				if until == 0 || at-n < until {
					until = at - n
				}
				continue
			}
		}
		acting = append(acting, af)
	}
	return composeChain(acting), until
}

// spliceChunkMax is the most a fault loop splices at once: what a pipe of
// Go's splice holds.
const spliceChunkMax = 1 << 20

// bufSize is the most a fault loop reads at once.
const bufSize = 64 << 10

// relayChunk relays up to chunk bytes through chain c: by spliceChunk when
// no fault of c looks at the bytes, else it counts the queued bytes (see
// noteQueued), reads up to chunk of them into a pooled buffer and writes
// them on through the chain. Counting first keeps an idle faulted
// connection from holding a buffer.
func (s *session) relayChunk(l *loop, pub, c *chain, chunk int) error {
	l.holdPub = pub
	if c.corrupt == nil && c.slice == nil {
		// No fault looks at the bytes or cuts the writes: they can stay
		// in the kernel.
		return s.spliceChunk(l, pub, c, chunk)
	}
	// Count the bytes before taking a buffer, so that an idle loop holds
	// none, and read only those (see noteQueued); under latency, as
	// spliceChunk does, with when they came (latencyChunk).
	var (
		q    int
		when time.Time
		err  error
	)
	if len(c.latency) > 0 {
		q, when, err = s.latencyChunk(l, pub, chunk)
	} else {
		q, err = s.noteQueued(l, pub)
	}
	if err != nil {
		return err
	}
	if s.exchangeMoved(l, pub) {
		l.arrChain = nil // the chunk is not taken: count again
		return errRechain
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	// The bytes are queued, so the read does not wait; should it stop
	// short (a kick's deadline), what it read still goes on.
	n, rerr := io.ReadFull(l.src, (*bp)[:min(q, chunk)])
	if l.arrChain == pub {
		l.arrQueued -= n
	}
	if n > 0 {
		if d := c.delay(); d > 0 {
			if err := s.holdFrom(l, c, holdLatency, when, d); err != nil {
				return err
			}
		}
		if err := s.writeOut(l, c, (*bp)[:n]); err != nil {
			return err
		}
	}
	return rerr
}

// spliceChunk relays up to chunk bytes without copying them through user
// space, for chains whose faults act only on timing and counts (latency,
// bandwidth, limit): once the source is readable it notes how many bytes
// are queued, leaves them in the kernel for the chain's delay, then splices
// exactly those, so each byte is held at least the delay and none that came
// later is taken early. pub is the loop's chain, of which c is what acts
// now (see loop.effective): the count is taken only while pub is in force
// (see noteQueued). It returns io.EOF at the source's EOF.
func (s *session) spliceChunk(l *loop, pub, c *chain, chunk int) error {
	l.holdPub = pub
	var n int64
	if len(c.latency) > 0 {
		// Each chunk is held from when its bytes were first counted, not
		// from when the loop got to them: a stream under latency L comes
		// out L late, not up to 2L (see latencyChunk, holdFrom).
		k, when, err := s.latencyChunk(l, pub, chunk)
		if err != nil {
			return err
		}
		if s.exchangeMoved(l, pub) {
			l.arrChain = nil // the chunk is not taken: count again
			return errRechain
		}
		n = int64(k)
		if d := c.delay(); d > 0 {
			if err := s.holdFrom(l, c, holdLatency, when, d); err != nil {
				return err
			}
		}
	} else {
		q, err := s.noteQueued(l, pub)
		if err != nil {
			return err
		}
		if s.exchangeMoved(l, pub) {
			return errRechain
		}
		n = int64(min(q, chunk))
	}
	return s.spliceN(l, pub, c, n)
}

// spliceN splices n bytes, counted queued in l's source under pub, to its
// destination, and paces them under c.
func (s *session) spliceN(l *loop, pub, c *chain, n int64) error {
	l.lr = io.LimitedReader{R: l.src, N: n}
	s.noteExchange(l)
	mv := s.beforeMove()
	w, err := l.dst.ReadFrom(&l.lr)
	l.n.Add(w)
	l.afterMove(mv, w)
	if l.arrChain == pub {
		l.arrQueued -= int(w)
	}
	if err == nil && w < n {
		err = io.ErrUnexpectedEOF // queued bytes cannot vanish
	}
	if err == nil {
		err = s.pace(l, c, w)
	}
	return err
}

// queueNoter is a loop's way to wait for bytes and note how many are
// queued (see session.noteQueued), or take them (session.takeQueued),
// built once per loop so that it allocates nothing.
type queueNoter struct {
	rc  syscall.RawConn
	pub *chain // the chain the loop runs under
	q   int
	err error
	fn  func(fd uintptr) bool

	// take: read the queued bytes into bp (at most max of them) instead of
	// counting them; bp is taken from smallPool only while bytes are there
	// to read, so an idle loop holds no buffer.
	take bool
	max  int
	bp   *[]byte
}

// noterOf returns l's queueNoter, made on first use.
func (s *session) noterOf(l *loop) (*queueNoter, error) {
	if l.noter != nil {
		return l.noter, nil
	}
	rc, err := l.src.SyscallConn()
	if err != nil {
		return nil, err
	}
	n := &queueNoter{rc: rc}
	n.fn = func(fd uintptr) bool {
		s.mu.Lock()
		if l.chain.Load() != n.pub {
			s.mu.Unlock()
			n.err = errRechain
			return true
		}
		var q int
		var err error
		if n.take {
			if n.bp == nil {
				n.bp = smallPool.Get().(*[]byte)
			}
			q, err = recvNow(fd, (*n.bp)[:n.max])
		} else {
			q, err = peekQueued(fd)
		}
		s.mu.Unlock()
		if err == unix.EAGAIN || err == unix.EINTR {
			if n.bp != nil {
				smallPool.Put(n.bp) // idle: hold no buffer while waiting
				n.bp = nil
			}
			return false
		}
		n.q, n.err = q, err
		return true
	}
	l.noter = n
	return n, nil
}

// noteQueued waits until the loop's source has bytes queued, EOF (io.EOF)
// or an error, and returns how many bytes are queued. It counts them under s.mu,
// and only while the loop's chain is still pub (else errRechain), in one
// syscall (peekQueued): a fault change made before the count acts on
// every byte counted, one made after it acts from the next count. It
// honours the read deadline.
func (s *session) noteQueued(l *loop, pub *chain) (int, error) {
	n, err := s.noterOf(l)
	if err != nil {
		return 0, err
	}
	n.pub, n.q, n.err = pub, 0, nil
	if err := n.rc.Read(n.fn); err != nil {
		return 0, err
	}
	if n.err == nil && n.q == 0 {
		return 0, io.EOF
	}
	return n.q, n.err
}

// takeQueued is noteQueued for the no-fault path's small messages: it
// waits the same way, and under s.mu, while the loop's chain is still pub,
// reads what is queued (at most max bytes) into a buffer of smallPool in
// one syscall instead of counting it: the bytes taken are the bytes
// counted, so a fault change made before the read acts on none of them
// and one made after it acts from the next. It returns the buffer (nil
// with an error, or io.EOF at EOF) holding the n bytes read; the caller
// puts it back.
func (s *session) takeQueued(l *loop, pub *chain, max int) (*[]byte, int, error) {
	n, err := s.noterOf(l)
	if err != nil {
		return nil, 0, err
	}
	n.pub, n.q, n.err, n.take, n.max = pub, 0, nil, true, max
	err = n.rc.Read(n.fn)
	bp, q := n.bp, n.q
	n.take, n.bp = false, nil
	if err == nil {
		err = n.err
	}
	if err == nil && q == 0 {
		err = io.EOF
	}
	if err != nil {
		if bp != nil {
			smallPool.Put(bp)
		}
		return nil, 0, err
	}
	return bp, q, nil
}

// beginChecking marks l as a loop that looks at its chain under s.mu
// before it takes any byte (noteQueued), or takes none (stall), so that a
// quiet change is in force without waking it (see applySet.change). It
// returns false, changing nothing, if c is no longer l's chain.
func (s *session) beginChecking(l *loop, c *chain) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.chain.Load() != c {
		return false
	}
	l.checking = true
	return true
}

// endChecking ends what beginChecking began.
func (s *session) endChecking(l *loop) {
	s.mu.Lock()
	l.checking = false
	s.mu.Unlock()
}

// noFaults is the chain of a loop with no fault in force, for spliceChunk.
var noFaults = &chain{}

// spliceRelay relays one direction with no fault acting until EOF (nil),
// an error or a chain change (errRechain), by Go's splice path: it waits
// until the source is readable, notes under s.mu how many bytes are queued
// (if the loop's chain is still pub), and has the destination's ReadFrom
// splice exactly those, through an *io.LimitedReader over the source,
// which net splices as it does the bare *net.TCPConn. Because bytes are
// noted under the lock that fault changes take, a change whose chain does
// nothing to an idle connection (chain.quiet) is in force the moment it
// is published, with no wake: the loop sees it before it notes another
// byte. See applySet.change.
//
// pub is nil, or a chain whose faults all wait for AfterBytes: then the
// loop relays until more bytes (the first of them starts acting) and
// returns errRechain there, so that copyLoop takes what acts.
func (s *session) spliceRelay(l *loop, pub *chain, until int64) error {
	if !s.beginChecking(l, pub) {
		return errRechain
	}
	defer s.endChecking(l)
	stop := int64(-1)
	if until > 0 {
		stop = addSat(l.n.Load(), until)
	}
	for {
		chunk := math.MaxInt
		if stop >= 0 {
			left := stop - l.n.Load()
			if left <= 0 {
				return errRechain
			}
			chunk = int(min(left, math.MaxInt))
		}
		if err := s.relayQueued(l, pub, chunk); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// smallMax is the most bytes the no-fault path moves through user space at
// once (see relayQueued), and the size of smallPool's buffers.
const smallMax = 16 << 10

// smallPool holds the buffers the no-fault path reads small messages into.
var smallPool = sync.Pool{New: func() any { b := make([]byte, smallMax); return &b }}

// relayQueued relays up to chunk bytes queued in l's source with no fault
// acting, the cheapest way for how much is queued:
//
//   - Small messages (the loop's last take did not fill a buffer): one
//     read of what is queued into a pooled buffer (takeQueued), one write:
//     the two syscalls of a plain relay, where counting and splicing
//     through a pipe takes three.
//   - Bulk (the last take filled the buffer, so more was probably
//     waiting): count what is queued (noteQueued) and, if it is at least
//     smallMax, splice it (spliceN), never copying it through user space;
//     less than that is read and written as a small message, and the loop
//     goes back to taking.
//
// Either way the bytes moved are exactly those counted or taken under s.mu
// while pub was in force (see noteQueued). A chain that counts exchanges
// takes the splice path only, which checks for a new exchange between
// counting and moving bytes.
func (s *session) relayQueued(l *loop, pub *chain, chunk int) error {
	if pub != nil && pub.exch {
		return s.spliceChunk(l, pub, noFaults, chunk)
	}
	var (
		bp  *[]byte
		n   int
		err error
	)
	if !l.bulk {
		bp, n, err = s.takeQueued(l, pub, min(chunk, smallMax))
		if err != nil {
			return err
		}
		l.bulk = n == smallMax
	} else {
		q, err := s.noteQueued(l, pub)
		if err != nil {
			return err
		}
		if q = min(q, chunk); q >= smallMax {
			return s.spliceN(l, pub, noFaults, int64(q))
		}
		l.bulk = false
		bp = smallPool.Get().(*[]byte)
		// The q bytes are queued, so the read does not wait; should it stop
		// short (a kick's deadline), what it read still goes on.
		n, err = io.ReadFull(l.src, (*bp)[:q])
	}
	if n > 0 {
		if werr := s.write(l, (*bp)[:n]); werr != nil {
			err = werr
		}
	}
	smallPool.Put(bp)
	return err
}

// forgetRemoved drops the byte counts kept for faults no longer in the
// loop's chain, so a long connection does not keep every fault it saw.
func (l *loop) forgetRemoved() {
	if len(l.limitFrom) == 0 && len(l.armedFrom) == 0 {
		return
	}
	var all []*activeFault
	if c := l.chain.Load(); c != nil {
		all = c.all
	}
	gone := func(af *activeFault, _ int64) bool { return !slices.Contains(all, af) }
	maps.DeleteFunc(l.limitFrom, gone)
	maps.DeleteFunc(l.armedFrom, gone)
}

// firstLimit returns the limit fault of c that is used up first and the
// loop's byte count at which it is; nil if c has none. A limit counts from
// the loop's first run under it: since the switch, no byte bypassed it.
func (l *loop) firstLimit(c *chain) (*activeFault, int64) {
	var first *activeFault
	var at int64
	for _, af := range c.limits {
		if l.limitFrom == nil {
			l.limitFrom = make(map[*activeFault]int64)
		}
		from, ok := l.limitFrom[af]
		if !ok {
			from = l.n.Load()
			l.limitFrom[af] = from
		}
		if end := addSat(from, af.f.Bytes); first == nil || end < at {
			first, at = af, end
		}
	}
	return first, at
}

// writeOut writes b to the loop's destination, in slices if the chain
// slices, and paced if it limits bandwidth.
func (s *session) writeOut(l *loop, c *chain, b []byte) error {
	piece := len(b)
	if c.slice != nil {
		piece = c.slice.f.Size
	}
	if c.corrupt != nil {
		c.corrupt.flip(b)
	}
	for len(b) > 0 {
		if c.slice != nil && c.slice.f.SizeVariation > 0 {
			piece = c.slice.pieceSize()
		}
		k := min(piece, len(b))
		if err := s.write(l, b[:k]); err != nil {
			return err
		}
		b = b[k:]
		if err := s.pace(l, c, int64(k)); err != nil { // all k written: write returned no error
			return err
		}
		if c.slice != nil && c.slice.f.Delay > 0 && len(b) > 0 {
			if err := s.hold(l, c, holdSlice, c.slice.f.Delay); err != nil {
				return err
			}
		}
	}
	return nil
}

// write writes b to l's destination, counts what it wrote, and stamps
// the write for the pool's judge and the exchange count.
func (s *session) write(l *loop, b []byte) error {
	s.noteExchange(l)
	mv := s.beforeMove()
	if l.w == nil {
		rw, err := newRawWriter(l.dst)
		if err != nil {
			return err
		}
		l.w = rw
	}
	w, err := l.w.write(b)
	l.n.Add(int64(w))
	l.afterMove(mv, int64(w))
	return err
}

// beforeMove and afterMove stamp a write of w bytes by l with its place in
// the session's order of writes (see loop.lastMove). Each loop takes its
// number before it writes: a reply can only be read after the request's
// write began, so it is numbered after the request; and a request the
// client sends once it has read a reply is numbered after that reply.
// Only pool mode keeps the order.
func (s *session) beforeMove() uint64 {
	if s.p.pool == nil {
		return 0
	}
	return s.moves.Add(1)
}

func (l *loop) afterMove(mv uint64, w int64) {
	if w > 0 {
		l.lastMove = mv
	}
}

// pace holds the loop after w bytes were written until a bandwidth fault's
// rate allows more.
func (s *session) pace(l *loop, c *chain, w int64) error {
	if c.rate <= 0 {
		return nil
	}
	if l.paceChain != c {
		// Chains are shared between loops: the pacing is the loop's, and
		// starts again under each chain.
		l.paceChain, l.paceStart, l.paceSent = c, time.Now(), 0
	}
	l.paceStart, l.paceSent = capCredit(l.paceStart, l.paceSent, c.rate, time.Now()) // see paceBurst
	l.paceSent = addSat(l.paceSent, w)
	due := l.paceStart.Add(rateTime(l.paceSent, c.rate))
	if d := time.Until(due); d > 0 {
		return s.hold(l, c, holdPace, d)
	}
	return nil
}

// holdKind says what a hold holds back, so that a fault change can tell
// whether the new chain still holds it (see loop.reheld).
type holdKind uint8

const (
	holdLatency   holdKind = iota // a chunk, for the latency faults' delay
	holdPace                      // the next chunk, for a bandwidth fault's rate
	holdSlice                     // the next piece of a sliced chunk
	holdSlowClose                 // a FIN, for a slow-close fault
)

// hold waits d, what chain c (what acts of the loop's chain l.holdPub) asks
// for a chunk read or noted as queued under l.holdPub, or for a FIN. The
// session stopping cuts it short. So does a fault change, as far as the
// loop's new chain no longer holds what c held (see loop.reheld): removing
// or shortening a latency, bandwidth, slice or slow-close fault is in force
// on what it holds, which goes on at once, in order.
func (s *session) hold(l *loop, c *chain, k holdKind, d time.Duration) error {
	return s.holdFrom(l, c, k, time.Now(), d)
}

// holdFrom is hold for d counted from start, which may be past. A latency
// hold whose loop counts arrivals (see latencyChunk) notes, every
// arrivalTick of its delay, the bytes that arrived in the meantime, so
// that they are held from when they came, not from when the loop got to
// them.
func (s *session) holdFrom(l *loop, c *chain, k holdKind, start time.Time, d time.Duration) error {
	pub := l.holdPub
	woke := false
	defer func() {
		if woke {
			l.poke() // pass the wake-up on to the loop
		}
	}()
	var tick <-chan time.Time
	if k == holdLatency && l.arrChain == pub && pub != nil {
		if every := arrivalTick(d); every > 0 {
			tk := time.NewTicker(every)
			defer tk.Stop()
			tick = tk.C
		}
	}
	var t *time.Timer
	for {
		if nc := l.chain.Load(); nc != pub {
			pub = nc
			d = l.reheld(k, c, nc, d)
		}
		left := d - time.Since(start)
		if left <= 0 {
			return nil
		}
		if t == nil {
			t = time.NewTimer(left)
			defer t.Stop()
		} else {
			t.Reset(left)
		}
		select {
		case <-t.C:
			return nil
		case <-tick:
			s.noteArrivals(l, pub)
		case <-l.wake:
			if s.isStopped() {
				return errStopped
			}
			woke = true
		}
	}
}

// arrival is a batch of n bytes a latency loop counted in its source's
// queue at when, beyond those it had counted before.
type arrival struct {
	n    int
	when time.Time
}

// arrivalTick is how often a latency hold of d looks for bytes that
// arrived meanwhile: a tenth of d, between 1 and 10 ms, so that a byte is
// held at most that much longer than its delay; 0 (never) for a delay
// under 2 ms, where the loop's next count is no later than that anyway.
func arrivalTick(d time.Duration) time.Duration {
	if d < 2*time.Millisecond {
		return 0
	}
	return min(max(d/10, time.Millisecond), 10*time.Millisecond)
}

// latencyChunk returns the next chunk of at most chunk bytes a loop under
// latency chain pub relays, and when its bytes were first counted: the
// oldest batch of arrivals counted while an earlier chunk was held, else
// what noteQueued counts now. The rest of a count larger than chunk waits
// as an arrival of the same time. Counts kept under another chain are
// dropped (the bytes stay queued, and are counted again under pub).
func (s *session) latencyChunk(l *loop, pub *chain, chunk int) (int, time.Time, error) {
	if l.arrChain != pub {
		l.arrivals, l.arrChain, l.arrQueued = l.arrivals[:0], pub, 0
	}
	if len(l.arrivals) == 0 {
		q, err := s.noteQueued(l, pub)
		if err != nil {
			return 0, time.Time{}, err
		}
		l.arrivals, l.arrQueued = append(l.arrivals, arrival{q, time.Now()}), q
	}
	a := &l.arrivals[0]
	n, when := min(a.n, chunk), a.when
	if a.n -= n; a.n == 0 {
		l.arrivals = append(l.arrivals[:0], l.arrivals[1:]...)
	}
	return n, when, nil
}

// noteArrivals counts, while the loop's chain is still pub, the bytes that
// arrived in its source since it last counted (SIOCINQ, which leaves a
// pending socket error for the loop to read), as a new batch of arrivals.
func (s *session) noteArrivals(l *loop, pub *chain) {
	n := l.noter
	if n == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.chain.Load() != pub || l.arrChain != pub {
		return
	}
	var q int
	var qerr error
	if err := n.rc.Control(func(fd uintptr) { q, qerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || qerr != nil {
		return
	}
	if q > l.arrQueued {
		l.arrivals = append(l.arrivals, arrival{q - l.arrQueued, time.Now()})
		l.arrQueued = q
	}
}

// reheld returns how long, from its start, a hold of kind k for d that
// chain c asked for lasts now that the loop's chain is nc: as long, if what
// acts of nc holds it the same way (the same latency faults, the same rate,
// slice or slow-close), else what nc asks (a new draw of its latency, or
// nothing: pacing and slicing start again under nc).
func (l *loop) reheld(k holdKind, c, nc *chain, d time.Duration) time.Duration {
	eff, _ := l.effective(nc, l.exchSeen)
	if eff == nil {
		return 0
	}
	switch k {
	case holdLatency:
		if slices.Equal(eff.latency, c.latency) {
			return d
		}
		return eff.delay()
	case holdPace:
		if eff.rate == c.rate {
			return d
		}
	case holdSlice:
		if eff.slice == c.slice {
			return d
		}
	case holdSlowClose:
		if eff.slowClose == c.slowClose {
			return d
		}
	}
	return 0
}

// stall reads nothing until the chain changes or the session stops. (A
// stall with drop discards what was queued when it is removed: detach.)
func (s *session) stall(l *loop, c *chain, af *activeFault) error {
	// A stalled loop reads nothing: a change is in force at once, and
	// the poke that comes with it wakes the loop.
	if !s.beginChecking(l, c) {
		return errRechain
	}
	defer s.endChecking(l)
	s.reportFired(l, &l.firedStall, af)
	for l.chain.Load() == c {
		<-l.wake
		if s.isStopped() {
			return errStopped
		}
	}
	return errRechain
}

// reportFired emits fault-fired for af on l, unless *slot (l.firedStall
// or l.firedBlackhole) says it was reported already.
func (s *session) reportFired(l *loop, slot **activeFault, af *activeFault) {
	s.mu.Lock()
	first := *slot != af
	*slot = af
	s.mu.Unlock()
	if first {
		s.awaitApplied(l)
		s.emit(&Event{Kind: EventFaultFired, Dir: l.dir, Fault: af.f.Name, FaultKind: af.f.Kind})
	}
}

// discard reads and drops bytes until EOF, an error or a chain change.
func (s *session) discard(l *loop, c *chain, bh *activeFault) error {
	if !s.beginChecking(l, c) {
		return errRechain
	}
	defer s.endChecking(l)
	if bh != nil {
		s.reportFired(l, &l.firedBlackhole, bh)
	}
	for {
		q, err := s.noteQueued(l, c)
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := dropN(l.src, q); err != nil {
			return err
		}
	}
}

// fireHalfClose sends the FIN of a half-close fault, once per loop.
func (s *session) fireHalfClose(l *loop, af *activeFault) {
	l.halfClosed = true
	s.awaitApplied(l)
	s.noteEnd(ByProxy, FIN, fmt.Errorf("fault %q", af.f.Name))
	// The event first: once the FIN is out, the peer's answer to it
	// may be recorded.
	s.emit(&Event{Kind: EventFaultFired, Upstream: s.uc.id, Dir: l.dir, Fault: af.f.Name, FaultKind: af.f.Kind})
	_ = l.dst.CloseWrite()
	l.finSent.Store(true)
	if l.dir == Up {
		s.uc.halfClosed = true
	}
}
