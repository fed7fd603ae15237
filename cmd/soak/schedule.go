package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
)

// The schedule's faults. None alters a byte that arrives (no corrupt, no
// limit, no blackhole, no stall with drop): whatever a client reads must be
// exactly what was sent to it.
var (
	commonKinds = []faults.Kind{faults.KindLatency, faults.KindBandwidth, faults.KindSlice,
		faults.KindStall, faults.KindReset, faults.KindIdleClose}
	poolKinds = append(commonKinds[:len(commonKinds):len(commonKinds)], faults.KindStale)
	dialKinds = append(commonKinds[:len(commonKinds):len(commonKinds)], faults.KindHalfClose)
)

// Schedule pacing.
const (
	maxActiveFaults = 3
	apiWait         = 10 * time.Second // bound on one websocket request
)

// activeFault is a fault the schedule added and will clear.
type activeFault struct {
	proxy, name string
	until       time.Time
	self        bool // it has a For and removes itself
}

// schedule toggles faults on a mode's proxies over a websocket session,
// from a seeded generator: the same seed gives the same sequence of faults
// (their timing follows the wall clock).
type schedule struct {
	sess    *client.Session
	proxies []string
	kinds   []faults.Kind
	rng     *rand.Rand
	viol    *violations
	mode    string

	n       int // faults added, for names
	active  []activeFault
	added   counts // by kind
	cleared int64  // by the schedule
	expired int64  // faults with a For that ended by themselves
	errs    counts // requests that failed without an answer (timeouts)
}

// newSchedule returns the schedule of a mode; only lists the kinds it may
// draw, if not nil (those the mode has not are left out).
func newSchedule(sess *client.Session, mode string, proxies []string, seed uint64, only []faults.Kind, viol *violations) *schedule {
	kinds := modeKinds(mode)
	if only != nil {
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(k faults.Kind) bool { return !slices.Contains(only, k) })
	}
	return &schedule{sess: sess, proxies: proxies, kinds: kinds, rng: rand.New(rand.NewPCG(seed, 0x5ced)),
		viol: viol, mode: mode, added: counts{}, errs: counts{}}
}

// modeKinds lists the kinds the schedule draws from in mode.
func modeKinds(mode string) []faults.Kind {
	if mode == "pool" {
		return poolKinds
	}
	return dialKinds
}

// run toggles faults until ctx is done, then clears every fault of its
// proxies.
func (s *schedule) run(ctx context.Context) {
	for {
		t := time.NewTimer(time.Duration(50+s.rng.IntN(200)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			s.clearAll()
			return
		case <-t.C:
		}
		now := time.Now()
		kept := s.active[:0]
		for _, a := range s.active {
			if now.Before(a.until) {
				kept = append(kept, a)
				continue
			}
			if a.self {
				s.expired++
				continue
			}
			s.call("clear", func(c context.Context) error { return s.sess.Clear(c, a.proxy, a.name) })
			s.cleared++
		}
		s.active = kept
		if len(s.active) < maxActiveFaults && len(s.kinds) > 0 {
			s.inject(now)
		}
	}
}

func (s *schedule) inject(now time.Time) {
	f := s.randomFault()
	s.n++
	f.Name = fmt.Sprintf("soak-%s-%d", s.mode, s.n)
	p := s.proxies[s.rng.IntN(len(s.proxies))]
	life := time.Duration(100+s.rng.IntN(1400)) * time.Millisecond
	if f.For > 0 {
		life = f.For // it removes itself then
	}
	ok := s.call("inject "+string(f.Kind), func(c context.Context) error {
		_, err := s.sess.Inject(c, p, f)
		return err
	})
	if ok {
		s.added[string(f.Kind)]++
		s.active = append(s.active, activeFault{proxy: p, name: f.Name, until: now.Add(life), self: f.For > 0})
	}
}

// call runs one websocket request; a refusal by the server is a violation
// (every fault the schedule makes is valid), a request that got no answer
// in time is counted.
func (s *schedule) call(what string, do func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), apiWait)
	defer cancel()
	err := do(ctx)
	var ae *api.Error
	switch {
	case err == nil:
		return true
	case errors.As(err, &ae):
		s.viol.add("api-refused", fmt.Sprintf("%s mode: %s: %v", s.mode, what, err))
	default:
		s.errs[what+": "+errKind(err)]++
	}
	return false
}

func (s *schedule) clearAll() {
	for _, p := range s.proxies {
		s.call("clear-all", func(c context.Context) error { return s.sess.ClearAll(c, p) })
	}
	s.cleared += int64(len(s.active))
	s.active = nil
}

func (s *schedule) ms(lo, hi int) time.Duration {
	return time.Duration(lo+s.rng.IntN(hi-lo+1)) * time.Millisecond
}

func (s *schedule) dir() faults.Direction {
	return []faults.Direction{faults.Up, faults.Down, faults.Both}[s.rng.IntN(3)]
}

// some targets a share of connections, live and new, drawn per
// connection. Which is explicit: a stale fault's default target is not
// sessions everywhere.
func (s *schedule) some(lo, hi float64) faults.Target {
	return faults.Target{Which: faults.All, Prob: lo + s.rng.Float64()*(hi-lo)}
}

// randomFault draws a fault of one of the schedule's kinds.
func (s *schedule) randomFault() faults.Fault {
	seed := s.rng.Uint64() | 1
	switch k := s.kinds[s.rng.IntN(len(s.kinds))]; k {
	case faults.KindLatency:
		return faults.Latency(s.ms(1, 20), s.ms(0, 20)).WithDir(s.dir()).WithSeed(seed)
	case faults.KindBandwidth:
		return faults.Bandwidth(int64(64<<10 + s.rng.IntN(1<<20))).WithDir(s.dir())
	case faults.KindSlice:
		return faults.Slice(1+s.rng.IntN(64), s.ms(0, 1)).WithDir(s.dir())
	case faults.KindStall:
		return faults.Stall(false).WithDir(s.dir()).WithFor(s.ms(50, 500)).WithTarget(s.some(0.1, 0.5))
	case faults.KindReset:
		side := []faults.Side{faults.ToClient, faults.ToUpstream, faults.ToBoth}[s.rng.IntN(3)]
		return faults.Reset(side).WithTarget(s.some(0.02, 0.2)).WithSeed(seed)
	case faults.KindIdleClose:
		return faults.IdleClose(s.ms(20, 200), s.rng.IntN(2) == 0).WithTarget(s.some(0.1, 0.5)).WithSeed(seed)
	case faults.KindStale:
		mode := []faults.StaleMode{faults.StaleEOF, faults.StaleReset, faults.StaleBlackhole}[s.rng.IntN(3)]
		return faults.Stale(mode).WithTarget(s.some(0.02, 0.2)).WithSeed(seed)
	case faults.KindHalfClose:
		d := []faults.Direction{faults.Up, faults.Down}[s.rng.IntN(2)]
		return faults.HalfClose(d).WithTarget(s.some(0.05, 0.3)).WithSeed(seed)
	default:
		panic("soak: no generator for fault kind " + string(k))
	}
}
