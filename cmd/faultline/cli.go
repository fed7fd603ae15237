package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// defaultURL is where the client commands find faultline unless told.
const defaultURL = "http://" + api.DefaultControlAddr

// clientFlags are the flags every client command takes.
type clientFlags struct {
	url, token string
	json       bool
}

func (cf *clientFlags) register(fs *flag.FlagSet, jsonFlag bool) {
	fs.StringVar(&cf.url, "control", envOr(envURL, defaultURL), "URL of the faultline control API ($"+envURL+" sets the default)")
	fs.StringVar(&cf.token, "token", os.Getenv(envToken), "bearer token for the control API (default $"+envToken+")")
	if jsonFlag {
		fs.BoolVar(&cf.json, "json", false, "print JSON instead of a table")
	}
}

func (cf *clientFlags) client() *client.Client {
	return client.New(cf.url, client.WithToken(cf.token))
}

// failure prints err and returns exitError; when the control server could
// not be reached, it adds a hint: where the command looked, and how to
// start faultline or point the command elsewhere.
func (cf *clientFlags) failure(stderr io.Writer, err error) int {
	code := failure(stderr, err)
	if unreachable(err) {
		cf.hint(stderr)
	}
	return code
}

// hint says where a command looked for the control server it could not
// reach, and how to start faultline or point the command elsewhere.
func (cf *clientFlags) hint(stderr io.Writer) {
	fmt.Fprintf(stderr, "is faultline running at %s? start it with faultline run --listen ADDR --upstream ADDR "+
		"(or faultline demo), or point --control or $%s at it\n", cf.url, envURL)
}

// unreachable reports whether err is a failure to reach a server at all:
// a dial refused, timed out or unrouted, or a name that does not resolve.
func unreachable(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de)
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// subcommand dispatches "faultline NAME SUB ...".
func subcommand(ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	subs map[string]func(context.Context, []string, io.Writer, io.Writer) int) int {
	fs := newFlagSet(name)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		return usageError(fs, stdout, stderr, flag.ErrHelp)
	}
	if len(args) == 0 {
		return usageError(fs, stdout, stderr, fmt.Errorf("%s: want a subcommand (%s)", name, subNames(subs)))
	}
	run, ok := subs[args[0]]
	if !ok {
		return usageError(fs, stdout, stderr, fmt.Errorf("%s: unknown subcommand %q (want %s)", name, args[0], subNames(subs)))
	}
	return run(ctx, args[1:], stdout, stderr)
}

func subNames[T any](m map[string]T) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// --- proxy ---

func runProxyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcommand(ctx, "proxy", args, stdout, stderr, map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"ls":     proxyLs,
		"get":    proxyGet,
		"add":    proxyAdd,
		"update": proxyUpdate,
		"rm":     proxyRm,
	})
}

func proxyLs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("proxy ls")
	cf.register(fs, true)
	if code, done := parseNone(fs, args, stdout, stderr); done {
		return code
	}
	ps, err := cf.client().Proxies(ctx)
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, ps)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLISTEN\tUPSTREAM\tMODE\tENABLED\tCONNS\tFAULTS")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%d\t%d\n", p.Name, p.Listen, p.Upstream, p.Mode, p.Enabled, p.Conns, p.Faults)
	}
	return flushOut(tw, stderr)
}

func proxyAdd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf       clientFlags
		pf       proxyFlags
		disabled bool
	)
	fs := proxyFlagSet("proxy add", stderr, &cf, &pf, "upstream address HOST:PORT (required)")
	fs.BoolVar(&disabled, "disabled", false, "create the proxy without listening")
	pos, code, done := parseN(fs, args, 1, "proxy add: want one NAME", stdout, stderr)
	if done {
		return code
	}
	if pf.upstream == "" {
		return usageError(fs, stdout, stderr, errors.New("proxy add: --upstream is required"))
	}
	pf.name = pos[0]
	spec, err := pf.spec()
	if err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	spec.Disabled = disabled
	p, err := cf.client().CreateProxy(ctx, spec)
	return showProxy(stdout, stderr, cf, p, err)
}

// proxyFlagSet is the flag set of proxy add and proxy update: the client
// flags, the proxy flags and --upstream.
func proxyFlagSet(name string, stderr io.Writer, cf *clientFlags, pf *proxyFlags, upstreamUsage string) *flag.FlagSet {
	fs := newFlagSet(name)
	cf.register(fs, true)
	pf.register(fs, "")
	fs.StringVar(&pf.upstream, "upstream", "", upstreamUsage)
	return fs
}

// showProxy prints the proxy a command made or changed (JSON with
// --json), or its error.
func showProxy(stdout, stderr io.Writer, cf clientFlags, p api.Proxy, err error) int {
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, p)
	}
	printProxy(stdout, p, "")
	return exitOK
}

func proxyUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf      clientFlags
		pf      proxyFlags
		enabled bool
	)
	fs := proxyFlagSet("proxy update", stderr, &cf, &pf, "upstream address HOST:PORT")
	fs.BoolVar(&enabled, "enabled", false, "--enabled=false stops the proxy listening (its faults are kept); --enabled starts it again")
	// A setting not given is left as it is: no default to show.
	pf.mode = ""
	fs.Lookup("mode").DefValue = ""
	pos, code, done := parseN(fs, args, 1, "proxy update: want one NAME", stdout, stderr)
	if done {
		return code
	}
	u, n := pf.update(fs, enabled)
	if n == 0 {
		return usageError(fs, stdout, stderr, errors.New("proxy update: give at least one setting to change (--listen, --upstream, --mode, --enabled, ...)"))
	}
	if u.Mode != nil {
		if _, err := proxy.ParseMode(*u.Mode); err != nil {
			return usageError(fs, stdout, stderr, err)
		}
	}
	p, err := cf.client().UpdateProxy(ctx, pos[0], u)
	return showProxy(stdout, stderr, cf, p, err)
}

// update returns the change that the proxy flags set on fs ask for, with
// enabled for --enabled, and how many settings it changes. The pool flags
// make one setting: given any of them, the pool settings are replaced as a
// whole, the ones not given taking their defaults.
func (pf *proxyFlags) update(fs *flag.FlagSet, enabled bool) (api.ProxyUpdate, int) {
	var (
		u api.ProxyUpdate
		n int
	)
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			u.Listen = &pf.listen
		case "upstream":
			u.Upstream = &pf.upstream
		case "mode":
			u.Mode = &pf.mode
		case "dial-timeout":
			d := faults.Duration(pf.dialTimeout)
			u.DialTimeout = &d
		case "pool-size", "pool-max-idle", "pool-idle-timeout", "pool-max-lifetime":
			if u.Pool != nil {
				return
			}
			u.Pool = &api.PoolSpec{
				Size:        pf.poolSize,
				MaxIdle:     pf.poolMaxIdle,
				IdleTimeout: faults.Duration(pf.poolIdle),
				MaxLifetime: faults.Duration(pf.poolLifetime),
			}
		case "seed":
			u.Seed = &pf.seed
		case "enabled":
			u.Enabled = &enabled
		default: // --control, --token, --json
			return
		}
		n++
	})
	return u, n
}

func proxyRm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("proxy rm")
	cf.register(fs, false)
	names, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return usageError(fs, stdout, stderr, err)
	case len(names) == 0:
		return usageError(fs, stdout, stderr, errors.New("proxy rm: want at least one NAME"))
	}
	c := cf.client()
	for _, n := range names {
		if err := c.DeleteProxy(ctx, n); err != nil {
			return cf.failure(stderr, err)
		}
		fmt.Fprintf(stdout, "removed proxy %s\n", n)
	}
	return exitOK
}

// --- conns ---

// runConns lists the live connections of a proxy, or with "close" as its
// first argument closes one. A proxy named "close" is listed with
// "conns -- close" (or with any flag before its name).
func runConns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "close" {
		return connsClose(ctx, args[1:], stdout, stderr)
	}
	return listCommand(ctx, "conns", args, stdout, stderr, (*client.Client).Conns,
		"ID\tCLIENT\tAGE\tUP\tDOWN\tPOOLED\tREUSED\tFAULTS",
		func(c api.Conn) string {
			return fmt.Sprintf("%d\t%s\t%s\t%d\t%d\t%t\t%t\t%s", c.ID, c.Client, time.Duration(c.Age).Round(time.Millisecond),
				c.BytesUp, c.BytesDown, c.Pooled, c.Reused, strings.Join(c.Faults, ","))
		})
}

func connsClose(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf  clientFlags
		rst bool
	)
	fs := newFlagSet("conns close")
	cf.register(fs, false)
	fs.BoolVar(&rst, "rst", false, "close the client's connection with an RST instead of a FIN")
	pos, code, done := parseN(fs, args, 2, "conns close: want PROXY and connection ID", stdout, stderr)
	if done {
		return code
	}
	id, err := strconv.ParseUint(pos[1], 10, 64)
	if err != nil {
		return usageError(fs, stdout, stderr, fmt.Errorf("conns close: connection ID %q: want a number", pos[1]))
	}
	how := proxy.FIN
	if rst {
		how = proxy.RST
	}
	if err := cf.client().CloseConn(ctx, pos[0], id, how); err != nil {
		return cf.failure(stderr, err)
	}
	fmt.Fprintf(stdout, "closed connection %d of proxy %s (%s)\n", id, pos[0], how)
	return exitOK
}

// listCommand runs a command that takes one PROXY and lists what fetch
// returns for it: as JSON with --json, else as a table of header and one
// row per item.
func listCommand[T any](ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	fetch func(*client.Client, context.Context, string) ([]T, error), header string, row func(T) string) int {
	var cf clientFlags
	fs := newFlagSet(name)
	cf.register(fs, true)
	pos, code, done := parseN(fs, args, 1, name+": want one PROXY", stdout, stderr)
	if done {
		return code
	}
	list, err := fetch(cf.client(), ctx, pos[0])
	if err != nil {
		return cf.failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, item := range list {
		fmt.Fprintln(tw, row(item))
	}
	return flushOut(tw, stderr)
}

// --- pool ---

func runPoolCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcommand(ctx, "pool", args, stdout, stderr, map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"drain": poolDrain,
		"stats": poolStats,
	})
}

func poolDrain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("pool drain")
	cf.register(fs, false)
	pos, code, done := parseN(fs, args, 1, "pool drain: want one PROXY", stdout, stderr)
	if done {
		return code
	}
	n, err := cf.client().DrainPool(ctx, pos[0])
	if err != nil {
		return cf.failure(stderr, err)
	}
	noun := "connections"
	if n == 1 {
		noun = "connection"
	}
	fmt.Fprintf(stdout, "drained %d idle %s of proxy %s\n", n, noun, pos[0])
	return exitOK
}

// --- events ---

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf        clientFlags
		proxyName string
		kinds     string
		after     uint64
	)
	fs := newFlagSet("events")
	cf.register(fs, false)
	fs.StringVar(&proxyName, "proxy", "", "only the events of this proxy (which must exist)")
	fs.StringVar(&kinds, "kind", "", "only events of these kinds, comma-separated (accepted, fault-applied, ...)")
	fs.Uint64Var(&after, "after", client.FromNow, "start after this event ID (0: every event the server keeps; default: from now on)")
	if code, done := parseNone(fs, args, stdout, stderr); done {
		return code
	}
	var ks []string
	if kinds != "" {
		for _, k := range strings.Split(kinds, ",") {
			k = strings.TrimSpace(k)
			if _, err := proxy.ParseEventKind(k); err != nil {
				return usageError(fs, stdout, stderr, fmt.Errorf("--kind: %w", err))
			}
			ks = append(ks, k)
		}
	}
	c := cf.client()
	if proxyName != "" {
		// The server would subscribe to a name no proxy has, and the
		// command would wait for events that cannot come.
		if _, err := c.Proxy(ctx, proxyName); err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			return cf.failure(stderr, err)
		}
	}
	s, err := c.Dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return cf.failure(stderr, err)
	}
	defer s.Close()
	sub, err := s.Subscribe(ctx, proxyName, ks, after)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return cf.failure(stderr, err)
	}
	enc := json.NewEncoder(stdout)
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return exitOK // interrupted
			}
			return cf.failure(stderr, err)
		}
		if err := enc.Encode(e); err != nil {
			return cf.failure(stderr, err)
		}
	}
}

// --- helpers ---

// parseNone parses args, which must have no positional arguments. done
// says the command is over (bad usage, or -h answered), with code its exit
// code.
func parseNone(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageError(fs, stdout, stderr, err), true
	}
	if len(pos) > 0 {
		return usageError(fs, stdout, stderr, fmt.Errorf("unexpected argument %q", pos[0])), true
	}
	return exitOK, false
}

// parseN parses a command's flags and wants exactly n positional
// arguments; otherwise it answers as a usage error saying want. done
// reports that the command is over (help or a usage error), with code.
func parseN(fs *flag.FlagSet, args []string, n int, want string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	pos, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return nil, usageError(fs, stdout, stderr, err), true
	case len(pos) != n:
		return nil, usageError(fs, stdout, stderr, errors.New(want)), true
	}
	return pos, exitOK, false
}

func jsonOut(stdout, stderr io.Writer, v any) int {
	if err := printJSON(stdout, v); err != nil {
		return failure(stderr, err)
	}
	return exitOK
}

func flushOut(tw *tabwriter.Writer, stderr io.Writer) int {
	if err := tw.Flush(); err != nil {
		return failure(stderr, err)
	}
	return exitOK
}
