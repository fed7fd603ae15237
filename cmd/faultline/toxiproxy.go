package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/toxiproxy"
)

const toxiproxyUsage = `usage: faultline toxiproxy-server [-host HOST] [-port PORT] [-config FILE] [-seed N]
                                [-allow-host HOST]... [-allow-origin URL]...

Serves toxiproxy's HTTP API (v2.12.0) and faultline's own (/api/v1, its
websocket, /metrics) on one port, so that toxiproxy's clients work unchanged:
a CI script swaps the binary name "toxiproxy-server" for
"faultline toxiproxy-server" and nothing else. The flags are
toxiproxy-server's, with its defaults (localhost:8474). -config is a JSON
array of proxies, as POST /populate takes, each with the toxics it starts with.
-seed seeds the toxicity draws, so a run replays (default: the time, printed).
See docs/toxiproxy.md.
`

// runToxiproxy is "faultline toxiproxy-server".
func runToxiproxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("toxiproxy-server")
	var (
		host, port, config   string
		seed                 int64
		printVersion         bool
		proxyMet, runtimeMet bool
		hosts, origins       stringsFlag
		procs                int
	)
	fs.StringVar(&host, "host", "localhost", "host for the API to listen on")
	fs.StringVar(&port, "port", "8474", "port for the API to listen on")
	fs.StringVar(&config, "config", "", "JSON file of proxies (and their toxics) to create at start")
	fs.Int64Var(&seed, "seed", time.Now().UTC().UnixNano(), "seed for the toxics' random draws (toxicity, jitter)")
	fs.BoolVar(&printVersion, "version", false, "print the version")
	fs.BoolVar(&proxyMet, "proxy-metrics", false, "accepted for toxiproxy's sake: /metrics is always served")
	fs.BoolVar(&runtimeMet, "runtime-metrics", false, "accepted for toxiproxy's sake: /metrics is always served")
	fs.Var(&hosts, "allow-host", "a Host the API answers to besides loopback names and addresses and its own address (repeatable)")
	fs.Var(&origins, "allow-origin", "a browser origin allowed besides the API's own (repeatable)")
	registerProcs(fs, &procs, "-")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "%s\nflags:\n", toxiproxyUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		return usageError(fs, stdout, stderr, err)
	}
	if fs.NArg() > 0 {
		return usageError(fs, stdout, stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	for _, h := range hosts {
		if err := checkHost(h); err != nil {
			fmt.Fprintf(stderr, "faultline toxiproxy-server: -allow-host %q: %v\n", h, err)
			return exitUsage
		}
	}
	if err := applyProcs(fs, procs, "-"); err != nil {
		fmt.Fprintf(stderr, "faultline toxiproxy-server: %v\n", err)
		return exitUsage
	}
	if printVersion {
		fmt.Fprintf(stdout, "toxiproxy-server version %s (faultline %s)\n", toxiproxy.Version, versionString())
		return exitOK
	}
	addr := net.JoinHostPort(host, port)
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv := control.New(control.Options{
		AllowHosts:   hosts,
		AllowOrigins: origins,
		// toxiproxy has no authentication, and its Docker image listens on
		// 0.0.0.0: beyond loopback the API is open, as toxiproxy's is
		// (the Host and Origin checks stay; the control server logs what
		// it exposes).
		Insecure: !loopbackHost(host),
		Version:  versionString(),
		Logger:   logger,
	})
	defer srv.Close()
	tp := toxiproxy.New(srv, toxiproxy.Options{Seed: uint64(seed), Logger: logger})
	srv.Mount(tp)
	logger.Info("toxiproxy-server", "version", toxiproxy.Version, "faultline", versionString(), "seed", seed)
	if config != "" {
		f, err := os.Open(config)
		if err != nil {
			fmt.Fprintf(stderr, "faultline toxiproxy-server: -config: %v\n", err)
			return exitUsage
		}
		made, err := tp.LoadConfig(f)
		_ = f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "faultline toxiproxy-server: -config %s: %v\n", config, err)
			return exitUsage
		}
		printToxiproxies(stdout, made)
	}
	a, err := srv.Listen(addr)
	if err != nil {
		return failure(stderr, err)
	}
	fmt.Fprintf(stdout, "toxiproxy API listening on %s (faultline's API under /api/v1)\n", controlURL(a))
	<-ctx.Done()
	return exitOK
}

// printToxiproxies prints where each proxy -config made listens, as
// printProxy does.
func printToxiproxies(w io.Writer, ps []toxiproxy.Proxy) {
	for _, p := range ps {
		printProxy(w, api.Proxy{Name: p.Name, Listen: p.Listen, Upstream: p.Upstream, Enabled: p.Enabled}, "")
	}
}

// loopbackHost reports whether host names or is a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// startToxiproxy serves toxiproxy's API on addr beside a run (--toxiproxy).
func startToxiproxy(srv *control.Server, addr string, seed uint64, stdout, stderr io.Writer) int {
	tp := toxiproxy.New(srv, toxiproxy.Options{Seed: seed})
	a, err := srv.ListenExtra(addr, tp)
	if err != nil {
		if errors.Is(err, control.ErrInsecureListen) {
			fmt.Fprintf(stderr, "faultline: --toxiproxy %s: %v.\n"+
				"toxiproxy's API has no token: listen on loopback, or pass --insecure-control to serve it anyway.\n", addr, err)
			return exitUsage
		}
		return failure(stderr, err)
	}
	fmt.Fprintf(stdout, "toxiproxy API listening on %s\n", controlURL(a))
	return exitOK
}
