package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/testswitch"
)

// session relays one downstream connection. Its first goroutine (run) gets
// an upstream connection and starts the two copy loops, copyUp and copyDown;
// the one that stops last ends the session. Proxy.Close waits for all
// three goroutines through Proxy.sessWG.
type session struct {
	p       *Proxy
	id      uint64
	client  *net.TCPConn
	started time.Time

	up, down  loop
	loopsLeft atomic.Int32 // copy loops still running; the last to stop ends the session
	ran       bool         // the copy loops were started
	reused    bool         // the upstream connection came idle from the pool
	staleAt   *activeFault // a stale fault borrow applied, reported fired after setupFaults; owned by run

	moves atomic.Uint64 // orders the loops' writes (pool mode): see loop.lastMove

	// Request/response exchanges (see faults.Fault.FromExchange): counted
	// by copyUp once a fault that counts them applies to the session.
	exchOn    atomic.Bool  // some fault counts exchanges; set before its chain is published
	exch      atomic.Int64 // exchanges begun: runs of bytes up that followed bytes down
	downSince atomic.Bool  // copyDown is about to write or wrote since copyUp's last counted write (or none yet)

	faultEpoch uint64                // the proxy's fault count when s was accepted
	faultReady bool                  // faults attach to the loops now; guarded by the proxy's fault mutex
	picks      map[*activeFault]bool // each fault's pick of s, made once; guarded by the proxy's fault mutex

	mu             sync.Mutex // guards the fields below
	uc             *upConn    // the upstream connection, once there is one
	reusedUC       bool       // uc came idle from the pool
	downBase       uint64     // uc's bytes delivered before this session (pool mode)
	shut           bool       // the proxy is closing
	stopped        bool       // the loops have been interrupted
	stopAt         time.Time  // when they were
	aborted        bool       // both sockets were reset (dial mode)
	ended          bool       // by, how and endErr are set
	by             Side       // who ended the session first
	how            CloseHow
	endErr         error
	faultDirty     bool     // a fault reset the session
	closeClientHow CloseHow // an idle-close fault asked to close the client so (FIN or RST)

	relayMu sync.Mutex // held while a FIN or an RST is relayed and recorded (dial mode), so that what answers it is recorded after it

	pan panicState // a panic's recovery: see recover.go
}

// loop is one direction's copy loop and its outcome. err and byUs are
// written by the loop before it counts itself out of loopsLeft, and read
// only after all loops have.
type loop struct {
	dir      Direction
	src, dst *net.TCPConn
	n        atomic.Int64 // bytes written to dst
	err      error        // nil when the loop ended at EOF
	byUs     bool         // err is the session's own interrupt

	active     []*activeFault         // faults in force; guarded by the proxy's fault mutex
	limitFrom  map[*activeFault]int64 // limit faults: the byte count when the loop first ran under each; owned by the loop
	armedFrom  map[*activeFault]int64 // faults with AfterBytes: the byte count when the loop first ran under each; owned by the loop
	chain      atomic.Pointer[chain]  // what active does; nil: the splice path
	kick       atomic.Bool            // the chain changed and src has a past read deadline
	wake       chan struct{}          // (cap 1) poked on chain changes and when the session stops
	gen        atomic.Uint64          // chain changes published; bumped before chain is stored
	applied    atomic.Uint64          // the gen the loop runs under; see session.waitApplied
	stoppedRun atomic.Bool            // the loop has returned for good; set under the session's mu
	acks       []pendingAck           // fault changes waiting for the loop to switch; guarded by the session's mu
	unemitted  []*applyBatch          // changes the loop switched to whose events may not be out yet; guarded by the session's mu
	halfClosed bool                   // a half-close fault sent FIN on dst; owned by the loop
	finSent    atomic.Bool            // the proxy sent FIN on dst (relayed, or a half-close fault's); see blame
	early      error                  // an error recheck saw, which the loop ends with; owned by the loop's goroutine
	checking   bool                   // the loop checks its chain under mu before it notes a byte (spliceChunk); guarded by the session's mu
	w          *rawWriter             // writes to dst (session.write); owned by the loop
	noter      *queueNoter            // waits for src's bytes and counts them; owned by the loop
	lr         io.LimitedReader       // what spliceChunk hands to ReadFrom, kept so that it does not allocate; owned by the loop
	bulk       bool                   // the no-fault path's last take filled its buffer: count and splice (see relayQueued); owned by the loop

	// lastMove orders this loop's latest write against the other loop's
	// (pool mode; 0 if none): a number from session.moves taken just
	// before the write. up.lastMove > down.lastMove means a request went up
	// after the last reply bytes began to come down, so a reply may be
	// pending. Owned by the loop; read by finishPool after both stopped.
	lastMove uint64

	// Under latency (see session.latencyChunk): the batches of bytes
	// counted queued in src and not yet relayed, oldest first, valid while
	// arrChain is the loop's chain; arrQueued is how many bytes queued in
	// src those counts and the chunk being held account for. Owned by the
	// loop.
	arrivals  []arrival
	arrChain  *chain
	arrQueued int

	// exchSeen is the exchange loop.effective last took the faults
	// acting for. Owned by the loop.
	exchSeen int64

	// holdPub is the chain the loop's current chunk (or held FIN) was
	// taken under, which session.hold watches for changes. Owned by the
	// loop.
	holdPub *chain

	// The stall and blackhole reported fired on this loop (once each);
	// guarded by the session's mu.
	firedStall, firedBlackhole *activeFault

	// Bandwidth pacing under paceChain: when it started, bytes sent since.
	// Owned by the loop.
	paceChain *chain
	paceStart time.Time
	paceSent  int64
}

func (s *session) emit(e *Event) {
	if !s.p.ev.on() {
		return
	}
	e.Conn = s.id
	s.p.ev.emit(e)
}

func (s *session) run() {
	defer s.p.sessWG.Done()
	defer s.recoverRun()
	s.emit(&Event{Kind: EventAccepted})
	s.testHook(hookRun, nil)
	if drop, delay := s.atConnect(); drop != nil {
		s.emit(&Event{Kind: EventFaultFired, Fault: drop.f.Name, FaultKind: drop.f.Kind})
		resetClose(s.client)
		s.p.forget(s)
		s.emit(&Event{Kind: EventClosed, By: ByProxy, How: RST})
		return
	} else if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.p.ctx.Done():
			t.Stop()
		}
	}
	uc, reused, err := s.connect()
	if err != nil {
		s.fail(err)
		return
	}
	s.mu.Lock()
	s.uc, s.reusedUC, s.downBase = uc, reused, uc.delivered
	shut := s.shut
	s.mu.Unlock()
	if shut {
		s.emitStaleFired()
		s.finish()
		return
	}
	if h := s.p.testHookRelay; h != nil {
		h(uc)
	}
	// After a dial, hand over to two other goroutines and return: dialing
	// grew this goroutine's stack, and an idle session should not hold it.
	// After a borrow this goroutine relays itself, and starts only the
	// second copy loop. Whichever copy loop stops last ends the session.
	s.up.dir, s.up.src, s.up.dst = Up, s.client, uc.c
	s.downSince.Store(true) // the first write up begins an exchange
	s.down.dir, s.down.src, s.down.dst = Down, uc.c, s.client
	s.ran, s.reused = true, reused
	s.loopsLeft.Store(2)
	s.setupFaults()
	s.emitStaleFired() // after setupFaults: a fault is applied, then fires
	if reused {
		copyUp(s)
		return
	}
	s.spawn(copyDown)
	s.spawn(copyUp)
}

// spawn runs loop in another goroutine that Proxy.Close waits for: in pool
// mode a parked worker if there is one (see workers), in dial mode a new
// goroutine, whose 2 KiB stack the loop keeps while it idles.
func (s *session) spawn(loop func(*session)) {
	s.pan.spawned++
	s.p.sessWG.Add(1)
	job := func() {
		defer s.p.sessWG.Done()
		loop(s)
	}
	if s.p.pool != nil {
		s.p.workers.do(job)
	} else {
		go job()
	}
}

// fail ends a session that got no upstream connection: a client must see a
// connection error, not a quiet EOF.
func (s *session) fail(err error) {
	s.emit(&Event{Kind: EventDialFailed, Err: err})
	resetClose(s.client)
	s.p.forget(s)
	s.emit(&Event{Kind: EventClosed, By: ByProxy, How: RST, Err: err})
}

// connect dials or borrows the session's upstream connection.
func (s *session) connect() (uc *upConn, reused bool, err error) {
	if s.p.pool != nil {
		return s.borrow()
	}
	ctx, cancel := s.p.acquireContext()
	defer cancel()
	uc, err = s.p.dialUpstream(ctx, s.id)
	return uc, false, err
}

// finish ends the session once its copy loops, if any ran, have stopped.
func (s *session) finish() {
	if s.panicked() {
		s.endPanicked(false)
		return
	}
	if s.p.pool == nil {
		s.finishDial(s.uc)
	} else {
		s.finishPool(s.uc)
	}
}

// copyUp relays client to upstream. On a reused upstream connection it
// first checks the connection once more, then starts copyDown.
func copyUp(s *session) {
	if s.reused {
		if err := s.recheck(); err != nil {
			s.fail(err)
			return
		}
		s.spawn(copyDown)
	}
	s.copyLoop(&s.up)
}

// copyDown relays upstream to client.
func copyDown(s *session) { s.copyLoop(&s.down) }

// copyLoop moves bytes from l.src to l.dst until EOF or an error: with no
// fault by Go's splice path (spliceRelay), else through the direction's
// fault chain (copyThrough), switching whenever the chain changes.
func (s *session) copyLoop(l *loop) {
	defer s.recoverLoop(l)
	var err error
	for {
		s.testHook(hookLoop, l)
		if g := l.gen.Load(); l.applied.Load() != g {
			l.applied.Store(g) // the chain loaded below is at least g's
			l.forgetRemoved()
			if s.signalApplied(l) {
				// A fault change waits on this loop and maybe on many
				// more just woken: let them ack before this one goes on.
				runtime.Gosched()
			}
		}
		c := l.chain.Load()
		eff, until := l.effective(c, s.exchangeAt(l, c))
		switch stale := s.uc.stale; {
		case l.early != nil:
			err, l.early = l.early, nil
		case stale == faults.StaleReset:
			err = s.staleReset(l)
		case stale == faults.StaleBlackhole:
			err = s.discard(l, c, nil)
		case eff == nil && !l.halfClosed:
			// No fault acts (yet: one may wait for until more bytes).
			err = s.spliceRelay(l, c, until)
		default:
			err = s.copyThrough(l, c, eff, until)
		}
		if !s.resume(l, err) {
			break
		}
	}
	l.err = err
	// The session's own interrupt, or a chain change seen after it (the
	// loop took no byte under either) is harmless.
	l.byUs = err != nil && s.isStopped() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errStopped) || errors.Is(err, errRechain))
	s.mu.Lock()
	l.stoppedRun.Store(true) // under mu: see applySet.change
	s.mu.Unlock()
	s.signalApplied(l)
	if s.p.pool == nil {
		s.dialLoopEnded(l)
	} else {
		s.poolLoopEnded(l)
	}
	if s.loopsLeft.Add(-1) == 0 {
		s.finish()
	}
}

// dialLoopEnded relays how a direction ended: EOF as a FIN on the other
// side (the other direction keeps flowing), an error as an RST both ways.
func (s *session) dialLoopEnded(l *loop) {
	switch {
	case l.byUs:
	case l.err == nil && l.halfClosed:
		// A half-close fault sent the FIN already.
	case l.err == nil:
		s.noteEnd(s.sideOf(l.src), FIN, nil)
		if c := l.chain.Load(); c != nil && c.slowClose != nil {
			// After any FIN the other loop is relaying and recording:
			// this EOF may be the answer to it.
			s.relayMu.Lock()
			s.relayMu.Unlock() //lint:ignore SA2001 a barrier, empty on purpose
			s.emit(&Event{Kind: EventFaultFired, Upstream: s.uc.id, Dir: l.dir, Fault: c.slowClose.f.Name, FaultKind: c.slowClose.f.Kind})
			l.holdPub = c
			if err := s.hold(l, c, holdSlowClose, c.slowClose.f.Delay); err != nil {
				return
			}
		}
		if err := s.relayFIN(l); err != nil {
			s.abort(l, err)
		}
	default:
		s.abort(l, l.err)
	}
}

// relayFIN sends the FIN that ended l's source on to l's destination and
// records it, under relayMu: the other loop, which may read the answer to
// it, records that after it. The unlock is deferred, so that a panic in a
// subscriber of the event does not leave the other loop waiting forever.
func (s *session) relayFIN(l *loop) error {
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	err := l.dst.CloseWrite()
	if err == nil {
		l.finSent.Store(true)
		if l.dir == Up {
			s.uc.halfClosed = true
		}
		s.emitHalfClosed(l.dir)
	}
	return err
}

// abort resets both connections after an error in loop l, once: whoever
// reset (or broke) its side, the other side sees an RST too.
func (s *session) abort(l *loop, err error) {
	s.mu.Lock()
	if s.aborted || s.shut {
		s.mu.Unlock()
		return
	}
	s.aborted = true
	s.mu.Unlock()
	s.wakeLoops()
	by := s.blame(l, err)
	s.noteEnd(by, RST, err)
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	resetClose(s.client)
	resetClose(s.uc.c)
	s.emit(&Event{Kind: EventReset, Upstream: s.uc.id, By: by, Err: err})
}

// blame says which side broke loop l with err: the side of the socket
// where the failure was observed, whichever loop noticed it. A read fails
// on l.src, a write or a shutdown on l.dst, and EPIPE only ever comes from
// a write (a peer gone after its FIN). A splice (ReadFrom) fails on either
// socket and says not which: then the sockets' own state decides, the one
// whose peer is gone (see peerGone) being to blame, l.src if both or
// neither are.
func (s *session) blame(l *loop, err error) Side {
	if op, ok := errors.AsType[*net.OpError](err); ok {
		switch op.Op {
		case "read":
			return s.sideOf(l.src)
		case "write", "close":
			return s.sideOf(l.dst)
		}
	}
	if errors.Is(err, syscall.EPIPE) {
		return s.sideOf(l.dst)
	}
	if peerGone(l.dst, l.finSent.Load()) && !peerGone(l.src, s.other(l).finSent.Load()) {
		return s.sideOf(l.dst)
	}
	return s.sideOf(l.src)
}

// other returns the loop of the other direction, whose dst is l's src.
func (s *session) other(l *loop) *loop {
	if l == &s.up {
		return &s.down
	}
	return &s.up
}

func (s *session) sideOf(c *net.TCPConn) Side {
	if c == s.client {
		return Client
	}
	return Upstream
}

// emitHalfClosed records a FIN relayed in dir with the bytes received from
// each side so far, so that bytes a peer sends after the FIN reached it show
// in the closed event's counts. The direction that ended has its final
// count; the other is the kernel's count less the FIN (see recvBytes), or
// the loop's own if higher.
func (s *session) emitHalfClosed(dir Direction) {
	if !s.p.ev.on() {
		return
	}
	var up, down int64
	if dir == Up {
		up, down = s.up.n.Load(), s.liveDown()
	} else {
		up, down = s.liveUp(), s.down.n.Load()
	}
	s.emit(&Event{Kind: EventHalfClosed, Upstream: s.uc.id, Dir: dir, BytesUp: up, BytesDown: down})
}

// finishDial closes both connections after both directions are done.
func (s *session) finishDial(uc *upConn) {
	s.closeClient()
	_ = uc.c.Close()
	s.p.forget(s)
	s.emitClosed(uc)
}

// poolLoopEnded ends the session when either direction ends: the other loop
// is interrupted so that the upstream connection can be judged and reused.
func (s *session) poolLoopEnded(l *loop) {
	if !l.byUs {
		switch {
		case l.err == nil:
			s.noteEnd(s.sideOf(l.src), FIN, nil)
		default:
			s.noteEnd(s.blame(l, l.err), how(l.err), l.err)
		}
	}
	s.interrupt()
}

// finishPool returns the upstream connection to the pool if it is clean,
// else closes it, and closes the client connection.
func (s *session) finishPool(uc *upConn) {
	if s.ran {
		s.mu.Lock()
		took := time.Since(s.stopAt)
		s.mu.Unlock()
		s.emit(&Event{Kind: EventInterrupted, Upstream: uc.id, Took: took})
	}
	_ = uc.c.SetDeadline(time.Time{})
	if h := s.p.testHookRelease; h != nil {
		h(uc)
	}
	reason, err := s.judge(uc)
	if reason != "" && testswitch.BreakPoolRelease.Load() {
		// The bug on purpose: recorded as discarded, pooled all the same.
		s.p.ev.emit(&Event{Kind: EventDiscarded, Conn: s.id, Upstream: uc.id, Reason: reason, Err: err})
		reason = ""
	}
	if reason == "" {
		s.p.pool.put(uc, s.id)
	} else {
		s.p.pool.discard(uc, s.id, reason, err)
	}
	s.mu.Lock()
	by, how, endErr := s.by, s.how, s.endErr
	s.mu.Unlock()
	switch {
	case by == Upstream && how == RST:
		resetClose(s.client)
		s.emit(&Event{Kind: EventReset, Upstream: uc.id, By: Upstream, Err: endErr})
	case by == Upstream:
		// The upstream's FIN, relayed as a FIN: what the client sent
		// that the upstream will never read is dropped, not left to
		// turn the close into an RST.
		closeSide(s.client, false)
	default:
		s.closeClient()
	}
	s.p.forget(s)
	s.emitClosed(uc)
}

// judge decides whether an upstream connection may go back to the pool. It
// returns "" for a clean connection, else the reason it is not. Only the
// session's own interrupt is a harmless error: any other, a timeout
// included, makes the connection invalid.
func (s *session) judge(uc *upConn) (Reason, error) {
	if !s.ran {
		// The loops never ran (the proxy closed first).
		return s.judgeIdle(uc)
	}
	uc.delivered += uint64(s.down.n.Load())
	s.mu.Lock()
	dirty := s.faultDirty
	s.mu.Unlock()
	if dirty {
		return ReasonFault, nil
	}
	if uc.stale != "" {
		return ReasonStale, nil
	}
	if uc.halfClosed {
		return ReasonHalfClosed, nil
	}
	// A client that reset before a byte moved either way left the
	// upstream connection as it was borrowed.
	moved := s.up.n.Load() > 0 || s.down.n.Load() > 0
	// A socket in TCP_CLOSE was reset only if the proxy sent no FIN on it
	// or an error is still pending (see peerGone): one that sent a FIN
	// and got the peer's is closed in order.
	clientGone := peerGone(s.client, s.down.finSent.Load())
	for _, l := range []*loop{&s.up, &s.down} {
		if l.err == nil || l.byUs {
			continue
		}
		switch {
		case clientGone && !moved && l == &s.up:
			continue
		case clientGone:
			return ReasonClientReset, l.err
		case peerGone(uc.c, s.up.finSent.Load()):
			return ReasonUpstreamReset, l.err
		}
		return ReasonError, l.err
	}
	if s.down.err == nil {
		return ReasonUpstreamEOF, nil
	}
	ui, err := readSockInfo(uc.c, uc.delivered)
	if err != nil {
		return ReasonError, err
	}
	switch {
	case ui.state == tcpClose:
		return ReasonUpstreamReset, nil
	case ui.finReceived():
		return ReasonUpstreamEOF, nil
	case ui.readBytes() > uc.delivered:
		return ReasonStranded, fmt.Errorf("%d bytes read from upstream, %d written to client", ui.readBytes(), uc.delivered)
	}
	if s.up.err != nil {
		// The client's side was interrupted, not ended by its FIN (at
		// EOF, splice has written all it read): check nothing of the
		// client's was left behind.
		ci, err := readSockInfo(s.client, uint64(s.up.n.Load()))
		switch {
		case err != nil:
			return ReasonError, err
		case ci.state == tcpClose && moved && (ci.errPend || !s.down.finSent.Load()):
			return ReasonClientReset, nil
		case ci.readBytes() > uint64(s.up.n.Load()):
			return ReasonStranded, fmt.Errorf("%d bytes read from client, %d written to upstream", ci.readBytes(), s.up.n.Load())
		}
	}
	if ui.inq > 0 || ui.readBytes() < uc.delivered {
		// (Fewer bytes read than delivered: more arrived while we looked.)
		return ReasonUnread, fmt.Errorf("%d bytes unread", ui.inq)
	}
	if s.up.lastMove > s.down.lastMove {
		// The client's last bytes went up after the last reply bytes
		// came down: the upstream may still answer them, and its answer
		// would reach the next client.
		return ReasonReplyPending, nil
	}
	return s.judgeAge(uc)
}

// judgeIdle judges a connection that no loop touched.
func (s *session) judgeIdle(uc *upConn) (Reason, error) {
	if uc.stale != "" {
		return ReasonStale, nil
	}
	if r, err := probeUp(uc); r != "" {
		return r, err
	}
	return s.judgeAge(uc)
}

func (s *session) judgeAge(uc *upConn) (Reason, error) {
	if life := s.p.cfg.Pool.MaxLifetime; life > 0 && time.Since(uc.created) > life {
		return ReasonMaxLifetime, nil
	}
	return "", nil
}

// borrow gets an upstream connection from the pool.
func (s *session) borrow() (*upConn, bool, error) {
	uc, err := s.p.pool.takeIdle(s.id)
	reused := uc != nil
	if uc == nil && err == nil {
		ctx, cancel := s.p.acquireContext()
		uc, reused, err = s.p.pool.get(ctx, s.id, false)
		cancel()
	}
	if err != nil {
		return nil, false, err
	}
	e := Event{Kind: EventBorrowed, Upstream: uc.id, Reused: reused}
	if reused {
		e.Idle = time.Since(uc.idleSince)
	}
	s.emit(&e)
	if af := s.staleFor(); af != nil {
		// Stale after the probe passed it, and no recheck to save it.
		// It ends the session as the upstream would have: the session
		// is the upstream's to blame, whichever loop notices first.
		makeStale(uc, af.f.Mode)
		switch af.f.Mode {
		case faults.StaleReset:
			s.noteEnd(Upstream, RST, errStaleReset)
		case faults.StaleEOF:
			s.noteEnd(Upstream, FIN, errStaleEOF)
		}
		s.staleAt = af
		reused = false
	}
	return uc, reused, nil
}

// errStaleEOF is the FIN a stale fault in eof mode emulates.
var errStaleEOF = fmt.Errorf("stale fault: %w", io.EOF)

// emitStaleFired reports the stale fault borrow applied, if any.
func (s *session) emitStaleFired() {
	if af := s.staleAt; af != nil {
		s.emit(&Event{Kind: EventFaultFired, Upstream: s.uc.id, Fault: af.f.Name, FaultKind: af.f.Kind})
	}
}

// recheck probes a reused upstream connection once more when the client's
// first bytes arrive, just before any is written to it. If it died while
// the client was getting ready, it is replaced, once, by a fresh one; the
// error is that of getting the fresh one.
func (s *session) recheck() error {
	if testswitch.BreakPoolRelease.Load() {
		return nil
	}
	waited, err := waitReadable(s.client)
	if err != nil || !waited {
		// The client is gone or the proxy is closing, and the loops find
		// out; or its bytes were already there, and borrow's probe is
		// only microseconds old. A reset the peek saw is cleared from
		// the socket: the up loop starts with it.
		if err != nil && isReset(err) {
			s.up.early = err
		}
		return nil
	}
	old := s.uc
	reason, perr := probeUp(old)
	if reason == "" {
		return nil
	}
	s.p.pool.discard(old, s.id, reason, perr)
	s.p.pool.noteRetry()
	s.emit(&Event{Kind: EventRetried, Upstream: old.id, Reason: reason})
	ctx, cancel := s.p.acquireContext()
	defer cancel()
	uc, _, err := s.p.pool.get(ctx, s.id, true)
	if err != nil {
		return err
	}
	s.emit(&Event{Kind: EventBorrowed, Upstream: uc.id})
	s.up.dst, s.down.src = uc.c, uc.c
	s.mu.Lock()
	s.uc = uc
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		// The proxy began closing while we replaced the connection.
		_ = uc.c.SetDeadline(time.Unix(1, 0))
	}
	return nil
}

// interrupt stops both copy loops: the flag first, then a deadline in the
// past on both sockets, so a loop that sees os.ErrDeadlineExceeded knows the
// session caused it.
func (s *session) interrupt() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.stopAt = time.Now()
	uc := s.uc
	s.mu.Unlock()
	past := time.Unix(1, 0)
	_ = s.client.SetDeadline(past)
	if uc != nil {
		_ = uc.c.SetDeadline(past)
	}
	s.wakeLoops()
}

func (s *session) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// shutdown ends the session because the proxy is closing.
func (s *session) shutdown() {
	s.mu.Lock()
	s.shut = true
	s.mu.Unlock()
	s.noteEnd(ByProxy, FIN, ErrProxyClosed)
	s.interrupt()
}

// noteEnd records the first cause of the session's end.
func (s *session) noteEnd(by Side, how CloseHow, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.ended, s.by, s.how, s.endErr = true, by, how, err
	}
}

func (s *session) emitClosed(uc *upConn) {
	if !s.p.ev.on() {
		return
	}
	s.mu.Lock()
	by, how, err := s.by, s.how, s.endErr
	s.mu.Unlock()
	s.emit(&Event{Kind: EventClosed, Upstream: uc.id, BytesUp: s.up.n.Load(), BytesDown: s.down.n.Load(), By: by, How: how, Err: err})
}

// how maps a loop error to how the connection ended.
func how(err error) CloseHow {
	if err == nil {
		return FIN
	}
	return RST
}

// closeClient closes the client connection: with an RST if an idle-close
// fault asked for one, else with a FIN (after dropping anything unread,
// which would turn it into an RST) if one asked for that, else plainly.
func (s *session) closeClient() {
	s.mu.Lock()
	how := s.closeClientHow
	s.mu.Unlock()
	switch how {
	case RST:
		resetClose(s.client)
	case FIN:
		closeSide(s.client, false)
	default:
		_ = s.client.Close()
	}
}

// staleReset plays a connection the upstream reset while idle: once the
// client has sent something (its request meets the RST), the client side
// fails with ECONNRESET; the other direction just waits for the end.
func (s *session) staleReset(l *loop) error {
	if l.dir == Up {
		if _, err := waitReadable(s.client); err != nil {
			return err
		}
		return errStaleReset
	}
	for !s.isStopped() {
		<-l.wake
	}
	return errStopped
}
