package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/faultline-proxy/faultline/control/api"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `usage:
  faultline run [--name NAME] --listen ADDR --upstream ADDR [--mode dial|pool]
                [--pool-size N] [--pool-max-idle N] [--pool-idle-timeout D]
                [--pool-max-lifetime D] [--dial-timeout D] [--seed N]
                [--config FILE] [--control ADDR] [--token TOKEN] [--allow-origin URL]...
                [--allow-host HOST]... [--insecure-control] [--toxiproxy ADDR] [--procs N]
  faultline demo [--listen ADDR] [--mode dial|pool] [--control ADDR] [--token TOKEN] [--procs N]
  faultline toxiproxy-server [-host HOST] [-port PORT] [-config FILE] [-seed N] [-procs N]

  With --config FILE (YAML), --listen and --upstream are needed only for one
  more proxy. --control defaults to 127.0.0.1:8470 (port 0 picks a free one);
  --token defaults to $FAULTLINE_TOKEN. Beyond loopback the control API needs
  a token unless --insecure-control; it answers only to loopback Host names
  and addresses, its own address and each --allow-host. The proxies run on
  one Go processor (--procs 1, the cheapest for a test's small messages;
  --procs 0 is Go's default, one per CPU; $GOMAXPROCS wins if --procs is not given).

Against a running faultline:
  faultline proxy ls [--json]
  faultline proxy get NAME [--json]
  faultline proxy add NAME --upstream ADDR [--listen ADDR] [--mode dial|pool] [--disabled] [--json]
  faultline proxy update NAME [--listen ADDR] [--upstream ADDR] [--mode dial|pool] [pool flags]
                         [--dial-timeout D] [--seed N] [--enabled=true|false] [--json]
  faultline proxy rm NAME...
  faultline fault ls PROXY [--json]
  faultline fault get PROXY NAME [--json]
  faultline fault add PROXY --kind KIND [fault flags] [--json]
  faultline fault add PROXY '{"kind":"latency","delay":"150ms"}' [--json]
  faultline fault update PROXY NAME [fault flags] [--json]   (only the settings given change)
  faultline fault update PROXY NAME '{"kind":"stall"}' [--json]   (the fault replaced)
  faultline fault rm PROXY NAME... | --all
  faultline conns PROXY [--json]
  faultline conns close PROXY ID [--rst]
  faultline pool drain PROXY
  faultline pool stats PROXY [--json]
  faultline events [--proxy PROXY] [--kind KIND,...] [--after ID]
  faultline reset                                     (every fault removed, every proxy enabled)
  faultline apply FILE                                (the config file's proxies and faults made so)
  faultline version                                   (also --version)
  faultline report [-o FILE] [--title TITLE] [LOG]   (an event log, stdin if no LOG, to one HTML page)

  Each takes --control URL (default $FAULTLINE_URL, else http://127.0.0.1:8470)
  and --token TOKEN (default $FAULTLINE_TOKEN), after the command or before it
  (faultline --control URL --token T proxy ls); "faultline CMD -h" lists the rest.
  proxy update changes only the settings given (at least one); changing any
  but --enabled restarts the proxy (live connections closed, faults kept),
  and a pool flag replaces all the pool settings (the others: defaults).
  A proxy named "close" is listed with "faultline conns -- close".

Durations are Go durations: 500ms, 30s, 5m.
`

// Environment variables.
const (
	envURL   = "FAULTLINE_URL"
	envToken = "FAULTLINE_TOKEN"
)

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	args, err := moveGlobalFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "faultline: %v\nsee 'faultline -h'\n", err)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "toxiproxy-server":
		return runToxiproxy(ctx, args[1:], stdout, stderr)
	case "proxy":
		return runProxyCmd(ctx, args[1:], stdout, stderr)
	case "fault":
		return runFaultCmd(ctx, args[1:], stdout, stderr)
	case "conns":
		return runConns(ctx, args[1:], stdout, stderr)
	case "pool":
		return runPoolCmd(ctx, args[1:], stdout, stderr)
	case "events":
		return runEvents(ctx, args[1:], stdout, stderr)
	case "reset":
		return runReset(ctx, args[1:], stdout, stderr)
	case "apply":
		return runApply(ctx, args[1:], stdout, stderr)
	case "report":
		return runReport(ctx, args[1:], os.Stdin, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "faultline %s\n", versionString())
		return exitOK
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "faultline: unknown command %q\nsee 'faultline -h'\n", args[0])
	return exitUsage
}

// globalFlags are the flags that may come before the command: the client
// commands' --control and --token.
var globalFlags = []string{"control", "token"}

// clientCommands are the commands that take the global flags, with how
// many words name each (conns close, proxy ls, ...), 0 when it depends.
var clientCommands = map[string]int{"proxy": 2, "fault": 2, "pool": 2, "conns": 0, "events": 1, "reset": 1, "apply": 1}

// moveGlobalFlags moves the global flags before the command
// ("faultline --control URL proxy ls") to just after the words that name
// it ("faultline proxy ls --control URL"), where its flag set reads them.
func moveGlobalFlags(args []string) ([]string, error) {
	var flags []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !slices.Contains(globalFlags, name) {
			break // -h, --version, or a bad flag: run says
		}
		if !hasValue {
			if len(args) < 2 {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			value, args = args[1], args[1:]
		}
		flags = append(flags, "--"+name+"="+value)
		args = args[1:]
	}
	if len(flags) == 0 {
		return args, nil
	}
	if len(args) == 0 {
		return nil, errors.New("want a command after " + strings.Join(flags, " "))
	}
	words, ok := clientCommands[args[0]]
	if !ok {
		return nil, fmt.Errorf("--control and --token before the command are for the client commands (proxy, fault, conns, pool, events), not %s", args[0])
	}
	if words == 0 { // conns PROXY, or conns close PROXY ID
		words = 1
		if len(args) > 1 && args[1] == "close" {
			words = 2
		}
	}
	if len(args) < words {
		return args, nil // "proxy" alone: it says it wants a subcommand
	}
	return slices.Concat(args[:words], flags, args[words:]), nil
}

// newFlagSet returns the flag set of "faultline name". It prints nothing
// itself: usageError says what went wrong, or prints the help for -h.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("faultline "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses args with fs, allowing flags after positional
// arguments ("proxy rm a b --control URL"), and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usageError ends the command of fs after bad usage: for -h (err is
// flag.ErrHelp) it prints the command's help on stdout and returns exitOK;
// otherwise it prints err and a hint on stderr ("see 'faultline fault add
// -h'"), not the whole usage, and returns exitUsage.
func usageError(fs *flag.FlagSet, stdout, stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		printHelp(fs, stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "faultline: %s\nsee '%s -h'\n", flagErrText(err), fs.Name())
	return exitUsage
}

// printHelp prints the synopsis of fs's command (its lines of usage) and
// its flags.
func printHelp(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "usage:\n%s", synopsis(fs.Name()))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// synopsis returns the lines of usage that show cmd ("faultline proxy"),
// each with the lines that continue it.
func synopsis(cmd string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(usage, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == cmd || strings.HasPrefix(t, cmd+" "):
			in = true
		case in && strings.HasPrefix(l, "    ") && !strings.HasPrefix(t, "faultline "):
			// a continuation line
		default:
			in = false
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	if b.Len() == 0 {
		return "  " + cmd + "\n"
	}
	return b.String()
}

// flagErrRE matches the flag package's error for a bad flag value.
var flagErrRE = regexp.MustCompile(`^invalid value (".*") for flag -([\w-]+): (.*)$`)

// flagErrText is err's message, with the flag package's "invalid value "5"
// for flag -delay: ..." said as "--delay: ...".
func flagErrText(err error) string {
	m := flagErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	if strings.Contains(m[3], m[1]) {
		return fmt.Sprintf("--%s: %s", m[2], m[3])
	}
	return fmt.Sprintf("--%s: %s: %s", m[2], m[1], m[3])
}

// failure prints err and returns exitError.
func failure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "faultline: %s\n", errText(err))
	return exitError
}

// errText is err's message: for an *api.Error, the server's message with
// its code.
func errText(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s (%s)", ae.Message, ae.Code)
	}
	return strings.TrimPrefix(err.Error(), "faultline: ")
}

// splitAddr splits host:port, returning the whole address as host when it
// has no port.
func splitAddr(addr string) (host, port string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return h, p
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// envOr returns the environment variable name, or def if it is empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
