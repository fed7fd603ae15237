package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// proxyFlags are the flags that define one proxy.
type proxyFlags struct {
	name, listen, upstream, mode string
	dialTimeout                  time.Duration
	poolSize, poolMaxIdle        int
	poolIdle, poolLifetime       time.Duration
	seed                         uint64
}

func (pf *proxyFlags) register(fs *flag.FlagSet, defaultListen string) {
	fs.StringVar(&pf.listen, "listen", defaultListen, "address to listen on (port 0 picks a free one)")
	fs.StringVar(&pf.mode, "mode", "dial", "dial: one upstream connection per client; pool: reuse upstream connections")
	fs.IntVar(&pf.poolSize, "pool-size", 0, "most upstream connections open at once in pool mode (0: no limit)")
	fs.IntVar(&pf.poolMaxIdle, "pool-max-idle", 0, fmt.Sprintf("most idle upstream connections kept (0: pool size, else %d; negative: none)", proxy.DefaultPoolMaxIdle))
	durationVar(fs, &pf.poolIdle, "pool-idle-timeout", 0, fmt.Sprintf("close pooled connections idle this long (0: %s; negative: never)", proxy.DefaultPoolIdleTimeout))
	durationVar(fs, &pf.poolLifetime, "pool-max-lifetime", 0, fmt.Sprintf("close pooled connections this old (0: %s; negative: never)", proxy.DefaultPoolMaxLifetime))
	durationVar(fs, &pf.dialTimeout, "dial-timeout", 0, fmt.Sprintf("bound on dialing the upstream (0: %s; negative: none)", proxy.DefaultDialTimeout))
	fs.Uint64Var(&pf.seed, "seed", 0, "seed for the random choices of faults that bring none (0: 1)")
}

// spec returns the proxy the flags define; a bad mode is a usage error.
func (pf *proxyFlags) spec() (api.ProxySpec, error) {
	if _, err := proxy.ParseMode(pf.mode); err != nil {
		return api.ProxySpec{}, err
	}
	return api.ProxySpec{
		Name:        pf.name,
		Listen:      pf.listen,
		Upstream:    pf.upstream,
		Mode:        pf.mode,
		DialTimeout: faults.Duration(pf.dialTimeout),
		Pool: api.PoolSpec{
			Size:        pf.poolSize,
			MaxIdle:     pf.poolMaxIdle,
			IdleTimeout: faults.Duration(pf.poolIdle),
			MaxLifetime: faults.Duration(pf.poolLifetime),
		},
		Seed: pf.seed,
	}, nil
}

// serverFlags are the control server's flags.
type serverFlags struct {
	control  string
	token    string
	origins  stringsFlag
	hosts    stringsFlag
	insecure bool
	procs    int
}

func (sf *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.control, "control", api.DefaultControlAddr, "address of the control API, HOST:PORT (port 0 picks a free one)")
	fs.StringVar(&sf.token, "token", os.Getenv(envToken), "require \"Authorization: Bearer TOKEN\" on the control API (default $"+envToken+")")
	fs.Var(&sf.origins, "allow-origin", "a browser origin allowed on the control API besides its own host, such as http://localhost:3000 (repeatable)")
	fs.Var(&sf.hosts, "allow-host", "a Host the control API answers to besides loopback names and addresses, such as ci-runner.internal or ci-runner.internal:8470 (repeatable)")
	fs.BoolVar(&sf.insecure, "insecure-control", false, "let the control API listen beyond loopback without a token")
	registerProcs(fs, &sf.procs, "--")
}

// check reports a flag value the server cannot take: an --allow-host that
// is not a host, a --procs out of range. It sets GOMAXPROCS from --procs.
func (sf *serverFlags) check(fs *flag.FlagSet) error {
	if err := sf.checkHosts(); err != nil {
		return err
	}
	return applyProcs(fs, sf.procs, "--")
}

// checkHosts reports an --allow-host value that is not a host.
func (sf *serverFlags) checkHosts() error {
	for _, h := range sf.hosts {
		if err := checkHost(h); err != nil {
			return fmt.Errorf("--allow-host %q: %v", h, err)
		}
	}
	return nil
}

// checkHost reports whether h is a Host header value: a name or address,
// optionally with a port.
func checkHost(h string) error {
	if h == "" || strings.ContainsAny(h, "/?#@* \t") {
		return errors.New("want a host name or address, optionally with :PORT (no scheme, path or wildcard)")
	}
	return nil
}

// listen starts the control server the flags define. On failure it says
// why and returns the exit code: usage for an address beyond loopback with
// no token, error otherwise (a port in use).
func (sf *serverFlags) listen(stderr io.Writer) (*control.Server, net.Addr, int) {
	srv := control.New(control.Options{
		Token:        sf.token,
		AllowOrigins: sf.origins,
		AllowHosts:   sf.hosts,
		Insecure:     sf.insecure,
		Version:      versionString(),
		Logger:       slog.New(slog.NewTextHandler(stderr, nil)),
	})
	addr, err := srv.Listen(sf.control)
	if err == nil {
		return srv, addr, exitOK
	}
	_ = srv.Close()
	if errors.Is(err, control.ErrInsecureListen) {
		fmt.Fprintf(stderr, "faultline: --control %s: %v.\n"+
			"Anyone who can reach this machine on that port could create proxies and inject faults. Set a token\n"+
			"(--token, $%s, or token: in the config file), listen on loopback (--control 127.0.0.1:PORT),\n"+
			"or pass --insecure-control (insecure_control: true in the config file) to serve it without one.\n",
			sf.control, control.ErrInsecureListen, envToken)
		return nil, nil, exitUsage
	}
	return nil, nil, failure(stderr, err)
}

// namedSpec is a proxy to create and where it was defined, for errors.
type namedSpec struct {
	spec  api.ProxySpec
	where string // "FILE:LINE" or "" for the flags
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		pf         proxyFlags
		sf         serverFlags
		configPath string
		toxiAddr   string
	)
	fs := newFlagSet("run")
	fs.StringVar(&pf.name, "name", "main", "name of the proxy the flags define")
	pf.register(fs, "")
	fs.StringVar(&pf.upstream, "upstream", "", "upstream address HOST:PORT")
	sf.register(fs)
	fs.StringVar(&configPath, "config", "", "YAML file of proxies (with their faults) and control settings")
	fs.StringVar(&toxiAddr, "toxiproxy", "", "also serve toxiproxy's API on this address, HOST:PORT (see docs/toxiproxy.md)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	if len(pos) > 0 {
		return usageError(fs, stdout, stderr, fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if err := sf.check(fs); err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var specs []namedSpec
	if configPath != "" {
		cfg, err := loadConfig(configPath)
		if err != nil {
			fmt.Fprintf(stderr, "faultline: %v\n", err)
			return exitUsage
		}
		if cfg.Control != "" && !set["control"] {
			sf.control = cfg.Control
		}
		if cfg.Token != "" && !set["token"] && os.Getenv(envToken) == "" {
			sf.token = cfg.Token
		}
		sf.origins = append(cfg.AllowOrigins, sf.origins...)
		sf.hosts = append(cfg.AllowHosts, sf.hosts...)
		if cfg.InsecureControl && !set["insecure-control"] {
			sf.insecure = true
		}
		specs = cfg.Proxies
	}
	if configPath == "" || pf.listen != "" || pf.upstream != "" {
		switch {
		case configPath == "" && pf.listen == "" && pf.upstream == "":
			return usageError(fs, stdout, stderr, errors.New("--listen and --upstream are required, or --config FILE"))
		case pf.listen == "":
			return usageError(fs, stdout, stderr, errors.New("--listen is required"))
		case pf.upstream == "":
			return usageError(fs, stdout, stderr, errors.New("--upstream is required"))
		}
		spec, err := pf.spec()
		if err != nil {
			return usageError(fs, stdout, stderr, err)
		}
		specs = append(specs, namedSpec{spec: spec})
	}

	srv, addr, code := sf.listen(stderr)
	if code != exitOK {
		return code
	}
	defer srv.Close()
	created, code := createProxies(srv, specs, stderr)
	if code != exitOK {
		return code
	}
	for _, p := range created {
		printProxy(stdout, p, "")
	}
	if toxiAddr != "" {
		if code := startToxiproxy(srv, toxiAddr, pf.seed, stdout, stderr); code != exitOK {
			return code
		}
	}
	fmt.Fprintf(stdout, "control listening on %s\n", controlURL(addr))
	<-ctx.Done()
	return exitOK
}

// createProxies creates the proxies in order. On an error it reports it,
// naming where the proxy was defined, and returns the exit code: usage for
// a bad definition, error otherwise (a port in use).
func createProxies(srv *control.Server, specs []namedSpec, stderr io.Writer) ([]api.Proxy, int) {
	var out []api.Proxy
	for _, s := range specs {
		p, err := srv.CreateProxy(s.spec)
		if err != nil {
			where := ""
			if s.where != "" {
				where = s.where + ": "
			}
			fmt.Fprintf(stderr, "faultline: %sproxy %q: %s\n", where, s.spec.Name, startupText(err, s.spec.Name))
			var ae *api.Error
			if errors.As(err, &ae) && ae.Status == api.ErrBadRequest.Status {
				return nil, exitUsage
			}
			return nil, exitError
		}
		out = append(out, p)
	}
	return out, exitOK
}

// startupText is the message of err, the error of creating proxy name at
// start-up, for people: without the API's code and without the proxy's
// name, which the line already gives ("listen on ADDR: address in use",
// not "proxy main: listen on ADDR: address in use (port_in_use)").
func startupText(err error, name string) string {
	msg := err.Error()
	var ae *api.Error
	if errors.As(err, &ae) {
		msg = ae.Message
	}
	return strings.TrimPrefix(msg, "proxy "+name+": ")
}

// printProxy prints the line that says where p listens, with suffix.
func printProxy(w io.Writer, p api.Proxy, suffix string) {
	if !p.Enabled {
		fmt.Fprintf(w, "proxy %s disabled -> %s%s\n", p.Name, p.Upstream, suffix)
		return
	}
	fmt.Fprintf(w, "proxy %s listening on %s -> %s%s\n", p.Name, p.Listen, p.Upstream, suffix)
}

// controlURL is the base URL of the control API listening on addr.
func controlURL(addr net.Addr) string {
	return "http://" + addr.String()
}
