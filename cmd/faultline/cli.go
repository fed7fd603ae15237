package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
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
	fs.StringVar(&cf.url, "control", envOr(envURL, defaultURL), "URL of the faultline control API (default $"+envURL+", else "+defaultURL+")")
	fs.StringVar(&cf.token, "token", os.Getenv(envToken), "bearer token for the control API (default $"+envToken+")")
	if jsonFlag {
		fs.BoolVar(&cf.json, "json", false, "print JSON instead of a table")
	}
}

func (cf *clientFlags) client() *client.Client {
	return client.New(cf.url, client.WithToken(cf.token))
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
	if len(args) == 0 {
		return usageError(stderr, fmt.Errorf("%s: want a subcommand (%s)", name, subNames(subs)))
	}
	run, ok := subs[args[0]]
	if !ok {
		return usageError(stderr, fmt.Errorf("%s: unknown subcommand %q (want %s)", name, args[0], subNames(subs)))
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
		"ls":  proxyLs,
		"add": proxyAdd,
		"rm":  proxyRm,
	})
}

func proxyLs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("proxy ls", stderr)
	cf.register(fs, true)
	if code := parseNone(fs, args, stderr); code != exitOK {
		return code
	}
	ps, err := cf.client().Proxies(ctx)
	if err != nil {
		return failure(stderr, err)
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
	fs := newFlagSet("proxy add", stderr)
	cf.register(fs, true)
	pf.register(fs, "")
	fs.StringVar(&pf.upstream, "upstream", "", "upstream address HOST:PORT (required)")
	fs.BoolVar(&disabled, "disabled", false, "create the proxy without listening")
	pos, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return usageError(stderr, err)
	case len(pos) != 1:
		return usageError(stderr, errors.New("proxy add: want one NAME"))
	case pf.upstream == "":
		return usageError(stderr, errors.New("proxy add: --upstream is required"))
	}
	pf.name = pos[0]
	spec, err := pf.spec()
	if err != nil {
		return usageError(stderr, err)
	}
	spec.Disabled = disabled
	p, err := cf.client().CreateProxy(ctx, spec)
	if err != nil {
		return failure(stderr, err)
	}
	if cf.json {
		return jsonOut(stdout, stderr, p)
	}
	printProxy(stdout, p, "")
	return exitOK
}

func proxyRm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("proxy rm", stderr)
	cf.register(fs, false)
	names, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return usageError(stderr, err)
	case len(names) == 0:
		return usageError(stderr, errors.New("proxy rm: want at least one NAME"))
	}
	c := cf.client()
	for _, n := range names {
		if err := c.DeleteProxy(ctx, n); err != nil {
			return failure(stderr, err)
		}
		fmt.Fprintf(stdout, "removed proxy %s\n", n)
	}
	return exitOK
}

// --- conns ---

func runConns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return listCommand(ctx, "conns", args, stdout, stderr, (*client.Client).Conns,
		"ID\tCLIENT\tAGE\tUP\tDOWN\tPOOLED\tREUSED\tFAULTS",
		func(c api.Conn) string {
			return fmt.Sprintf("%d\t%s\t%s\t%d\t%d\t%t\t%t\t%s", c.ID, c.Client, time.Duration(c.Age).Round(time.Millisecond),
				c.BytesUp, c.BytesDown, c.Pooled, c.Reused, strings.Join(c.Faults, ","))
		})
}

// listCommand runs a command that takes one PROXY and lists what fetch
// returns for it: as JSON with --json, else as a table of header and one
// row per item.
func listCommand[T any](ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	fetch func(*client.Client, context.Context, string) ([]T, error), header string, row func(T) string) int {
	var cf clientFlags
	fs := newFlagSet(name, stderr)
	cf.register(fs, true)
	pos, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return usageError(stderr, err)
	case len(pos) != 1:
		return usageError(stderr, fmt.Errorf("%s: want one PROXY", name))
	}
	list, err := fetch(cf.client(), ctx, pos[0])
	if err != nil {
		return failure(stderr, err)
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

// --- events ---

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cf        clientFlags
		proxyName string
		kinds     string
		after     uint64
	)
	fs := newFlagSet("events", stderr)
	cf.register(fs, false)
	fs.StringVar(&proxyName, "proxy", "", "only the events of this proxy")
	fs.StringVar(&kinds, "kind", "", "only events of these kinds, comma-separated (accepted, fault-applied, ...)")
	fs.Uint64Var(&after, "after", client.FromNow, "start after this event ID (0: every event the server keeps; default: from now on)")
	if code := parseNone(fs, args, stderr); code != exitOK {
		return code
	}
	var ks []string
	if kinds != "" {
		for _, k := range strings.Split(kinds, ",") {
			k = strings.TrimSpace(k)
			if _, err := proxy.ParseEventKind(k); err != nil {
				return usageError(stderr, fmt.Errorf("--kind: %w", err))
			}
			ks = append(ks, k)
		}
	}
	s, err := cf.client().Dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return failure(stderr, err)
	}
	defer s.Close()
	sub, err := s.Subscribe(ctx, proxyName, ks, after)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return failure(stderr, err)
	}
	enc := json.NewEncoder(stdout)
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return exitOK // interrupted
			}
			return failure(stderr, err)
		}
		if err := enc.Encode(e); err != nil {
			return failure(stderr, err)
		}
	}
}

// --- helpers ---

// parseNone parses args, which must have no positional arguments; it
// returns exitOK or the usage exit code.
func parseNone(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageError(stderr, err)
	}
	if len(pos) > 0 {
		return usageError(stderr, fmt.Errorf("unexpected argument %q", pos[0]))
	}
	return exitOK
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
