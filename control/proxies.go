package control

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/names"
	"github.com/faultline-proxy/faultline/proxy"
)

// entry is a proxy the server manages. The proxy itself (p) exists only
// while it is enabled; its settings and, while disabled, its faults are
// kept here.
type entry struct {
	name   string
	log    *eventLog
	logger *slog.Logger // the server's, for the proxy's own log lines (a recovered panic)

	op sync.Mutex // serializes changes: create, update, delete, faults

	mu       sync.Mutex // guards the fields below
	spec     api.ProxySpec
	p        *proxy.Proxy   // nil while disabled
	unsub    func()         // stops copying p's events to the log
	held     []faults.Fault // the faults while disabled
	faultSeq int            // for naming faults added while disabled
	deleted  bool
	retired  totals // counters of earlier incarnations of p
	accepted uint64
	fired    map[string]uint64 // fault-fired events by fault name
}

// totals are counters that must not go back when a proxy restarts.
type totals struct {
	up, down                int64
	dialed, reused, retried uint64
	discarded               map[proxy.Reason]uint64
}

// config checks spec and returns the proxy configuration it describes.
func config(spec api.ProxySpec) (proxy.Config, error) {
	if !names.Valid(spec.Name) {
		return proxy.Config{}, api.Errorf(api.ErrBadRequest, "name %q: want %s", spec.Name, names.Rule)
	}
	if err := checkHostPort("upstream", spec.Upstream); err != nil {
		return proxy.Config{}, err
	}
	if err := checkHostPort("listen", spec.Listen); err != nil {
		return proxy.Config{}, err
	}
	mode, err := proxy.ParseMode(spec.Mode)
	if spec.Mode == "" {
		mode, err = proxy.ModeDial, nil
	}
	if err != nil {
		return proxy.Config{}, api.Errorf(api.ErrBadRequest, "mode %q: want dial or pool", spec.Mode)
	}
	if mode == proxy.ModeDial && spec.Pool != (api.PoolSpec{}) {
		return proxy.Config{}, api.Errorf(api.ErrBadRequest, "pool settings are for mode pool")
	}
	cfg := proxy.Config{
		Upstream:    spec.Upstream,
		Mode:        mode,
		DialTimeout: time.Duration(spec.DialTimeout),
		Pool: proxy.PoolConfig{
			Size:        spec.Pool.Size,
			MaxIdle:     spec.Pool.MaxIdle,
			IdleTimeout: time.Duration(spec.Pool.IdleTimeout),
			MaxLifetime: time.Duration(spec.Pool.MaxLifetime),
		},
		Seed: spec.Seed,
	}
	if _, err := cfg.WithDefaults(); err != nil { // bounds, also for a proxy created disabled
		return proxy.Config{}, api.Errorf(api.ErrBadRequest, "%v", err)
	}
	return cfg, nil
}

func checkHostPort(field, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return api.Errorf(api.ErrBadRequest, "%s %q: want host:port", field, addr)
	}
	return nil
}

// listenProxy is proxy.Listen; a test replaces it to make a restart fail.
var listenProxy = proxy.Listen

// start listens with the entry's spec and adds faults fs to the new proxy.
// Called with e.op held and e.p nil.
func (e *entry) start(cfg proxy.Config, fs []faults.Fault) error {
	e.mu.Lock()
	listen := e.spec.Listen
	e.mu.Unlock()
	cfg.Logger = e.logger.With("proxy", e.name)
	p, err := listenProxy(listen, cfg)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return api.Errorf(api.ErrPortInUse, "proxy %s: listen on %s: address in use", e.name, listen)
		}
		if errors.Is(err, proxy.ErrBadConfig) {
			return api.Errorf(api.ErrBadRequest, "proxy %s: %v", e.name, err)
		}
		return api.Errorf(api.ErrBadRequest, "proxy %s: listen on %s: %v", e.name, listen, err)
	}
	unsub := p.Subscribe(func(ev proxy.Event) { e.observe(ev) })
	for _, f := range fs {
		if _, err := p.AddFault(f); err != nil {
			unsub()
			_ = p.Close()
			return faultError(err)
		}
	}
	e.mu.Lock()
	e.p, e.unsub = p, unsub
	e.spec.Listen = p.Addr().String() // a restart keeps the port
	e.held = nil
	e.mu.Unlock()
	return nil
}

// observe copies an event to the log and counts what the metrics need.
func (e *entry) observe(ev proxy.Event) {
	e.log.append(e.name, ev)
	switch ev.Kind {
	case proxy.EventAccepted:
		e.mu.Lock()
		e.accepted++
		e.mu.Unlock()
	case proxy.EventFaultFired:
		e.mu.Lock()
		if e.fired == nil {
			e.fired = make(map[string]uint64)
		}
		e.fired[ev.Fault]++
		e.mu.Unlock()
	}
}

// stop closes the proxy, keeping its faults and counters. Called with e.op
// held.
func (e *entry) stop() {
	e.mu.Lock()
	p, unsub := e.p, e.unsub
	e.mu.Unlock()
	if p == nil {
		return
	}
	held := p.Faults()
	_ = p.Close()
	unsub() // after Close: the closing events are logged too
	up, down := p.Bytes()
	st := p.PoolStats()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.p, e.unsub, e.held = nil, nil, held
	r := &e.retired
	r.up += up
	r.down += down
	r.dialed += st.Dialed
	r.reused += st.Reused
	r.retried += st.Retried
	if r.discarded == nil {
		r.discarded = make(map[proxy.Reason]uint64)
	}
	for k, v := range st.Discarded {
		r.discarded[k] += v
	}
}

// faults returns the entry's faults: the live proxy's, or those held while
// it is disabled.
func (e *entry) faults() []faults.Fault {
	e.mu.Lock()
	p, held := e.p, slices.Clone(e.held)
	e.mu.Unlock()
	if p != nil {
		return p.Faults()
	}
	return held
}

// info describes the entry.
func (e *entry) info() api.Proxy {
	e.mu.Lock()
	spec, p := e.spec, e.p
	e.mu.Unlock()
	out := api.Proxy{
		Name: spec.Name, Listen: spec.Listen, Upstream: spec.Upstream, Mode: spec.Mode,
		DialTimeout: spec.DialTimeout, Pool: spec.Pool, Seed: spec.Seed, Enabled: p != nil,
	}
	// The settings as the proxy runs them, defaults filled in: a disabled
	// one's as it will run them once enabled (its spec was checked when
	// it was set).
	var cfg proxy.Config
	var err error
	if p != nil {
		cfg = p.Config()
		out.Conns = p.ActiveConns()
		out.Faults = len(p.Faults())
	} else {
		if cfg, err = config(spec); err == nil {
			cfg, err = cfg.WithDefaults()
		}
		out.Faults = len(e.faults())
	}
	if err == nil {
		out.Mode = cfg.Mode.String()
		out.DialTimeout = faults.Duration(cfg.DialTimeout)
		out.Seed = cfg.Seed
		out.Pool = api.PoolSpec{}
		if cfg.Mode == proxy.ModePool {
			out.Pool = api.PoolSpec{Size: cfg.Pool.Size, MaxIdle: cfg.Pool.MaxIdle,
				IdleTimeout: faults.Duration(cfg.Pool.IdleTimeout), MaxLifetime: faults.Duration(cfg.Pool.MaxLifetime)}
		}
		// A negative setting means "no limit", which the proxy runs as 0;
		// but 0 in a spec means "the default". Report what was set, so
		// that what GET returns means the same when sent back.
		if spec.DialTimeout < 0 {
			out.DialTimeout = spec.DialTimeout
		}
		if cfg.Mode == proxy.ModePool {
			if spec.Pool.MaxIdle < 0 {
				out.Pool.MaxIdle = spec.Pool.MaxIdle
			}
			if spec.Pool.IdleTimeout < 0 {
				out.Pool.IdleTimeout = spec.Pool.IdleTimeout
			}
			if spec.Pool.MaxLifetime < 0 {
				out.Pool.MaxLifetime = spec.Pool.MaxLifetime
			}
		}
	}
	return out
}

// live returns the running proxy or a not-found error naming why.
func (e *entry) live() (*proxy.Proxy, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.p == nil {
		return nil, api.Errorf(api.ErrNotFound, "proxy %s is disabled: it has no connections or pool", e.name)
	}
	return e.p, nil
}

// faultChange applies f to the live proxy with live (returning once in
// force), or, while the proxy is disabled, validates f as the proxy would
// and passes it to held with e.mu held.
func (e *entry) faultChange(f faults.Fault, live func(*proxy.Proxy) (faults.Fault, error), held func(nf faults.Fault) (faults.Fault, error)) (faults.Fault, error) {
	e.mu.Lock()
	p := e.p
	e.mu.Unlock()
	if p != nil {
		nf, err := live(p)
		return nf, faultError(err)
	}
	nf, err := e.checkHeld(f)
	if err != nil {
		return f, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return held(nf)
}

// addFault adds f: to the live proxy (returning once in force), or to the
// faults held while disabled. Called with e.op held.
func (e *entry) addFault(f faults.Fault) (faults.Fault, error) {
	return e.faultChange(f, func(p *proxy.Proxy) (faults.Fault, error) { return p.AddFault(f) }, func(nf faults.Fault) (faults.Fault, error) {
		taken := func(name string) bool {
			return slices.ContainsFunc(e.held, func(h faults.Fault) bool { return h.Name == name })
		}
		if nf.Name == "" { // named as the proxy names them, skipping names taken
			for e.faultSeq++; taken(fmt.Sprintf("%s-%d", nf.Kind, e.faultSeq)); e.faultSeq++ {
			}
			nf.Name = fmt.Sprintf("%s-%d", nf.Kind, e.faultSeq)
		}
		if taken(nf.Name) {
			return f, api.Errorf(api.ErrNameTaken, "proxy %s already has a fault named %q", e.name, nf.Name)
		}
		if len(e.held) >= proxy.MaxFaults {
			return f, api.Errorf(api.ErrTooManyFaults, "proxy %s holds %d faults, the most it takes", e.name, proxy.MaxFaults)
		}
		e.held = append(e.held, nf)
		return nf, nil
	})
}

// checkHeld validates a fault for a disabled proxy as AddFault would.
func (e *entry) checkHeld(f faults.Fault) (faults.Fault, error) {
	nf, err := f.Normalized()
	if err != nil {
		return f, faultError(err)
	}
	e.mu.Lock()
	mode := e.spec.Mode
	e.mu.Unlock()
	if nf.Kind == faults.KindStale && mode != proxy.ModePool.String() {
		return f, faultError(fmt.Errorf("%w: %s", proxy.ErrNotPool, nf.Kind))
	}
	return nf, nil
}

// updateFault replaces the fault named f.Name. Called with e.op held.
func (e *entry) updateFault(f faults.Fault) (faults.Fault, error) {
	return e.faultChange(f, func(p *proxy.Proxy) (faults.Fault, error) { return p.UpdateFault(f) }, func(nf faults.Fault) (faults.Fault, error) {
		i := slices.IndexFunc(e.held, func(h faults.Fault) bool { return h.Name == nf.Name })
		switch {
		case i < 0:
			return f, api.Errorf(api.ErrNotFound, "proxy %s has no fault named %q", e.name, nf.Name)
		case e.held[i].Kind != nf.Kind:
			return f, api.Errorf(api.ErrBadFault, "fault %q is %s and cannot become %s; remove it and add another", nf.Name, e.held[i].Kind, nf.Kind)
		}
		e.held[i] = nf
		return nf, nil
	})
}

// removeFault removes the named fault. Called with e.op held.
func (e *entry) removeFault(name string) error {
	e.mu.Lock()
	p := e.p
	e.mu.Unlock()
	if p != nil {
		return faultError(p.RemoveFault(name))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.held, func(h faults.Fault) bool { return h.Name == name })
	if i < 0 {
		return api.Errorf(api.ErrNotFound, "proxy %s has no fault named %q", e.name, name)
	}
	e.held = slices.Delete(e.held, i, i+1)
	return nil
}

// clearFaults removes every fault. Called with e.op held.
func (e *entry) clearFaults() {
	e.mu.Lock()
	p := e.p
	e.held = nil
	e.mu.Unlock()
	if p != nil {
		p.ClearFaults()
	}
}

// faultError maps the proxy's and the faults package's errors to API
// errors.
func faultError(err error) error {
	var ae *api.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, faults.ErrUnknownKind):
		return api.Errorf(api.ErrUnknownKind, "%v", err)
	case errors.Is(err, faults.ErrBadFault), errors.Is(err, proxy.ErrNotPool):
		return api.Errorf(api.ErrBadFault, "%v", err)
	case errors.Is(err, proxy.ErrFaultExists):
		return api.Errorf(api.ErrNameTaken, "%v", err)
	case errors.Is(err, proxy.ErrTooManyFaults):
		return api.Errorf(api.ErrTooManyFaults, "%v", err)
	case errors.Is(err, proxy.ErrNoFault):
		return api.Errorf(api.ErrNotFound, "%v", err)
	case errors.Is(err, proxy.ErrProxyClosed):
		return api.Errorf(api.ErrNotFound, "the proxy was closed")
	}
	return api.Errorf(api.ErrInternal, "%v", err)
}
