package testkit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// closeWarnEvery is how long Close waits before it logs what it still waits
// on, and how often it logs again.
var closeWarnEvery = 5 * time.Second

// Proxy is a faultline proxy owned by one test: started on a free loopback
// port, recording every event from its start, and closed when the test ends.
//
// Methods that can fail in a way the test should not ignore report it with
// tb.Errorf (safe from any goroutine) and also return the error. Only the
// starting methods (NewProxy, Start) and Inject and Await stop the test with
// tb.Fatalf, and so must be called from the test's own goroutine; AddFault
// and Events().WaitFor are their non-fatal forms.
type Proxy struct {
	// Config is what Start passes to the proxy. NewUnstartedProxy fills it
	// from its options; change it before Start. Changing it afterwards has
	// no effect.
	Config proxy.Config

	tb  testing.TB
	log *EventLog

	mu      sync.Mutex // guards be, cancel, started, closed
	be      backend
	cancel  func() // ends the log's subscription
	started bool
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// NewProxy starts a proxy in front of upstream (host:port) on a free
// loopback port, configured by opts, and closes it when the test ends. It
// stops the test if the proxy cannot start.
func NewProxy(tb testing.TB, upstream string, opts ...Option) *Proxy {
	tb.Helper()
	p := NewUnstartedProxy(tb, upstream, opts...)
	p.Start()
	return p
}

// NewUnstartedProxy returns a proxy configured by opts that is not listening
// yet: change p.Config, then call Start.
func NewUnstartedProxy(tb testing.TB, upstream string, opts ...Option) *Proxy {
	p := &Proxy{tb: tb, log: newEventLog(), Config: proxy.Config{Upstream: upstream}}
	for _, o := range opts {
		o(&p.Config)
	}
	return p
}

// Start starts the proxy on a free loopback port and registers its Close
// with tb.Cleanup. It stops the test if the proxy cannot start, and panics
// if it was started before.
func (p *Proxy) Start() {
	p.tb.Helper()
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		panic("testkit: Proxy started twice")
	}
	p.started = true
	p.mu.Unlock()
	be, err := listenLocal(p.Config)
	if err != nil {
		p.tb.Fatalf("testkit: start proxy to %s: %v", p.Config.Upstream, err)
		return
	}
	if err := p.attach(be); err != nil {
		_ = be.close()
		p.tb.Fatalf("testkit: subscribe to proxy events: %v", err)
		return
	}
	p.tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			p.tb.Errorf("testkit: close proxy: %v", err)
		}
		p.saveArtifacts()
	})
}

// attach makes be the proxy's backend and starts recording its events.
func (p *Proxy) attach(be backend) error {
	cancel, err := be.subscribe(p.log.add)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.be, p.cancel, p.started = be, cancel, true
	p.mu.Unlock()
	return nil
}

// backend returns the backend, or ErrClosed once Close began (or before
// Start).
func (p *Proxy) backend() (backend, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.be == nil {
		return nil, fmt.Errorf("%w: not started", ErrClosed)
	}
	if p.closed {
		return nil, ErrClosed
	}
	return p.be, nil
}

// Addr returns the address clients dial, "127.0.0.1:port"; "" before Start.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.be == nil {
		return ""
	}
	return p.be.addr()
}

// Events returns the proxy's event log.
func (p *Proxy) Events() *EventLog { return p.log }

// Await waits up to DefaultWaitTimeout for the next unread event of kind
// that meets every cond, and returns it; see EventLog.WaitFor. It stops the
// test, quoting the log's tail, if none comes.
func (p *Proxy) Await(kind proxy.EventKind, conds ...Cond) proxy.Event {
	p.tb.Helper()
	e, err := p.log.WaitFor(0, kind, conds...)
	if err != nil {
		p.tb.Fatalf("testkit: %v", err)
	}
	return e
}

// Inject adds f to the proxy and returns a handle to update or clear it;
// it returns once f is in force on every live connection it targets.
// It stops the test if the proxy refuses f; AddFault returns the error
// instead.
func (p *Proxy) Inject(f faults.Fault) *Fault {
	p.tb.Helper()
	h, err := p.AddFault(f)
	if err != nil {
		p.tb.Fatalf("testkit: inject %s fault: %v", f.Kind, err)
	}
	return h
}

// AddFault is Inject returning the error (for example one wrapping
// faults.ErrBadFault or proxy.ErrFaultExists) instead of stopping the test.
func (p *Proxy) AddFault(f faults.Fault) (*Fault, error) {
	be, err := p.backend()
	if err != nil {
		return nil, err
	}
	nf, err := be.addFault(f)
	if err != nil {
		return nil, err
	}
	p.log.noteFault(nf)
	return &Fault{p: p, f: nf}, nil
}

// ClearAll removes every fault, returning once none acts. A failure is
// reported with tb.Errorf and returned.
func (p *Proxy) ClearAll() error {
	be, err := p.backend()
	if err == nil {
		err = be.clearFaults()
	}
	return p.report(err, "clear faults")
}

// Conns returns the live downstream connections in ID order; none once
// the proxy is closed. A failure is reported with tb.Errorf.
func (p *Proxy) Conns() []proxy.ConnInfo {
	be, err := p.backend()
	if err != nil {
		return nil // not started or closed: nothing is live
	}
	cs, err := be.conns()
	_ = p.report(err, "list connections")
	return cs
}

// Pool returns the pool's state and counters (the zero value in dial
// mode, and once the proxy is closed). A failure is reported with
// tb.Errorf.
func (p *Proxy) Pool() proxy.PoolStats {
	be, err := p.backend()
	if err != nil {
		return proxy.PoolStats{} // not started or closed
	}
	st, err := be.pool()
	_ = p.report(err, "read pool stats")
	return st
}

// report reports a non-nil err with tb.Errorf and returns it.
func (p *Proxy) report(err error, what string) error {
	if err != nil {
		p.tb.Errorf("testkit: %s: %v", what, err)
	}
	return err
}

// Close stops the proxy: it stops accepting, ends every session, closes the
// pool and returns once every goroutine the proxy started has exited and
// the event log is complete. Every 5 s that it is still waiting, it logs
// with tb.Logf the connections it waits on. Close is idempotent; tb.Cleanup
// calls it for tests that do not, and then, if the test failed, saves the
// event log into the test's artifact directory (see the package doc).
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		be, cancel := p.be, p.cancel
		p.closed = true
		p.mu.Unlock()
		if be == nil {
			p.log.close()
			return
		}
		done := make(chan error, 1)
		go func() { done <- be.close() }() // owned here: Close waits for it below
		tick := time.NewTicker(closeWarnEvery)
		defer tick.Stop()
		start := time.Now()
		for waiting := true; waiting; {
			select {
			case p.closeErr = <-done:
				waiting = false
			case <-tick.C:
				p.tb.Logf("testkit: Close of proxy %s still waiting after %s on %s",
					be.addr(), time.Since(start).Round(time.Second), waitingOn(be))
			}
		}
		cancel()
		p.log.close()
	})
	return p.closeErr
}

// waitingOn describes what a closing backend still holds.
func waitingOn(be backend) string {
	cs, err := be.conns()
	if err != nil {
		return fmt.Sprintf("its connections (cannot list them: %v)", err)
	}
	if len(cs) == 0 {
		return "its goroutines (no live connection)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", plural(len(cs), "live connection"))
	for _, c := range cs {
		fmt.Fprintf(&b, "\n    %s", formatConn(c))
	}
	return b.String()
}

// formatConn describes a live connection on one line.
func formatConn(c proxy.ConnInfo) string {
	s := fmt.Sprintf("conn=%d from %s upstream=%d open %s, %dB up %dB down",
		c.ID, c.Client, c.Upstream, time.Since(c.Started).Round(time.Millisecond), c.BytesUp, c.BytesDown)
	if c.Pooled {
		s += fmt.Sprintf(" pooled reused=%t", c.Reused)
	}
	if len(c.Faults) > 0 {
		s += " faults=" + strings.Join(c.Faults, ",")
	}
	return s
}

// Fault is a handle on a fault injected into a Proxy.
type Fault struct {
	p *Proxy

	mu sync.Mutex // guards f and cleared
	f  faults.Fault
	// cleared is set once Clear removed the fault.
	cleared bool
}

// Fault returns the fault as in force, defaults filled in.
func (h *Fault) Fault() faults.Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.f
}

// Name returns the fault's name.
func (h *Fault) Name() string { return h.Fault().Name }

// Update replaces the fault with f, which must be of the same kind; f's
// name is the handle's whatever f.Name says. It returns once f is in force
// (see proxy.Proxy.UpdateFault). A failure is reported with tb.Errorf and
// returned.
func (h *Fault) Update(f faults.Fault) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.Name = h.f.Name
	be, err := h.p.backend()
	if err == nil {
		f, err = be.updateFault(f)
	}
	if err != nil {
		return h.p.report(err, "update fault "+h.f.Name)
	}
	h.f = f
	h.p.log.noteFault(f)
	return nil
}

// Clear removes the fault, returning once it acts on no connection.
// Clearing a fault that is gone already (cleared, or removed by ClearAll)
// is not an error. Other failures are reported with tb.Errorf and returned.
func (h *Fault) Clear() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cleared {
		return nil
	}
	be, err := h.p.backend()
	if err == nil {
		err = be.removeFault(h.f.Name)
	}
	if err != nil && !errors.Is(err, proxy.ErrNoFault) {
		return h.p.report(err, "clear fault "+h.f.Name)
	}
	h.cleared = true
	return nil
}
