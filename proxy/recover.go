package proxy

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
)

// A panic in a goroutine that serves one connection (a session's run, its
// copy loops, in either mode) must not take the process down. Each of
// them recovers at its entry point (session.recoverRun, session.recoverLoop)
// and ends that one session as an abort: both sockets closed with an RST
// (the client's at once, an upstream connection of the pool discarded with
// ReasonPanic), the other copy loop interrupted and waited for as at any
// session end, the session forgotten, and its EventClosed recorded with
// By ByProxy, How RST and an Err wrapping ErrPanic. A line with the panic
// and its stack goes to Config.Logger. Other sessions go on.
//
// What is not undone: a panic inside getting the upstream connection,
// between the dial (or the pool's lending) and the session taking it,
// leaks that connection (in pool mode its slot stays counted busy); a
// panic while the session's lock is held leaves the lock held, and the
// session's other goroutines stuck on it.

var (
	// ErrPanic is wrapped by the Err of the EventClosed (and of
	// EventDiscarded, in pool mode) of a session ended because one of its
	// goroutines panicked; the error's text carries the panic's value,
	// and errors.As finds the value itself when it is an error.
	ErrPanic = errors.New("proxy: panic serving a connection")
)

// ReasonPanic: a goroutine of the session that held the upstream
// connection panicked.
const ReasonPanic Reason = "panic"

// panicState is what a session's recovery needs. All but spawned are
// guarded by the session's mu.
type panicState struct {
	err   error // the first panic, wrapping ErrPanic; nil if none
	ended bool  // endPanicked has run
	// spawned counts the copy loops run has started with spawn; owned by
	// run's goroutine, which alone calls spawn.
	spawned int32
}

// hookPoint names where a test's panic hook runs.
type hookPoint uint8

const (
	hookRun  hookPoint = iota + 1 // run, once the connection is accepted, before its upstream connection
	hookLoop                      // a copy loop, each time round (at its start, and after each fault chain change)
)

// testHook calls the proxy's testHookPanic, if a test set one.
func (s *session) testHook(at hookPoint, l *loop) {
	if h := s.p.testHookPanic; h != nil {
		h(at, s, l)
	}
}

// panicked reports whether a goroutine of s panicked.
func (s *session) panicked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pan.err != nil
}

// recoverRun, deferred by run, recovers a panic in run outside the copy
// loops (each recovers its own): the loops run did not start are counted
// out, and the session ends once the ones it started have stopped.
func (s *session) recoverRun() {
	v := recover()
	if v == nil {
		return
	}
	ending := s.finishing()
	s.notePanic(v, "run", ending)
	if !s.ran {
		s.endPanicked(ending)
		return
	}
	// loopsLeft counts both loops from before the first is started.
	if notStarted := 2 - s.pan.spawned - s.upInRun(); notStarted > 0 && s.loopsLeft.Add(-notStarted) == 0 {
		s.finish()
	}
}

// upInRun is 1 when run relays the up loop itself (a reused upstream
// connection) and that loop has started, else 0. Called from recoverRun:
// had copyLoop started in run's goroutine, its own recovery would have
// taken the panic, or it returned and counted itself out.
func (s *session) upInRun() int32 {
	if s.reused && s.up.stoppedRun.Load() {
		return 1
	}
	return 0
}

// finishing reports whether the session has begun its end: its upstream
// connection may be back in the pool already.
func (s *session) finishing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shut || (s.ran && s.loopsLeft.Load() == 0)
}

// recoverLoop, deferred by copyLoop, recovers a panic in copy loop l. A
// panic while relaying ends the loop with the panic as its error; one in
// the loop's end (after it stopped relaying) goes on from where that end
// was: the loop counts itself out unless it had, and then only the
// session's end remains.
func (s *session) recoverLoop(l *loop) {
	v := recover()
	if v == nil {
		return
	}
	where := "copy loop " + l.dir.String()
	if !l.stoppedRun.Load() {
		l.err, l.byUs = s.notePanic(v, where, false), false
		s.mu.Lock()
		l.stoppedRun.Store(true) // under mu: see applySet.change
		s.mu.Unlock()
		s.signalApplied(l)
	} else if s.loopsLeft.Load() == 0 {
		// This loop counted itself out last and the panic came from the
		// session's end (finish), which may have handed the upstream
		// connection back already.
		s.notePanic(v, where, true)
		s.endPanicked(true)
		return
	} else {
		s.notePanic(v, where, false)
	}
	if s.loopsLeft.Add(-1) == 0 {
		s.finish()
	}
}

// notePanic records the session's first panic, logs it, and stops the
// session: the end is recorded as the proxy's RST, both copy loops are
// interrupted and woken, and the client's socket (and in dial mode the
// upstream's) is closed with an RST, so that a loop that is blocked on
// either returns. A pooled upstream connection is only interrupted: the
// session's end discards it (endPanicked). ending says the session's end
// had begun: its upstream connection is then not touched (it may be
// another session's by now).
func (s *session) notePanic(v any, where string, ending bool) error {
	var err error
	if ve, ok := v.(error); ok {
		err = fmt.Errorf("%w in %s: %w", ErrPanic, where, ve)
	} else {
		err = fmt.Errorf("%w in %s: %v", ErrPanic, where, v)
	}
	s.p.cfg.Logger.Error("proxy: recovered from a panic; the connection is reset", "conn", s.id, "at", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.mu.Lock()
	if s.pan.err == nil {
		s.pan.err = err
	}
	// A panic outranks whatever ended the session before.
	s.ended, s.by, s.how, s.endErr = true, ByProxy, RST, s.pan.err
	s.aborted = true // nothing else resets or closes the session
	uc := s.uc
	s.mu.Unlock()
	if ending {
		return err
	}
	s.interrupt()
	resetClose(s.client)
	if uc != nil && s.p.pool == nil {
		resetClose(uc.c)
	}
	return err
}

// endPanicked ends a session one of whose goroutines panicked, once all of
// them that relay have stopped (finish calls it then): the client's socket
// is reset, the upstream connection reset (dial mode) or discarded with
// ReasonPanic (pool mode), the session forgotten and its EventClosed
// emitted. afterFinish says the panic came from the session's own end,
// which may have returned the upstream connection to the pool, discarded
// it, forgotten the session or emitted EventClosed already: what it did is
// not done again.
func (s *session) endPanicked(afterFinish bool) {
	s.mu.Lock()
	if s.pan.ended {
		s.mu.Unlock()
		return
	}
	s.pan.ended = true
	uc, err := s.uc, s.pan.err
	s.mu.Unlock()
	resetClose(s.client)
	var upID uint64
	if uc != nil {
		upID = uc.id
		switch {
		case s.p.pool == nil:
			resetClose(uc.c)
		case afterFinish && s.p.pool.returned(uc):
		default:
			_ = uc.c.SetLinger(0)
			s.guard(func() { s.p.pool.discard(uc, s.id, ReasonPanic, err) })
		}
	}
	if !s.p.live(s) {
		return // the session's end had forgotten it and emitted EventClosed
	}
	s.p.forget(s)
	s.guard(func() {
		s.emit(&Event{Kind: EventClosed, Upstream: upID, BytesUp: s.up.n.Load(), BytesDown: s.down.n.Load(), By: ByProxy, How: RST, Err: err})
	})
}

// guard runs fn, recovering and logging a panic in it: a subscriber that
// panicked on an event may panic again on the next.
func (s *session) guard(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			s.p.cfg.Logger.Error("proxy: recovered from a panic while ending a connection after a panic", "conn", s.id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// live reports whether s is still among the proxy's sessions.
func (p *Proxy) live(s *session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.sessions[s]
	return ok
}

// returned reports whether uc is back in the pool's hands: idle in it, or
// closed (discarded).
func (p *pool) returned(uc *upConn) bool {
	p.mu.Lock()
	idle := slices.Contains(p.idle, uc)
	p.mu.Unlock()
	if idle {
		return true
	}
	rc, err := uc.c.SyscallConn()
	if err != nil {
		return true
	}
	return rc.Control(func(uintptr) {}) != nil
}
