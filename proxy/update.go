package proxy

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/faultline-proxy/faultline/faults"
)

// UpdateFault replaces the fault named f.Name with f, which must be of the
// same kind (to change the kind, remove the fault and add another). It
// returns once the new form is in force on every live connection it targets,
// as AddFault does. The switch is one step on each copy loop: no byte goes
// through with neither form in force.
//
// The fault keeps its place in the order faults were added. If its Target
// and Seed are unchanged, each connection keeps the pick it had; otherwise
// connections are picked anew, in ID order. Timing starts again from the
// update: After and For count from now, and AfterBytes and limit count the
// bytes relayed from now.
func (p *Proxy) UpdateFault(f faults.Fault) (faults.Fault, error) {
	nf, err := f.Normalized()
	if err != nil {
		return f, err
	}
	if nf.Name == "" {
		return f, fmt.Errorf("%w: a fault to update needs its name", faults.ErrBadFault)
	}
	fs := &p.faults
	var pending *applySet
	defer func() { pending.wait() }()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return f, ErrProxyClosed
	}
	i := slices.IndexFunc(fs.list, func(af *activeFault) bool { return af.f.Name == nf.Name })
	if i < 0 {
		return f, fmt.Errorf("%w: %q", ErrNoFault, nf.Name)
	}
	old := fs.list[i]
	if old.f.Kind != nf.Kind {
		return f, fmt.Errorf("%w: fault %q is %s and cannot become %s; remove it and add another", faults.ErrBadFault, nf.Name, old.f.Kind, nf.Kind)
	}
	seed := nf.Seed
	if seed == 0 {
		seed = p.cfg.Seed
	}
	af := &activeFault{f: nf, seq: old.seq, rng: rand.New(rand.NewPCG(seed, 1))}
	live := p.liveSessions()
	slices.SortFunc(live, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	if sameTarget(old.f, nf) {
		af.pickRng, af.considered, af.picked = old.pickRng, old.considered, old.picked
		for _, s := range live {
			if picked, ok := s.picks[old]; ok {
				s.picks[af] = picked
			}
		}
	} else {
		af.pickRng = rand.New(rand.NewPCG(seed, 2))
	}
	fs.replace(i, af)
	old.stopWatch()
	if old.timer != nil && old.timer.Stop() {
		fs.timers.Done()
	}

	if nf.Kind.ProxyLevel() {
		if nf.Kind == faults.KindRefuse && old.acting && nf.After > 0 && !slices.ContainsFunc(fs.list, func(o *activeFault) bool {
			return o.acting && o.f.Kind == faults.KindRefuse
		}) {
			if err := p.unrefuse(); err != nil {
				return nf, err
			}
		}
		if nf.After > 0 {
			p.startTimer(af, nf.After, func() { p.activate(af) })
			return nf, nil
		}
		pending = p.actLocked(af)
		return nf, nil
	}
	af.acting = nf.After <= 0
	pending = newApplySet()
	for _, s := range live {
		s.swap(old, af, pending)
		delete(s.picks, old)
	}
	switch {
	case nf.After > 0:
		p.startTimer(af, nf.After, func() { p.activate(af) })
	case nf.For > 0:
		p.startTimer(af, nf.For, func() { _ = p.RemoveFault(af.f.Name) })
	}
	return nf, nil
}

// sameTarget reports whether a and b pick the same connections.
func sameTarget(a, b faults.Fault) bool {
	ta, tb := a.Target, b.Target
	return a.Seed == b.Seed && ta.Which == tb.Which && slices.Equal(ta.IDs, tb.IDs) &&
		ta.Every == tb.Every && ta.Prob == tb.Prob && ta.Count == tb.Count
}

// swap puts af in force on s in place of old, changing each copy loop's
// chain once, and adds the loops to wait for to as. Called with the proxy's
// fault mutex held.
func (s *session) swap(old, af *activeFault, as *applySet) {
	if !s.faultReady {
		return
	}
	wasPicked := s.picks[old]
	want := s.targetedBy(af)
	switch {
	case af.f.Kind.AtConnect():
		return
	case af.f.Kind.OneShot():
		if want && !wasPicked {
			s.fireReset(af)
		}
		return
	}
	for _, l := range []*loop{&s.up, &s.down} {
		i := slices.Index(l.active, old)
		has := want && af.f.Dir.Has(l.dir)
		ev, op := EventFaultApplied, opAppend
		switch {
		case i < 0 && !has:
			continue
		case i >= 0 && has:
			op = opReplace
		case i >= 0:
			if old.f.Kind == faults.KindStall && old.f.Drop {
				s.dropHeld(l) // as detach does
			}
			ev, op = EventFaultCleared, opDelete
		}
		as.change(s, l, ev, op, i, af)
	}
}

// ClearFaults removes every fault, returning once none acts on any
// connection.
func (p *Proxy) ClearFaults() {
	for _, f := range p.Faults() {
		_ = p.RemoveFault(f.Name) // ErrNoFault: a For timer removed it first
	}
}
