package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
)

func runFaultCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcommand(ctx, "fault", args, stdout, stderr, map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"ls":     faultLs,
		"get":    faultGet,
		"add":    faultAdd,
		"update": faultUpdate,
		"rm":     faultRm,
	})
}

func faultLs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return listCommand(ctx, "fault ls", args, stdout, stderr, (*client.Client).Faults,
		"NAME\tKIND\tDIR\tTARGET\tPARAMETERS",
		func(f faults.Fault) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", f.Name, f.Kind, dirText(f), targetText(f.Target), paramsText(f))
		})
}

// dirText is a fault's direction, or "-" for a kind that acts on whole
// connections or on the proxy (reset, drop-on-accept, connect-delay,
// refuse, idle-close, stale), where the API still reports the default.
func dirText(f faults.Fault) string {
	if f.Kind.OneShot() || f.Kind.ProxyLevel() || f.Kind.AtConnect() {
		return "-"
	}
	return string(f.Dir)
}

// targetText describes a target in a few words: "all", "ids 3,4 count 1".
func targetText(t faults.Target) string {
	parts := []string{string(t.Which)}
	if parts[0] == "" {
		parts[0] = string(faults.All)
	}
	if len(t.IDs) > 0 {
		ids := make([]string, len(t.IDs))
		for i, id := range t.IDs {
			ids[i] = strconv.FormatUint(id, 10)
		}
		parts = append(parts, strings.Join(ids, ","))
	}
	if t.Every > 0 {
		parts = append(parts, fmt.Sprintf("every %d", t.Every))
	}
	if t.Prob > 0 {
		parts = append(parts, fmt.Sprintf("prob %g", t.Prob))
	}
	if t.Count > 0 {
		parts = append(parts, fmt.Sprintf("count %d", t.Count))
	}
	return strings.Join(parts, " ")
}

// paramsText lists a fault's other fields as in its JSON: "delay=150ms
// jitter=10ms".
func paramsText(f faults.Fault) string {
	b, err := json.Marshal(f)
	if err != nil {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return ""
	}
	for _, k := range []string{"name", "kind", "dir", "target"} {
		delete(m, k)
	}
	if f.Kind != faults.KindReset {
		delete(m, "side") // filled in for every kind, read by reset only
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}

// faultFlags are the flags that define a fault.
type faultFlags struct {
	f      faults.Fault
	ids    string
	target string
}

func (ff *faultFlags) register(fs *flag.FlagSet) {
	f := &ff.f
	fs.StringVar(&f.Name, "name", "", "the fault's name (default: its kind and a number)")
	fs.Func("kind", "what the fault does: latency, stall, blackhole, reset, half-close, bandwidth, slice, limit,\nslow-close, corrupt, drop-on-accept, connect-delay, refuse, idle-close, stale", func(s string) error {
		f.Kind = faults.Kind(s)
		return checkKind(f.Kind)
	})
	fs.Func("dir", "direction: up (client to upstream), down or both (default both)", func(s string) error {
		f.Dir = faults.Direction(s)
		return nil
	})
	fs.Func("side", "reset: toward client, upstream or both (default both)", func(s string) error {
		f.Side = faults.Side(s)
		return nil
	})
	durationVar(fs, &f.Delay, "delay", 0, "latency: per chunk; slice: between pieces; slow-close, connect-delay: the wait")
	durationVar(fs, &f.Jitter, "jitter", 0, "latency: up to this much more per chunk")
	fs.BoolVar(&f.Drop, "drop", false, "stall: discard what was held when the stall ends")
	fs.Int64Var(&f.Rate, "rate", 0, "bandwidth: bytes per second")
	fs.IntVar(&f.Size, "size", 0, "slice: largest write")
	fs.Int64Var(&f.Bytes, "bytes", 0, "limit: bytes relayed before the close")
	fs.Float64Var(&f.Prob, "prob", 0, "corrupt: chance per byte of one flipped bit")
	durationVar(fs, &f.Idle, "idle", 0, "idle-close: how long a connection may be idle")
	fs.BoolVar(&f.Abort, "abort", false, "idle-close: close with RST instead of FIN")
	fs.Func("stale-mode", "stale: eof, reset or blackhole", func(s string) error {
		f.Mode = faults.StaleMode(s)
		return nil
	})
	fs.StringVar(&ff.target, "target", "", "which connections: all (default), new, existing, ids; stale: idle (the default with no other target flag: the idle pool only)")
	fs.StringVar(&ff.ids, "ids", "", "with --target ids: connection IDs, comma-separated")
	fs.IntVar(&f.Target.Every, "every", 0, "pick every Nth connection")
	fs.Float64Var(&f.Target.Prob, "target-prob", 0, "pick each connection with this probability")
	fs.IntVar(&f.Target.Count, "count", 0, "stop picking after this many connections")
	fs.Int64Var(&f.AfterBytes, "after-bytes", 0, "act once this many more bytes were relayed, per connection")
	fs.IntVar(&f.FromExchange, "from-exchange", 0, "act from this request/response exchange of each connection on (1: the first)")
	fs.IntVar(&f.EveryExchange, "every-exchange", 0, "act only on every Nth request/response exchange of each connection")
	durationVar(fs, &f.After, "after", 0, "start acting this long after being added")
	durationVar(fs, &f.For, "for", 0, "last this long once acting (0: until removed)")
	fs.Uint64Var(&f.Seed, "seed", 0, "seed for the fault's random choices (0: the proxy's)")
}

// fault returns the fault the flags define.
func (ff *faultFlags) fault() (faults.Fault, error) {
	f := ff.f
	f.Target.Which = faults.Which(ff.target)
	if ff.ids != "" {
		for _, s := range strings.Split(ff.ids, ",") {
			id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return f, fmt.Errorf("--ids: %q is not a connection ID", s)
			}
			f.Target.IDs = append(f.Target.IDs, id)
		}
		if f.Target.Which == "" {
			f.Target.Which = faults.ByID
		}
	}
	return f, nil
}

func faultAdd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf clientFlags
		ff faultFlags
	)
	fs := newFlagSet("fault add")
	cf.register(fs, true)
	ff.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	var f faults.Fault
	switch {
	case len(pos) == 1 && ff.f.Kind != "":
		if f, err = ff.fault(); err != nil {
			return usageError(fs, stdout, stderr, err)
		}
	case len(pos) == 2:
		if faultFlagsSet(fs) > 0 {
			return usageError(fs, stdout, stderr, errors.New("fault add: give the fault as JSON or as flags, not both"))
		}
		if f, err = faultJSON("fault add", pos[1]); err != nil {
			return usageError(fs, stdout, stderr, err)
		}
	case len(pos) == 1:
		return usageError(fs, stdout, stderr, errors.New("fault add: --kind is required (or the fault as JSON)"))
	default:
		return usageError(fs, stdout, stderr, errors.New("fault add: want PROXY and flags, or PROXY and the fault as JSON"))
	}
	got, err := cf.client().AddFault(ctx, pos[0], f)
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, got)
	}
	fmt.Fprintf(stdout, "added fault %s to %s: %s %s %s\n", got.Name, pos[0], got.Kind, got.Dir, paramsText(got))
	return exitOK
}

// faultJSON reads a fault given as JSON on command cmd's line, checking
// its kind as the flags' --kind is checked.
func faultJSON(cmd, arg string) (faults.Fault, error) {
	var f faults.Fault
	if err := json.Unmarshal([]byte(arg), &f); err != nil {
		return f, fmt.Errorf("%s: %v", cmd, err)
	}
	return f, checkKind(f.Kind)
}

func faultRm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf  clientFlags
		all bool
	)
	fs := newFlagSet("fault rm")
	cf.register(fs, false)
	fs.BoolVar(&all, "all", false, "remove every fault of the proxy")
	pos, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return usageError(fs, stdout, stderr, err)
	case len(pos) == 0:
		return usageError(fs, stdout, stderr, errors.New("fault rm: want PROXY and NAME... or --all"))
	case all && len(pos) > 1, !all && len(pos) == 1:
		return usageError(fs, stdout, stderr, errors.New("fault rm: give fault NAMEs or --all"))
	}
	c := cf.client()
	if all {
		if err := c.ClearFaults(ctx, pos[0]); err != nil {
			return cf.failure(stderr, err)
		}
		fmt.Fprintf(stdout, "removed every fault of %s\n", pos[0])
		return exitOK
	}
	for _, name := range pos[1:] {
		if err := c.RemoveFault(ctx, pos[0], name); err != nil {
			return cf.failure(stderr, err)
		}
		fmt.Fprintf(stdout, "removed fault %s from %s\n", name, pos[0])
	}
	return exitOK
}
