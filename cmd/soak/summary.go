package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
)

func proxyReason(r string) proxy.Reason { return proxy.Reason(r) }

// printSummary prints what the run did and found.
func printSummary(w io.Writer, cfg *config, bin string, results []*modeResult, ec *eventChecker,
	before, after procStats, viol, limits *violations) {
	fmt.Fprintf(w, "\nchaos soak summary: seed %d, %d connections per mode, %d at once, early leavers %.0f%%, upstream delay up to %s, faultline %s\n",
		cfg.seed, cfg.conns, cfg.concurrency, cfg.early*100, cfg.maxDelay, bin)
	for _, r := range results {
		l := r.load
		rate := float64(l.conns) / r.took.Seconds()
		fmt.Fprintf(w, "mode %s: %d connections (%s) in %s, %.0f/s; %d clean, %d exchanges verified, %s up, %s down\n",
			r.mode, l.conns, l.byUpstream, r.took.Round(100*time.Millisecond), rate, l.clean, l.exchanges, size(l.bytesUp), size(l.bytesDown))
		if r.capped {
			fmt.Fprintf(w, "  INCOMPLETE: -max-duration %s stopped the load after %d of %d connections\n", cfg.maxDuration, l.conns, cfg.conns)
		}
		fmt.Fprintf(w, "  early leavers: %s\n", l.leavers)
		kinds := r.sched.kinds
		if !cfg.faults {
			fmt.Fprintln(w, "  faults: off (-faults=false)")
		} else {
			fmt.Fprintf(w, "  faults toggled over the websocket: %d added (%s), %d cleared, %d ended by their own for; kinds drawn from: %s\n",
				sum(r.sched.added), r.sched.added, r.sched.cleared, r.sched.expired, faultKinds(kinds))
		}
		if len(r.sched.errs) > 0 {
			fmt.Fprintf(w, "  fault requests without an answer: %s\n", r.sched.errs)
		}
		fmt.Fprintf(w, "  client errors (first per connection): %s\n", l.errors)
		fmt.Fprintf(w, "  client violations: %s\n", l.violations)
		if len(l.limits) > 0 {
			fmt.Fprintf(w, "  what TCP cannot show the proxy (not violations; see docs/soak.md): %s\n", l.limits)
		}
		for _, t := range r.targets {
			c := ec.snapshot(t.proxy)
			if r.mode == "dial" {
				fmt.Fprintf(w, "  %s: %d upstream connections dialed\n", t.proxy, c.dialed)
				continue
			}
			fmt.Fprintf(w, "  %s: %d dialed, borrowed %d fresh + %d reused, %d released, %d retried; discarded by reason: %s\n",
				t.proxy, c.dialed, c.borrowedFresh, c.borrowedReused, c.released, c.retried, c.discarded)
			for _, reason := range slices.Sorted(maps.Keys(c.errs)) {
				fmt.Fprintf(w, "    %s discards, errors seen: %s\n", reason, strings.Join(c.errs[reason], "; "))
			}
			if st, ok := r.pool[t.proxy]; ok {
				fmt.Fprintf(w, "    pool after the load: busy %d, idle %d (max %d)\n", st.Busy, st.Idle, r.poolWant)
			}
		}
	}
	if err := ec.streamErr(); err != nil {
		fmt.Fprintf(w, "event stream ended early: %v\n", err)
	}
	fmt.Fprintf(w, "process before the load: %s\n", before)
	fmt.Fprintf(w, "process after the settle: %s\n", after)
	limits.print(w, "known limit ")
	n := viol.total()
	if n == 0 {
		fmt.Fprintln(w, "violations: none\nresult: PASS")
		return
	}
	fmt.Fprintf(w, "violations: %d\n", n)
	viol.print(w, "  ")
	fmt.Fprintln(w, "result: FAIL")
}

// print lists v's kinds, each as prefix, its name and count, then its
// examples.
func (v *violations) print(w io.Writer, prefix string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(v.byKind)) {
		fmt.Fprintf(w, "%s%s: %d\n", prefix, k, v.byKind[k])
		for _, d := range v.details[k] {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
}

func sum(c counts) int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// size formats a byte count in MB (10^6 bytes).
func size(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
