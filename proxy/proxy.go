package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy relays TCP connections from one listener to one upstream address.
// Create one with Listen; it serves until Close.
type Proxy struct {
	cfg      Config
	addr     net.Addr         // where the proxy listens, also while a refuse fault has the listener closed
	ln       *net.TCPListener // guarded by mu
	refusing bool             // a refuse fault closed ln; guarded by mu
	resume   chan struct{}    // closed when refusing ends; guarded by mu
	stopAcc  chan struct{}    // closed by Close: the accept loop stops waiting to resume
	pool     *pool            // nil in ModeDial
	ev       bus
	faults   faultSet
	dialer   net.Dialer
	ctx      context.Context // cancelled by Close; bounds dials
	cancel   context.CancelFunc
	connIDs  atomic.Uint64
	upIDs    atomic.Uint64
	doneUp   atomic.Int64 // bytes relayed by sessions that ended
	doneDown atomic.Int64
	acceptWG sync.WaitGroup // the accept loop

	mu       sync.Mutex // guards sessions and closing
	sessions map[*session]struct{}
	closing  bool
	sessWG   sync.WaitGroup // one per session goroutine: run, copyUp, copyDown
	workers  workers        // the goroutines that run them in pool mode

	closeOnce sync.Once
	closeErr  error

	// testHookRelay, if set, runs in a session just before its copy loops
	// start.
	testHookRelay func(uc *upConn)
	// testHookRelease, if set, runs in a pool-mode session after both copy
	// loops stopped and before the upstream connection is judged.
	testHookRelease func(uc *upConn)
	// testHookPanic, if set, runs in sessions at the points named by
	// hookPoint, so that a test can make them panic (see recover.go).
	testHookPanic func(at hookPoint, s *session, l *loop)
}

// Listen listens on addr (host:port; port 0 picks a free one) and starts
// relaying every accepted connection to cfg.Upstream.
func Listen(addr string, cfg Config) (*Proxy, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	// TCP keepalive is off on both sides: the peers are local, dead ones
	// show up as EOF or RST, and it would cost four setsockopt calls on
	// every connection.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen: %w", err)
	}
	return serve(ln.(*net.TCPListener), cfg), nil
}

func serve(ln *net.TCPListener, cfg Config) *Proxy {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:      cfg,
		ln:       ln,
		addr:     ln.Addr(),
		stopAcc:  make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		dialer:   net.Dialer{KeepAlive: -1},
		sessions: make(map[*session]struct{}),
		workers:  workers{maxIdle: maxIdleWorkers},
	}
	if cfg.Mode == ModePool {
		p.pool = newPool(cfg.Pool, &p.ev, p.dialUpstream)
	}
	p.acceptWG.Add(1)
	go p.acceptLoop()
	return p
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.addr }

// Config returns the proxy's configuration with defaults filled in.
func (p *Proxy) Config() Config { return p.cfg }

// Subscribe calls fn for every event from now until cancel is called.
// Calls are made one at a time, in Seq order, from the goroutine where the
// event happened: fn must be quick and must not call Subscribe or cancel.
// With no subscriber, events cost nothing.
func (p *Proxy) Subscribe(fn func(Event)) (cancel func()) { return p.ev.subscribe(fn) }

// PoolStats returns the pool's counters; it is the zero value in ModeDial.
func (p *Proxy) PoolStats() PoolStats {
	if p.pool == nil {
		return PoolStats{}
	}
	return p.pool.statsSnapshot()
}

// ActiveConns returns how many downstream connections are open. A
// connection stops counting once its sockets are closed, a moment before
// its EventClosed is recorded: to know that the record is there, wait for
// the event, not for this count.
func (p *Proxy) ActiveConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// Close stops accepting, ends every session, closes the pool's connections
// and returns once every goroutine the proxy started has exited.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true // from here no session is added and refuse is over
		ln, refusing := p.ln, p.refusing
		p.mu.Unlock()
		if !refusing {
			p.closeErr = ln.Close()
		}
		close(p.stopAcc)
		p.acceptWG.Wait()
		p.closeFaults()
		p.cancel()
		p.mu.Lock()
		p.closing = true
		for s := range p.sessions {
			s.shutdown()
		}
		p.mu.Unlock()
		p.sessWG.Wait()
		p.workers.close()
		if p.pool != nil {
			p.pool.close()
		}
	})
	return p.closeErr
}

func (p *Proxy) acceptLoop() {
	defer p.acceptWG.Done()
	var backoff time.Duration
	for {
		p.mu.Lock()
		ln := p.ln
		p.mu.Unlock()
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				if p.waitResume() {
					continue
				}
				return
			}
			// Temporary trouble such as EMFILE: log, back off, go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.cfg.Logger.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		s := &session{p: p, id: p.connIDs.Add(1), client: c, started: time.Now()}
		s.up.wake, s.down.wake = make(chan struct{}, 1), make(chan struct{}, 1)
		// The fault mutex makes the epoch and the registration one step
		// for AddFault, which looks at live sessions under it.
		p.faults.mu.Lock()
		s.faultEpoch = p.faults.seq
		p.faults.pickNew(s) // new connections are picked in accept order
		p.mu.Lock()
		if p.closing {
			p.mu.Unlock()
			p.faults.mu.Unlock()
			_ = c.Close()
			return
		}
		p.sessions[s] = struct{}{}
		p.sessWG.Add(1)
		p.mu.Unlock()
		p.faults.mu.Unlock()
		if p.pool != nil {
			p.workers.do(s.run)
		} else {
			go s.run() // see workers
		}
	}
}

// forget removes an ending session from the live ones; its goroutines
// still count in sessWG until they return.
func (p *Proxy) forget(s *session) {
	p.doneUp.Add(s.up.n.Load())
	p.doneDown.Add(s.down.n.Load())
	p.mu.Lock()
	delete(p.sessions, s)
	p.mu.Unlock()
}

// acquireContext bounds getting an upstream connection: Config.DialTimeout,
// and Close.
func (p *Proxy) acquireContext() (context.Context, context.CancelFunc) {
	if p.cfg.DialTimeout > 0 {
		return context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	}
	return context.WithCancel(p.ctx)
}

// dialUpstream opens a new upstream connection for downstream connection
// conn.
func (p *Proxy) dialUpstream(ctx context.Context, conn uint64) (*upConn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", p.cfg.Upstream)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		_ = c.Close()
		return nil, ErrNotTCP
	}
	uc := &upConn{c: tc, id: p.upIDs.Add(1), created: time.Now()}
	p.ev.emit(&Event{Kind: EventDialed, Conn: conn, Upstream: uc.id})
	return uc, nil
}
