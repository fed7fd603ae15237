package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/faultline-proxy/faultline/internal/echo"
	"github.com/faultline-proxy/faultline/proxy"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `usage:
  faultline run --listen ADDR --upstream ADDR [--mode dial|pool] [--pool-size N]
                [--pool-max-idle N] [--pool-idle-timeout D] [--pool-max-lifetime D]
                [--dial-timeout D]
  faultline demo [--listen ADDR] [--mode dial|pool]

Durations are Go durations: 500ms, 30s, 5m.
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runProxy(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "faultline: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// proxyFlags are the flags that configure one proxy.
type proxyFlags struct {
	listen, upstream, mode string
	cfg                    proxy.Config
}

func (pf *proxyFlags) register(fs *flag.FlagSet, defaultListen string) {
	fs.StringVar(&pf.listen, "listen", defaultListen, "address to listen on (port 0 picks a free one)")
	fs.StringVar(&pf.mode, "mode", "dial", "dial: one upstream connection per client; pool: reuse upstream connections")
	fs.IntVar(&pf.cfg.Pool.Size, "pool-size", 0, "most upstream connections open at once in pool mode (0: no limit)")
	fs.IntVar(&pf.cfg.Pool.MaxIdle, "pool-max-idle", 0, fmt.Sprintf("most idle upstream connections kept (0: pool size, else %d; negative: none)", proxy.DefaultPoolMaxIdle))
	fs.DurationVar(&pf.cfg.Pool.IdleTimeout, "pool-idle-timeout", 0, fmt.Sprintf("close pooled connections idle this long (0: %s; negative: never)", proxy.DefaultPoolIdleTimeout))
	fs.DurationVar(&pf.cfg.Pool.MaxLifetime, "pool-max-lifetime", 0, fmt.Sprintf("close pooled connections this old (0: %s; negative: never)", proxy.DefaultPoolMaxLifetime))
	fs.DurationVar(&pf.cfg.DialTimeout, "dial-timeout", 0, fmt.Sprintf("bound on dialing the upstream (0: %s; negative: none)", proxy.DefaultDialTimeout))
}

// parse parses args and checks the mode; errors are usage errors.
func (pf *proxyFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	mode, err := proxy.ParseMode(pf.mode)
	if err != nil {
		return err
	}
	pf.cfg.Mode = mode
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("faultline "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var pf proxyFlags
	fs := newFlagSet("run", stderr)
	pf.register(fs, "")
	fs.StringVar(&pf.upstream, "upstream", "", "upstream address HOST:PORT (required)")
	if err := pf.parse(fs, args); err != nil {
		return usageError(stderr, err)
	}
	switch {
	case pf.listen == "":
		return usageError(stderr, errors.New("--listen is required"))
	case pf.upstream == "":
		return usageError(stderr, errors.New("--upstream is required"))
	}
	pf.cfg.Upstream = pf.upstream
	pf.cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	p, err := proxy.Listen(pf.listen, pf.cfg)
	if errors.Is(err, proxy.ErrBadConfig) || errors.Is(err, proxy.ErrBadMode) {
		return usageError(stderr, err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "faultline: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "proxy listening on %s -> %s\n", p.Addr(), pf.upstream)
	<-ctx.Done()
	_ = p.Close()
	return exitOK
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var pf proxyFlags
	fs := newFlagSet("demo", stderr)
	pf.register(fs, "127.0.0.1:7470")
	if err := pf.parse(fs, args); err != nil {
		return usageError(stderr, err)
	}
	up, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "faultline: echo upstream: %v\n", err)
		return exitError
	}
	defer up.Close()
	pf.cfg.Upstream = up.Addr().String()
	pf.cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	p, err := proxy.Listen(pf.listen, pf.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "faultline: %v\n", err)
		return exitError
	}
	defer p.Close()
	host, port := splitAddr(p.Addr().String())
	fmt.Fprintf(stdout, "echo upstream listening on %s\n", up.Addr())
	fmt.Fprintf(stdout, "proxy listening on %s -> %s (%s mode)\n", p.Addr(), up.Addr(), pf.cfg.Mode)
	fmt.Fprintf(stdout, "\nTry it in another terminal:\n")
	fmt.Fprintf(stdout, "  nc %s %s            # type a line: the echo comes back through the proxy\n", host, port)
	if pf.cfg.Mode == proxy.ModeDial {
		fmt.Fprintf(stdout, "  echo hello | nc -N %s %s   # half-close: the reply still arrives after your FIN\n", host, port)
	} else {
		fmt.Fprintf(stdout, "  nc %s %s            # again after closing the first: the proxy reuses the upstream connection\n", host, port)
	}
	fmt.Fprintf(stdout, "Press Ctrl-C to stop.\n")
	<-ctx.Done()
	return exitOK
}

func usageError(stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	fmt.Fprintf(stderr, "faultline: %v\n\n%s", err, usage)
	return exitUsage
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
