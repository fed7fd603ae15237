package proxy

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/testswitch"
	"golang.org/x/sys/unix"
)

// errStaleReset is the reset a stale fault in reset mode emulates.
var errStaleReset = fmt.Errorf("stale fault: %w", syscall.ECONNRESET)

// upConn is one upstream connection and what the proxy knows of it.
type upConn struct {
	c       *net.TCPConn
	id      uint64
	created time.Time

	// The fields below are owned by whoever holds the connection: the pool
	// while it is idle, one session while it is borrowed.
	idleSince  time.Time
	delivered  uint64           // bytes read from c and written to clients, over all sessions
	halfClosed bool             // the proxy sent FIN on c
	stale      faults.StaleMode // a stale fault made it stale; "" if not
}

// PoolStats is a snapshot of a pool's state and counters.
type PoolStats struct {
	Idle      int               `json:"idle"`      // connections waiting in the pool
	Busy      int               `json:"busy"`      // connections lent to sessions
	Dialed    uint64            `json:"dialed"`    // connections opened
	Reused    uint64            `json:"reused"`    // borrows served by an idle connection
	Retried   uint64            `json:"retried"`   // reused connections found dead before use and replaced
	Discarded map[Reason]uint64 `json:"discarded"` // connections closed, by reason
}

// pool holds idle upstream connections for a ModePool proxy.
type pool struct {
	cfg  PoolConfig
	dial func(ctx context.Context, conn uint64) (*upConn, error)
	ev   *bus

	mu        sync.Mutex // guards the fields below
	idle      []*upConn  // most recently released last
	open      int        // idle and busy connections
	closed    bool
	waiters   int
	releasing int           // connections being put, counted against MaxIdle
	drainOwed int           // of those, how many a drain has counted: put discards them
	wake      chan struct{} // closed and replaced when a slot frees, if waiters > 0
	stats     PoolStats

	stop chan struct{} // closed by close to stop the reaper
	wg   sync.WaitGroup
}

func newPool(cfg PoolConfig, ev *bus, dial func(context.Context, uint64) (*upConn, error)) *pool {
	p := &pool{
		cfg:   cfg,
		dial:  dial,
		ev:    ev,
		wake:  make(chan struct{}),
		stop:  make(chan struct{}),
		stats: PoolStats{Discarded: make(map[Reason]uint64)},
	}
	if every := reapInterval(cfg); every > 0 {
		p.wg.Add(1)
		go p.reapLoop(every)
	}
	return p
}

// reapInterval is how often idle connections are checked for expiry: half
// the shortest limit, between 10ms and 1s; 0 when there is no limit.
func reapInterval(cfg PoolConfig) time.Duration {
	d := cfg.IdleTimeout
	if cfg.MaxLifetime > 0 && (d == 0 || cfg.MaxLifetime < d) {
		d = cfg.MaxLifetime
	}
	if d == 0 {
		return 0
	}
	return min(max(d/2, 10*time.Millisecond), time.Second)
}

// takeIdle returns the most recently released idle connection that passes
// its checks, discarding those that do not on the way; nil when none is
// left. It never blocks, so a borrow served from the pool needs no
// context: a context with a deadline starts a timer, and starting a timer
// wakes an idle processor, which costs a pooled connection more than the
// rest of its borrow.
func (p *pool) takeIdle(conn uint64) (*upConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrProxyClosed
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil, nil
		}
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if reason, err := p.check(uc, time.Now()); reason != "" {
			p.discard(uc, conn, reason, err)
			continue
		}
		p.mu.Lock()
		p.stats.Reused++
		p.mu.Unlock()
		return uc, nil
	}
}

// get returns an idle connection that passes its checks, or a new one,
// waiting for a free slot when the pool is at its size; ctx bounds the dial
// and the wait. fresh skips the idle connections. conn is the downstream
// connection's ID, for events.
func (p *pool) get(ctx context.Context, conn uint64, fresh bool) (uc *upConn, reused bool, err error) {
	for {
		if !fresh {
			if uc, err := p.takeIdle(conn); uc != nil || err != nil {
				return uc, uc != nil, err
			}
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, ErrProxyClosed
		}
		if len(p.idle) > 0 && !fresh {
			p.mu.Unlock() // released since takeIdle looked
			continue
		}
		if p.cfg.Size <= 0 || p.open < p.cfg.Size {
			p.open++
			p.stats.Dialed++
			p.mu.Unlock()
			uc, err = p.dial(ctx, conn)
			if err != nil {
				p.mu.Lock()
				p.open--
				p.stats.Dialed--
				p.signalLocked()
				p.mu.Unlock()
				return nil, false, err
			}
			return uc, false, nil
		}
		p.waiters++
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
			p.mu.Lock()
			p.waiters--
			p.mu.Unlock()
		case <-ctx.Done():
			p.mu.Lock()
			p.waiters--
			p.mu.Unlock()
			return nil, false, fmt.Errorf("%w: all %d connections busy: %w", ErrPoolExhausted, p.cfg.Size, context.Cause(ctx))
		}
	}
}

// check decides whether an idle connection may be handed out: not idle too
// long, not too old, and a non-blocking peek finds it open with nothing to
// read.
func (p *pool) check(uc *upConn, now time.Time) (Reason, error) {
	if testswitch.BreakPoolRelease.Load() {
		return "", nil // the bug on purpose: no check on borrow either
	}
	if p.cfg.IdleTimeout > 0 && now.Sub(uc.idleSince) > p.cfg.IdleTimeout {
		return ReasonIdleTimeout, nil
	}
	if p.cfg.MaxLifetime > 0 && now.Sub(uc.created) > p.cfg.MaxLifetime {
		return ReasonMaxLifetime, nil
	}
	return probeUp(uc)
}

// probeUp probes uc as probe does, except that what a stale fault did to
// it is ReasonStale, with the error saying what was seen (errStaleEOF,
// errStaleReset): the one reason a stale fault's connections are
// discarded with, whether the probe caught one idle or a session was
// handed it, so that a test matches them all with one reason. A real
// upstream's FIN or RST stays ReasonUpstreamEOF or ReasonUpstreamReset.
func probeUp(uc *upConn) (Reason, error) {
	if uc.stale == faults.StaleReset {
		return ReasonStale, errStaleReset // emulated: see faults.Stale
	}
	r, err := probe(uc.c)
	if uc.stale != "" && (r == ReasonUpstreamEOF || r == ReasonUpstreamReset) {
		return ReasonStale, errStaleEOF
	}
	return r, err
}

// staleIdle makes every idle connection stale in mode, calling fired for
// each.
func (p *pool) staleIdle(mode faults.StaleMode, fired func(*upConn)) {
	p.mu.Lock()
	idle := slices.Clone(p.idle)
	for _, uc := range idle {
		makeStale(uc, mode)
	}
	p.mu.Unlock()
	for _, uc := range idle {
		fired(uc)
	}
}

// makeStale makes uc behave as one the upstream dropped while idle; see
// faults.Stale for how each mode is produced.
func makeStale(uc *upConn, mode faults.StaleMode) {
	uc.stale = mode
	if mode == faults.StaleEOF {
		if rc, err := uc.c.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RDWR) })
		}
	}
}

// put returns a clean connection to the pool, or closes it when the pool is
// full or closed. EventReleased is emitted before the connection can be
// borrowed, so a later borrow of it always comes after it in Seq.
func (p *pool) put(uc *upConn, conn uint64) {
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		p.discard(uc, conn, ReasonProxyClosed, nil)
		return
	case len(p.idle)+p.releasing >= p.cfg.MaxIdle:
		p.mu.Unlock()
		p.discard(uc, conn, ReasonPoolFull, nil)
		return
	}
	p.releasing++ // holds its idle slot while the event goes out
	p.mu.Unlock()
	p.ev.emit(&Event{Kind: EventReleased, Conn: conn, Upstream: uc.id})
	p.mu.Lock()
	p.releasing--
	if p.closed {
		p.mu.Unlock()
		p.discard(uc, 0, ReasonProxyClosed, nil)
		return
	}
	if p.drainOwed > 0 {
		// A drain came after EventReleased said this one was idle.
		p.drainOwed--
		p.mu.Unlock()
		p.discard(uc, 0, ReasonDrained, nil)
		return
	}
	uc.idleSince = time.Now()
	p.idle = append(p.idle, uc)
	p.signalLocked()
	p.mu.Unlock()
}

// discard closes a connection that is not to be reused and records why.
func (p *pool) discard(uc *upConn, conn uint64, reason Reason, err error) {
	_ = uc.c.Close()
	p.mu.Lock()
	p.open--
	p.stats.Discarded[reason]++
	p.signalLocked()
	p.mu.Unlock()
	p.ev.emit(&Event{Kind: EventDiscarded, Conn: conn, Upstream: uc.id, Reason: reason, Err: err})
}

// noteRetry counts a reused connection found dead before use.
func (p *pool) noteRetry() {
	p.mu.Lock()
	p.stats.Retried++
	p.mu.Unlock()
}

func (p *pool) signalLocked() {
	if p.waiters > 0 {
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// reapLoop closes idle connections past their idle timeout or lifetime, so
// they do not wait for the next borrow to be found out.
func (p *pool) reapLoop(every time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.reap(now)
		}
	}
}

func (p *pool) reap(now time.Time) {
	type expired struct {
		uc     *upConn
		reason Reason
	}
	var gone []expired
	p.mu.Lock()
	kept := p.idle[:0]
	for _, uc := range p.idle {
		switch {
		case p.cfg.IdleTimeout > 0 && now.Sub(uc.idleSince) > p.cfg.IdleTimeout:
			gone = append(gone, expired{uc, ReasonIdleTimeout})
		case p.cfg.MaxLifetime > 0 && now.Sub(uc.created) > p.cfg.MaxLifetime:
			gone = append(gone, expired{uc, ReasonMaxLifetime})
		default:
			kept = append(kept, uc)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	p.mu.Unlock()
	for _, g := range gone {
		p.discard(g.uc, 0, g.reason, nil)
	}
}

// statsSnapshot returns a copy of the pool's counters.
func (p *pool) statsSnapshot() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Idle = len(p.idle)
	s.Busy = p.open - len(p.idle)
	s.Discarded = make(map[Reason]uint64, len(p.stats.Discarded))
	for k, v := range p.stats.Discarded {
		s.Discarded[k] = v
	}
	return s
}

// drain discards every idle connection and returns how many.
func (p *pool) drain() int {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	// Connections whose EventReleased is out but which are not in idle
	// yet count as idle too: put discards them as it finishes.
	owed := p.releasing - p.drainOwed
	p.drainOwed = p.releasing
	p.mu.Unlock()
	for _, uc := range idle {
		p.discard(uc, 0, ReasonDrained, nil)
	}
	return len(idle) + owed
}

// close discards every idle connection, refuses later puts and stops the
// reaper. Sessions still holding connections discard them when they end.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.signalLocked()
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	for _, uc := range idle {
		p.discard(uc, 0, ReasonProxyClosed, nil)
	}
}
