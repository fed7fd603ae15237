package testkit

import (
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// backend is what a Proxy drives: an in-process *proxy.Proxy (local) or,
// later, a proxy inside a running faultline binary reached through the
// control API. Every method may be called from any goroutine. Events reach
// the testkit as proxy.Event values either way.
type backend interface {
	// addr is the address clients dial.
	addr() string
	// addFault adds f and returns it with its defaults filled in, once it
	// is in force.
	addFault(f faults.Fault) (faults.Fault, error)
	// updateFault replaces the fault named f.Name (same kind).
	updateFault(f faults.Fault) (faults.Fault, error)
	// removeFault removes the named fault; proxy.ErrNoFault if unknown.
	removeFault(name string) error
	// clearFaults removes every fault.
	clearFaults() error
	// conns returns the live downstream connections in ID order.
	conns() ([]proxy.ConnInfo, error)
	// pool returns the pool's counters.
	pool() (proxy.PoolStats, error)
	// subscribe calls fn for every event from now on, in Seq order, one at a
	// time, until cancel returns; cancel waits for any call in progress.
	subscribe(fn func(proxy.Event)) (cancel func(), err error)
	// close ends the proxy (for a remote one: whatever the test owns of it)
	// and returns once everything it started has stopped.
	close() error
}

// local is a backend over an in-process proxy.
type local struct {
	p *proxy.Proxy
}

// listenLocal starts an in-process proxy on a free loopback port.
func listenLocal(cfg proxy.Config) (*local, error) {
	p, err := proxy.Listen("127.0.0.1:0", cfg)
	if err != nil {
		return nil, err
	}
	return &local{p: p}, nil
}

func (l *local) addr() string { return l.p.Addr().String() }

func (l *local) addFault(f faults.Fault) (faults.Fault, error) { return l.p.AddFault(f) }

func (l *local) updateFault(f faults.Fault) (faults.Fault, error) { return l.p.UpdateFault(f) }

func (l *local) removeFault(name string) error { return l.p.RemoveFault(name) }

func (l *local) clearFaults() error { l.p.ClearFaults(); return nil }

func (l *local) conns() ([]proxy.ConnInfo, error) { return l.p.Conns(), nil }

func (l *local) pool() (proxy.PoolStats, error) { return l.p.PoolStats(), nil }

func (l *local) subscribe(fn func(proxy.Event)) (func(), error) { return l.p.Subscribe(fn), nil }

func (l *local) close() error { return l.p.Close() }
