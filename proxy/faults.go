package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

var (
	// ErrFaultExists is returned by AddFault for a name already in use.
	ErrFaultExists = errors.New("proxy: fault name taken")
	// ErrNoFault is returned by RemoveFault for a name not in use.
	ErrNoFault = errors.New("proxy: no such fault")
	// ErrNotPool is returned by AddFault for a pool fault on a dial-mode
	// proxy.
	ErrNotPool = errors.New("proxy: fault needs pool mode")
	// ErrTooManyFaults is returned by AddFault on a proxy that holds
	// MaxFaults faults.
	ErrTooManyFaults = errors.New("proxy: too many faults")
)

// MaxFaults is the most faults a proxy holds at once. A new connection's
// cost does not grow with faults that cannot target it (see
// faultSet.candidates), but one that each fault targets pays for each.
const MaxFaults = 1000

// activeFault is a fault added to a proxy.
type activeFault struct {
	f     faults.Fault // normalized
	seq   uint64       // order of adding, from 1
	timer *time.Timer  // starts it after f.After, then removes it after f.For; guarded by the fault mutex

	// Guarded by the proxy's fault mutex:
	acting     bool          // f.After has passed
	pickRng    *rand.Rand    // draws for f.Target.Prob
	considered int           // candidates seen, for f.Target.Every
	picked     int           // connections picked, for f.Target.Count
	stop       chan struct{} // idle-close: closed to stop its watcher

	rngMu sync.Mutex // guards rng
	rng   *rand.Rand
}

// jitter draws a duration in [0, f.Jitter]. It is safe for any Jitter,
// math.MaxInt64 included (faults.Normalized bounds it, but a fault that got
// past it must not panic the draw).
func (af *activeFault) jitter() time.Duration {
	if af.f.Jitter <= 0 {
		return 0
	}
	af.rngMu.Lock()
	defer af.rngMu.Unlock()
	return time.Duration(af.rng.Uint64N(uint64(af.f.Jitter) + 1))
}

// addSat returns a+b for non-negative a and b, or math.MaxInt64 where the
// sum would overflow: byte counts and durations built from faults saturate
// rather than wrap.
func addSat[T ~int64](a, b T) T {
	if b > 0 && a > T(math.MaxInt64)-b {
		return T(math.MaxInt64)
	}
	return a + b
}

// faultSet is a proxy's faults. Its mutex also orders attaching faults to
// sessions, so a session never misses a fault or keeps a removed one.
type faultSet struct {
	mu     sync.Mutex     // guards the fields below and every loop's active list
	list   []*activeFault // in the order added (seq)
	seq    uint64
	timers sync.WaitGroup // running For timers
	closed bool

	// The faults that may target a session accepted from now on, by seq:
	// which all or new (forAll), which ids, by ID (byID), and which
	// existing, which target only sessions live when they were added
	// (existing). Faults for no session (refuse, stale with target idle)
	// are in none. A session looks only at these (candidates), so its
	// cost does not grow with faults that cannot target it.
	forAll   []*activeFault
	byID     map[uint64][]*activeFault
	existing []*activeFault
}

// index adds af to the lists candidates reads. Called with fs.mu held.
func (fs *faultSet) index(af *activeFault) {
	ins := func(l []*activeFault) []*activeFault {
		i, _ := slices.BinarySearchFunc(l, af.seq, func(o *activeFault, seq uint64) int { return cmp.Compare(o.seq, seq) })
		return slices.Insert(l, i, af)
	}
	switch {
	case af.f.Kind == faults.KindRefuse:
	case af.f.Target.Which == faults.All || af.f.Target.Which == faults.New:
		fs.forAll = ins(fs.forAll)
	case af.f.Target.Which == faults.Existing:
		fs.existing = ins(fs.existing)
	case af.f.Target.Which == faults.ByID:
		if fs.byID == nil {
			fs.byID = make(map[uint64][]*activeFault)
		}
		for _, id := range af.f.Target.IDs {
			if l := fs.byID[id]; !slices.Contains(l, af) {
				fs.byID[id] = ins(l)
			}
		}
	}
}

// unindex removes af from the lists candidates reads. Called with fs.mu
// held.
func (fs *faultSet) unindex(af *activeFault) {
	del := func(l []*activeFault) []*activeFault {
		if i := slices.Index(l, af); i >= 0 {
			return slices.Delete(l, i, i+1)
		}
		return l
	}
	fs.forAll = del(fs.forAll)
	fs.existing = del(fs.existing)
	if af.f.Target.Which == faults.ByID {
		for _, id := range af.f.Target.IDs {
			if l := del(fs.byID[id]); len(l) > 0 {
				fs.byID[id] = l
			} else {
				delete(fs.byID, id)
			}
		}
	}
}

// replace puts af in old's place, in the list and the index. Called with
// fs.mu held.
func (fs *faultSet) replace(i int, af *activeFault) {
	fs.unindex(fs.list[i])
	fs.list[i] = af
	fs.index(af)
}

// candidates returns, in the order they were added, the faults whose
// Target.Which may select s: which all or new, which ids with s's ID, and
// which existing added while s was live. Its cost grows with those only,
// not with the proxy's other faults. Called with fs.mu held.
func (fs *faultSet) candidates(s *session) []*activeFault {
	ids := fs.byID[s.id]
	i, _ := slices.BinarySearchFunc(fs.existing, s.faultEpoch+1, func(o *activeFault, seq uint64) int { return cmp.Compare(o.seq, seq) })
	ex := fs.existing[i:]
	if len(ids) == 0 && len(ex) == 0 {
		return fs.forAll // read only, under fs.mu
	}
	out := make([]*activeFault, 0, len(fs.forAll)+len(ids)+len(ex))
	out = append(append(append(out, fs.forAll...), ids...), ex...)
	slices.SortFunc(out, func(a, b *activeFault) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// pickNew makes the picks of the faults that may target s, a session
// just accepted, in accept order: each fault's Every, Prob and Count then
// count new connections in the order they came. Called with fs.mu held.
func (fs *faultSet) pickNew(s *session) {
	for _, af := range fs.candidates(s) {
		s.targetedBy(af)
	}
}

// AddFault adds a fault and returns it with its defaults filled in. It
// returns once the fault is in force on every live connection it targets,
// so a byte sent after AddFault returns goes through it. Each targeted
// copy loop gets the new chain of faults in one step, under the session's
// lock. A loop that looks at its chain under that lock before it takes any
// byte (one relaying by splice, with no fault or with faults that only
// time or count bytes) takes the change at its next byte, so when the new
// chain does nothing to an idle connection (latency, bandwidth, limit) it
// is in force at once and the loop is not woken. Any other loop is
// interrupted (a read deadline in the past on its source) and AddFault
// waits until it runs under the new fault. A loop blocked writing to a
// peer that does not read cannot read either and switches before its next
// read; AddFault waits at most faultApplyTimeout for it. New connections
// the fault targets get it before their first byte.
func (p *Proxy) AddFault(f faults.Fault) (faults.Fault, error) {
	nf, err := f.Normalized()
	if err != nil {
		return f, err
	}
	if nf.Kind == faults.KindStale && p.pool == nil {
		return f, fmt.Errorf("%w: %s", ErrNotPool, nf.Kind)
	}
	fs := &p.faults
	var pending *applySet
	defer func() { pending.wait() }()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return f, ErrProxyClosed
	}
	if len(fs.list) >= MaxFaults {
		return f, fmt.Errorf("%w: the proxy holds %d, the most it takes", ErrTooManyFaults, MaxFaults)
	}
	fs.seq++
	if nf.Name == "" {
		nf.Name = fmt.Sprintf("%s-%d", nf.Kind, fs.seq)
	}
	if slices.ContainsFunc(fs.list, func(af *activeFault) bool { return af.f.Name == nf.Name }) {
		return f, fmt.Errorf("%w: %q", ErrFaultExists, nf.Name)
	}
	seed := nf.Seed
	if seed == 0 {
		seed = p.cfg.Seed
	}
	af := &activeFault{
		f:       nf,
		seq:     fs.seq,
		rng:     rand.New(rand.NewPCG(seed, 1)),
		pickRng: rand.New(rand.NewPCG(seed, 2)),
	}
	fs.list = append(fs.list, af)
	fs.index(af)
	if nf.After > 0 {
		p.startTimer(af, nf.After, func() { p.activate(af) })
		return nf, nil
	}
	pending = p.actLocked(af)
	return nf, nil
}

// actLocked puts af in force on the live connections it picks, in ID
// order, and starts its For timer. Called with the fault mutex held.
func (p *Proxy) actLocked(af *activeFault) *applySet {
	af.acting = true
	if af.f.Kind.ProxyLevel() {
		switch af.f.Kind {
		case faults.KindIdleClose:
			p.pickLive(af)
			p.startIdleWatch(af)
		case faults.KindStale:
			p.pool.staleIdle(af.f.Mode, func(uc *upConn) {
				p.ev.emit(&Event{Kind: EventFaultFired, Upstream: uc.id, Fault: af.f.Name, FaultKind: af.f.Kind})
			})
		default:
			p.refuse()
		}
		if af.f.For > 0 {
			p.startTimer(af, af.f.For, func() { _ = p.RemoveFault(af.f.Name) })
		}
		return nil
	}
	live := p.liveSessions()
	slices.SortFunc(live, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	pending := newApplySet()
	for _, s := range live {
		if s.targetedBy(af) {
			s.attach(af, pending)
		}
	}
	if af.f.For > 0 {
		p.startTimer(af, af.f.For, func() { _ = p.RemoveFault(af.f.Name) })
	}
	return pending
}

// activate starts a fault whose After has passed, unless it was removed.
func (p *Proxy) activate(af *activeFault) {
	fs := &p.faults
	fs.mu.Lock()
	if fs.closed || !slices.Contains(fs.list, af) {
		fs.mu.Unlock()
		return
	}
	pending := p.actLocked(af)
	fs.mu.Unlock()
	pending.wait()
}

// startTimer runs fn after d, tracked so that Close can stop and wait for
// it. Called with the fault mutex held.
func (p *Proxy) startTimer(af *activeFault, d time.Duration, fn func()) {
	fs := &p.faults
	fs.timers.Add(1)
	af.timer = time.AfterFunc(d, func() {
		defer fs.timers.Done()
		fn()
	})
}

// RemoveFault removes the named fault from the proxy and from every
// connection it acts on, and returns once it acts on none (waiting as
// AddFault does). Bytes a latency fault already holds are still delivered
// after their delay. A direction left without faults goes back to splice.
func (p *Proxy) RemoveFault(name string) error {
	fs := &p.faults
	var pending *applySet
	defer func() { pending.wait() }()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	i := slices.IndexFunc(fs.list, func(af *activeFault) bool { return af.f.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrNoFault, name)
	}
	af := fs.list[i]
	fs.list = slices.Delete(fs.list, i, i+1)
	fs.unindex(af)
	af.stopWatch()
	if af.timer != nil && af.timer.Stop() {
		fs.timers.Done()
	}
	live := p.liveSessions()
	pending = newApplySet()
	for _, s := range live {
		s.detach(af, pending)
		delete(s.picks, af)
	}
	if af.acting && af.f.Kind == faults.KindRefuse && !slices.ContainsFunc(fs.list, func(o *activeFault) bool {
		return o.acting && o.f.Kind == faults.KindRefuse
	}) {
		return p.unrefuse()
	}
	return nil
}

// Faults returns the proxy's faults in the order they were added.
func (p *Proxy) Faults() []faults.Fault {
	p.faults.mu.Lock()
	defer p.faults.mu.Unlock()
	out := make([]faults.Fault, len(p.faults.list))
	for i, af := range p.faults.list {
		out[i] = af.f
	}
	return out
}

// closeFaults stops the For timers and waits for any that fired.
func (p *Proxy) closeFaults() {
	fs := &p.faults
	fs.mu.Lock()
	fs.closed = true
	for _, af := range fs.list {
		af.stopWatch()
		if af.timer != nil && af.timer.Stop() {
			fs.timers.Done()
		}
	}
	fs.mu.Unlock()
	fs.timers.Wait()
}

func (p *Proxy) liveSessions() []*session {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		out = append(out, s)
	}
	return out
}

// targetedBy reports whether af applies to s: af is acting and picked s.
// The pick is made once per connection and kept. Called with the fault
// mutex held.
func (s *session) targetedBy(af *activeFault) bool {
	if !af.acting {
		return false
	}
	if picked, ok := s.picks[af]; ok {
		return picked
	}
	picked := s.candidateFor(af) && af.pick()
	if s.picks == nil {
		s.picks = make(map[*activeFault]bool)
	}
	s.picks[af] = picked
	return picked
}

// candidateFor reports whether af's Target.Which selects s.
func (s *session) candidateFor(af *activeFault) bool {
	switch t := af.f.Target; t.Which {
	case faults.New: // added before s was accepted
		return af.seq <= s.faultEpoch
	case faults.Existing: // added while s was live
		return af.seq > s.faultEpoch
	case faults.ByID:
		return slices.Contains(t.IDs, s.id)
	case faults.IdlePool: // stale on the idle pool only
		return false
	}
	return true
}

// pick decides for the next candidate by Target.Every, Prob and Count.
// Called with the fault mutex held.
func (af *activeFault) pick() bool {
	t := af.f.Target
	af.considered++
	switch {
	case t.Count > 0 && af.picked >= t.Count:
		return false
	case t.Every > 0 && af.considered%t.Every != 0:
		return false
	case t.Prob > 0 && af.pickRng.Float64() >= t.Prob:
		return false
	}
	af.picked++
	return true
}

// attach puts af in force on s, adding the loops to wait for to as.
// Called with the proxy's fault mutex held. A session whose copy loops are
// not set up yet gets its faults at setup.
func (s *session) attach(af *activeFault, as *applySet) {
	if !s.faultReady {
		return
	}
	switch {
	case af.f.Kind.AtConnect():
		return // acts when a connection starts: atConnect
	case af.f.Kind.OneShot():
		s.fireReset(af)
		return
	}
	for _, l := range []*loop{&s.up, &s.down} {
		if !af.f.Dir.Has(l.dir) || slices.Contains(l.active, af) {
			continue
		}
		as.change(s, l, EventFaultApplied, opAppend, 0, af)
	}
}

// detach takes af off s, adding the loops to wait for to as. Called with
// the proxy's fault mutex held.
func (s *session) detach(af *activeFault, as *applySet) {
	for _, l := range []*loop{&s.up, &s.down} {
		i := slices.Index(l.active, af)
		if i < 0 {
			continue
		}
		if af.f.Kind == faults.KindStall && af.f.Drop {
			// The loop reads nothing while the stall is in its chain, so
			// what is queued came during the stall: drop it here, before
			// the loop may read again.
			s.dropHeld(l)
		}
		as.change(s, l, EventFaultCleared, opDelete, i, af)
	}
}

// setupFaults puts the proxy's faults that target s in force, before its
// copy loops start: each loop gets its whole list of faults and one chain
// composed from it, so a new connection's cost grows with the faults that
// target it, once each.
func (s *session) setupFaults() {
	fs := &s.p.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	s.faultReady = true
	for _, af := range fs.candidates(s) {
		if !s.targetedBy(af) {
			continue
		}
		switch {
		case af.f.Kind.AtConnect():
			continue // acts when a connection starts: atConnect
		case af.f.Kind.OneShot():
			s.fireReset(af)
			continue
		}
		for _, l := range []*loop{&s.up, &s.down} {
			if af.f.Dir.Has(l.dir) && !slices.Contains(l.active, af) {
				if af.f.ByExchange() {
					s.exchOn.Store(true)
				}
				l.active = append(l.active, af)
				s.emit(&Event{Kind: EventFaultApplied, Dir: l.dir, Fault: af.f.Name, FaultKind: af.f.Kind})
			}
		}
	}
	// The loops have not started: in force from their first byte.
	for _, l := range []*loop{&s.up, &s.down} {
		if len(l.active) == 0 {
			continue
		}
		c := composeChain(l.active)
		l.active = c.all
		s.mu.Lock()
		l.gen.Add(1)
		l.chain.Store(c)
		s.mu.Unlock()
	}
}

// fireReset aborts the session with an RST toward the sides af names and
// an ordinary close toward the others.
func (s *session) fireReset(af *activeFault) {
	s.fireClose(af, Event{}, af.f.Side.Has(faults.ToClient), af.f.Side.Has(faults.ToUpstream))
}

// fireClose ends the session for fault af: an RST toward the client and
// the upstream as asked, a FIN otherwise. e carries the event's Dir.
func (s *session) fireClose(af *activeFault, e Event, resetClient, resetUpstream bool) {
	s.mu.Lock()
	if s.aborted || s.stopped {
		s.mu.Unlock()
		return
	}
	s.aborted, s.faultDirty = true, true
	uc := s.uc
	s.mu.Unlock()
	how := FIN
	if resetClient || resetUpstream {
		how = RST
	}
	s.noteEnd(ByProxy, how, fmt.Errorf("fault %q", af.f.Name))
	e.Kind, e.Upstream, e.Fault, e.FaultKind = EventFaultFired, uc.id, af.f.Name, af.f.Kind
	s.emit(&e)
	// Both sockets are set to reset before either is closed: in pool
	// mode, closing one ends the session, which may close the other
	// before this does.
	if resetClient {
		_ = s.client.SetLinger(0)
	}
	if resetUpstream {
		_ = uc.c.SetLinger(0)
	}
	closeSide(s.client, resetClient)
	closeSide(uc.c, resetUpstream)
	s.wakeLoops()
}

// closeSide closes c: abortively (RST) if reset, else with a FIN, first
// dropping what is queued unread in c, which would turn the FIN into an RST.
func closeSide(c *net.TCPConn, reset bool) {
	if reset {
		_ = c.SetLinger(0)
	} else {
		_ = discardQueued(c)
	}
	_ = c.Close()
}

// chain is what the faults on one direction do, in a fixed order: a
// half-close wins over everything (the direction is closed); then a stall
// (nothing moves); then a blackhole (bytes are dropped); then latency
// (every latency fault's delay adds up). It is immutable, and loops whose
// faults are the same share one (see applySet.rechain).
type chain struct {
	halfClose *activeFault
	stall     *activeFault
	blackhole *activeFault
	latency   []*activeFault
	rate      int64          // bandwidth: lowest rate; 0 if none
	slice     *activeFault   // smallest slice size
	limits    []*activeFault // limit faults; the loop counts each from its first run under it
	slowClose *activeFault   // the first slow-close
	corrupt   *activeFault   // the first corrupt

	all   []*activeFault // the faults composed
	armed bool           // some wait for AfterBytes or an exchange: see loop.effective
	exch  bool           // some act only on some exchanges: see session.exchangeAt
}

// composeChain composes the faults on one direction. It is called with
// the proxy's fault mutex held for a loop's active list, and by the loop
// itself for the faults acting at its byte count (loop.effective).
func composeChain(active []*activeFault) *chain {
	if len(active) == 0 {
		return nil
	}
	c := &chain{all: active}
	for _, af := range active {
		c.exch = c.exch || af.f.ByExchange()
		c.armed = c.armed || af.f.AfterBytes > 0 || c.exch
		switch af.f.Kind {
		case faults.KindHalfClose:
			c.halfClose = cmpFirst(c.halfClose, af)
		case faults.KindStall:
			c.stall = cmpFirst(c.stall, af)
		case faults.KindBlackhole:
			c.blackhole = cmpFirst(c.blackhole, af)
		case faults.KindLatency:
			c.latency = append(c.latency, af)
		case faults.KindBandwidth:
			if c.rate == 0 || af.f.Rate < c.rate {
				c.rate = af.f.Rate
			}
		case faults.KindSlice:
			if c.slice == nil || af.f.Size < c.slice.f.Size {
				c.slice = af
			}
		case faults.KindLimit:
			c.limits = append(c.limits, af)
		case faults.KindSlowClose:
			c.slowClose = cmpFirst(c.slowClose, af)
		case faults.KindCorrupt:
			c.corrupt = cmpFirst(c.corrupt, af)
		}
	}
	return c
}

// quiet reports whether nothing of c acts on a connection until a byte or
// EOF arrives: every fault but a half-close (which sends its FIN at once)
// and a limit of 0 bytes (which closes at once). A loop that checks its
// chain before it takes a byte can take such a chain when it next wakes;
// a stall or blackhole among them is reported fired when put in force
// (see applySet.change).
func (c *chain) quiet() bool {
	if c == nil {
		return true
	}
	if c.halfClose != nil {
		return false
	}
	for _, af := range c.limits {
		if af.f.Bytes == 0 {
			return false
		}
	}
	return true
}

func cmpFirst(have, af *activeFault) *activeFault {
	if have != nil {
		return have
	}
	return af
}

// delay is how long to hold a chunk: the sum of the latency faults' delays
// and jitters, saturating rather than wrapping.
func (c *chain) delay() time.Duration {
	var d time.Duration
	for _, af := range c.latency {
		d = addSat(addSat(d, af.f.Delay), af.jitter())
	}
	return d
}

// atConnect returns what the connection-start faults that target s ask: a
// drop-on-accept fault, or the sum of the connect-delay faults' delays.
func (s *session) atConnect() (drop *activeFault, delay time.Duration) {
	fs := &s.p.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, af := range fs.candidates(s) {
		if !af.f.Kind.AtConnect() || !s.targetedBy(af) {
			continue
		}
		switch af.f.Kind {
		case faults.KindDropOnAccept:
			drop = cmpFirst(drop, af)
		case faults.KindConnectDelay:
			delay = addSat(delay, af.f.Delay)
		}
	}
	return drop, delay
}

// flip flips one random bit in each byte of b that the fault picks.
func (af *activeFault) flip(b []byte) {
	af.rngMu.Lock()
	defer af.rngMu.Unlock()
	for i := range b {
		if af.rng.Float64() < af.f.Prob {
			b[i] ^= 1 << af.rng.IntN(8)
		}
	}
}

// startIdleWatch starts the goroutine that runs an idle-close fault; it
// stops when the fault is removed or the proxy closes, and fs.timers
// counts it. Called with the fault mutex held.
func (p *Proxy) startIdleWatch(af *activeFault) {
	af.stop = make(chan struct{})
	p.faults.timers.Add(1)
	go p.idleWatch(af, af.stop)
}

// idleWatch closes the targeted connections that have been idle for
// af.f.Idle.
func (p *Proxy) idleWatch(af *activeFault, stop <-chan struct{}) {
	defer p.faults.timers.Done()
	every := min(max(af.f.Idle/4, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		fs := &p.faults
		fs.mu.Lock()
		var idle []*session
		for _, s := range p.liveSessions() {
			if s.faultReady && s.targetedBy(af) && idleFor(s.client) >= af.f.Idle {
				idle = append(idle, s)
			}
		}
		fs.mu.Unlock()
		for _, s := range idle {
			s.idleClose(af)
		}
	}
}

// idleClose ends the session for an idle-close fault: the copy loops are
// interrupted as at any session end, then the client connection is closed
// with a FIN (RST with Abort).
func (s *session) idleClose(af *activeFault) {
	how := FIN
	if af.f.Abort {
		how = RST
	}
	s.mu.Lock()
	if s.stopped || s.aborted {
		s.mu.Unlock()
		return
	}
	s.closeClientHow = how
	s.mu.Unlock()
	s.noteEnd(ByProxy, how, fmt.Errorf("fault %q: idle", af.f.Name))
	s.emit(&Event{Kind: EventFaultFired, Fault: af.f.Name, FaultKind: af.f.Kind})
	s.interrupt()
}

// stopWatch stops an idle-close fault's watcher, once. Called with the
// fault mutex held.
func (af *activeFault) stopWatch() {
	if af.stop != nil {
		close(af.stop)
		af.stop = nil
	}
}

// staleFor returns the stale fault that picks s, if any. Called before the
// session's loops start.
func (s *session) staleFor() *activeFault {
	fs := &s.p.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, af := range fs.candidates(s) {
		if af.f.Kind == faults.KindStale && s.targetedBy(af) {
			return af
		}
	}
	return nil
}
