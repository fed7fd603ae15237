package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// runReset is "faultline reset": every fault of every proxy removed, every
// proxy enabled.
func runReset(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("reset")
	cf.register(fs, false)
	if code, done := parseNone(fs, args, stdout, stderr); done {
		return code
	}
	if err := cf.client().Reset(ctx); err != nil {
		return cf.failure(stderr, err)
	}
	fmt.Fprintln(stdout, "removed every fault of every proxy and enabled every proxy")
	return exitOK
}

// proxyGet is "faultline proxy get NAME": one proxy's settings, one per
// line, or JSON.
func proxyGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("proxy get")
	cf.register(fs, true)
	pos, code, done := parseN(fs, args, 1, "proxy get: want one NAME", stdout, stderr)
	if done {
		return code
	}
	p, err := cf.client().Proxy(ctx, pos[0])
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, p)
	}
	fmt.Fprintf(stdout, "name: %s\nlisten: %s\nupstream: %s\nmode: %s\ndial_timeout: %s\n",
		p.Name, p.Listen, p.Upstream, p.Mode, time.Duration(p.DialTimeout))
	if p.Mode == "pool" {
		fmt.Fprintf(stdout, "pool: size=%d max_idle=%d idle_timeout=%s max_lifetime=%s\n",
			p.Pool.Size, p.Pool.MaxIdle, time.Duration(p.Pool.IdleTimeout), time.Duration(p.Pool.MaxLifetime))
	}
	fmt.Fprintf(stdout, "seed: %d\nenabled: %t\nconns: %d\nfaults: %d\n", p.Seed, p.Enabled, p.Conns, p.Faults)
	return exitOK
}

// poolStats is "faultline pool stats PROXY": the pool's counters.
func poolStats(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("pool stats")
	cf.register(fs, true)
	pos, code, done := parseN(fs, args, 1, "pool stats: want one PROXY", stdout, stderr)
	if done {
		return code
	}
	p, err := cf.client().Pool(ctx, pos[0])
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, p)
	}
	reasons := make([]string, 0, len(p.Discarded))
	for r, n := range p.Discarded {
		reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
	}
	sort.Strings(reasons)
	fmt.Fprintf(stdout, "idle: %d\nbusy: %d\ndialed: %d\nreused: %d\nretried: %d\ndiscarded: %s\n",
		p.Idle, p.Busy, p.Dialed, p.Reused, p.Retried, strings.Join(reasons, " "))
	return exitOK
}

// faultGet is "faultline fault get PROXY NAME": one fault, as a row of
// fault ls, or JSON.
func faultGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("fault get")
	cf.register(fs, true)
	pos, code, done := parseN(fs, args, 2, "fault get: want PROXY and NAME", stdout, stderr)
	if done {
		return code
	}
	f, err := cf.client().Fault(ctx, pos[0], pos[1])
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, f)
	}
	fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Dir, targetText(f.Target), paramsText(f))
	return exitOK
}

// faultUpdate is "faultline fault update PROXY NAME": with fault flags, the
// fault with the settings they name changed and the others kept; with the
// fault as JSON, the fault replaced.
func faultUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf clientFlags
		ff faultFlags
	)
	fs := newFlagSet("fault update")
	cf.register(fs, true)
	ff.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	set := faultFlagsSet(fs)
	c := cf.client()
	var f faults.Fault
	switch {
	case len(pos) == 3 && set == 0:
		if f, err = faultJSON("fault update", pos[2]); err != nil {
			return usageError(fs, stdout, stderr, err)
		}
		if f.Name != "" && f.Name != pos[1] {
			return usageError(fs, stdout, stderr, fmt.Errorf("fault update: the JSON names fault %q, not %q", f.Name, pos[1]))
		}
	case len(pos) == 3:
		return usageError(fs, stdout, stderr, errors.New("fault update: give the fault as JSON or as flags, not both"))
	case len(pos) != 2:
		return usageError(fs, stdout, stderr, errors.New("fault update: want PROXY and NAME, and flags or the fault as JSON"))
	case set == 0:
		return usageError(fs, stdout, stderr, errors.New("fault update: give the settings to change (fault flags), or the fault as JSON"))
	case fs.Lookup("name").Value.String() != "":
		return usageError(fs, stdout, stderr, errors.New("fault update: a fault cannot be renamed (remove it and add it)"))
	default:
		// Parse the flags again, over the fault as it is, so that the
		// settings they do not name are kept.
		cur, err := c.Fault(ctx, pos[0], pos[1])
		if err != nil {
			return cf.failure(stderr, err)
		}
		var over faultFlags
		fs2 := newFlagSet("fault update")
		var cf2 clientFlags
		cf2.register(fs2, true)
		over.register(fs2)
		over.f = cur
		if _, err := parseArgs(fs2, args); err != nil {
			return usageError(fs, stdout, stderr, err)
		}
		if over.target == "" && over.ids == "" {
			over.target = string(cur.Target.Which)
		}
		if over.ids != "" {
			over.f.Target.IDs = nil
		}
		if f, err = over.fault(); err != nil {
			return usageError(fs, stdout, stderr, err)
		}
	}
	f.Name = pos[1]
	got, err := c.UpdateFault(ctx, pos[0], f)
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, got)
	}
	fmt.Fprintf(stdout, "updated fault %s of %s: %s %s %s\n", got.Name, pos[0], got.Kind, got.Dir, paramsText(got))
	return exitOK
}

// faultFlagsSet returns how many flags set on fs define a fault (all but
// the client flags).
func faultFlagsSet(fs *flag.FlagSet) int {
	set := 0
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name != "control" && fl.Name != "token" && fl.Name != "json" {
			set++
		}
	})
	return set
}
