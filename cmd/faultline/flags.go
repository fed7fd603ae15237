package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// durationFlag is a time.Duration flag whose error says what it wants:
// `"5" is not a duration: add a unit, e.g. 5ms or 5s`.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("%q is not a duration: add a unit, e.g. %sms or %ss", s, s, s)
		}
		return fmt.Errorf("%q is not a duration, e.g. 5ms or 5s", s)
	}
	*d = durationFlag(v)
	return nil
}

// durationVar defines a duration flag on fs that explains a bad value.
// Its help reads "-delay duration".
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationFlag)(p), name, usage+" (a `duration` such as 150ms or 2s)")
}

// faultKinds are the kinds of fault, in the order the help lists them.
var faultKinds = []faults.Kind{
	faults.KindLatency, faults.KindStall, faults.KindBlackhole, faults.KindReset, faults.KindHalfClose,
	faults.KindBandwidth, faults.KindSlice, faults.KindLimit, faults.KindSlowClose, faults.KindCorrupt,
	faults.KindDropOnAccept, faults.KindConnectDelay, faults.KindRefuse, faults.KindIdleClose, faults.KindStale,
}

// toxicKinds maps toxiproxy's toxic names that differ from faultline's
// kinds (beyond "_" for "-") to the nearest kind.
var toxicKinds = map[string]faults.Kind{
	"timeout":    faults.KindStall,
	"reset_peer": faults.KindReset,
	"slicer":     faults.KindSlice,
	"limit_data": faults.KindLimit,
}

// checkKind returns nil if k is a kind of fault, else an error that lists
// the kinds and suggests the nearest: "unknown fault kind "timeout": did
// you mean stall? (toxiproxy's timeout) (kinds: latency, ...)".
func checkKind(k faults.Kind) error {
	names := make([]string, len(faultKinds))
	for i, fk := range faultKinds {
		if fk == k {
			return nil
		}
		names[i] = string(fk)
	}
	list := "(kinds: " + strings.Join(names, ", ") + ")"
	if tk, ok := toxicKinds[string(k)]; ok {
		return fmt.Errorf("unknown fault kind %q: did you mean %s? (toxiproxy's %s) %s", k, tk, k, list)
	}
	if near := nearestKind(string(k)); near != "" {
		return fmt.Errorf("unknown fault kind %q: did you mean %s? %s", k, near, list)
	}
	return fmt.Errorf("unknown fault kind %q %s", k, list)
}

// nearestKind returns the kind nearest to s, if one is near enough (a
// few typing mistakes, or "_" for "-"), else "".
func nearestKind(s string) faults.Kind {
	s = strings.ReplaceAll(strings.ToLower(s), "_", "-")
	best, bestD := faults.Kind(""), len(s)/3+1
	if bestD > 3 {
		bestD = 3
	}
	for _, k := range faultKinds {
		if d := editDistance(s, string(k)); d <= bestD && (best == "" || d < editDistance(s, string(best))) {
			best = k
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
