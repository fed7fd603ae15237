// Command soak is faultline's chaos soak: it runs the faultline binary in
// pool mode and in dial mode under bounded load on loopback while a seeded
// schedule toggles faults over the websocket, checks that no client ever
// reads a wrong or foreign byte and that the event stream never shows an
// upstream connection borrowed after its discard or while held, then that
// the process is back where it started (goroutines, fds, pool). It prints a
// summary and exits non-zero on any violation.
//
//	make soak                                  # full size: 50,000 connections per mode, 500 at once
//	go run ./cmd/soak -conns 2000 -concurrency 100 -max-duration 15s
//
// The harness runs both upstreams in-process: an echo server and a
// request/response server that answers each request, half of them after a
// delay of up to -max-delay, with a reply whose bytes follow from the
// request's connection ID and sequence number. Each client connection does
// 1 to 6 exchanges of random-length messages (a 24-byte header with a
// run-unique connection ID, sequence number, length and CRC-32C, then the
// payload); a share of clients (-early) send their last request and leave
// before the reply, as a client with a read timeout does. See docs/soak.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// ErrViolations is returned by run when any check failed.
var ErrViolations = errors.New("violations found")

// config is the command line.
type config struct {
	seed        uint64
	conns       int
	concurrency int
	modes       []string
	maxDuration time.Duration
	faultline   string
	early       float64
	maxDelay    time.Duration
	poolMaxIdle int
	settle      time.Duration
	fdAllow     int
	goAllow     int
	progress    time.Duration
	faults      bool
	faultKinds  []faults.Kind // only these; nil: the mode's whole list
}

func parseFlags(args []string, out io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(out)
	var modes, kinds string
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the clients, the upstream's delays and replies, and the fault schedule")
	fs.IntVar(&cfg.conns, "conns", 50000, "client connections per mode")
	fs.IntVar(&cfg.concurrency, "concurrency", 500, "client connections open at once, at most")
	fs.StringVar(&modes, "modes", "dial,pool", "proxy modes to soak, in order")
	fs.DurationVar(&cfg.maxDuration, "max-duration", 15*time.Minute, "bound on the load of all modes together; no new connection starts after it")
	fs.StringVar(&cfg.faultline, "faultline", "", "the faultline binary (default: go build ./cmd/faultline into a temporary directory)")
	fs.Float64Var(&cfg.early, "early", 0.15, "fraction of clients that send their last request and leave before its reply")
	fs.DurationVar(&cfg.maxDelay, "max-delay", 50*time.Millisecond, "longest delay of the request/response upstream (half its replies wait up to this)")
	fs.IntVar(&cfg.poolMaxIdle, "pool-max-idle", 32, "pool mode proxies' max idle connections")
	fs.DurationVar(&cfg.settle, "settle", 10*time.Second, "how long the process may take to settle after the load (connections closed, pool idle, goroutines and fds back)")
	fs.IntVar(&cfg.fdAllow, "fd-allowance", 4, "fds (pipes aside: Go caches its splice pipes) the process may have beyond its count before the load")
	fs.IntVar(&cfg.goAllow, "goroutine-allowance", 16, "goroutines the process may have beyond its count before the load")
	fs.BoolVar(&cfg.faults, "faults", true, "toggle faults during the load (-faults=false: load alone, to tell a fault's part in a violation)")
	fs.StringVar(&kinds, "fault-kinds", "", "toggle only these fault kinds, comma-separated (default: all the schedule has for the mode)")
	fs.DurationVar(&cfg.progress, "progress", 10*time.Second, "how often to print progress (0: never)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for m := range strings.SplitSeq(modes, ",") {
		if m != "dial" && m != "pool" {
			return nil, fmt.Errorf("-modes: %q is not dial or pool", m)
		}
		cfg.modes = append(cfg.modes, m)
	}
	if kinds != "" {
		for k := range strings.SplitSeq(kinds, ",") {
			if !slices.Contains(poolKinds, faults.Kind(k)) && !slices.Contains(dialKinds, faults.Kind(k)) {
				return nil, fmt.Errorf("-fault-kinds: the schedule has no %q (it has %s; stale is for pool mode, half-close for dial mode)", k, faultKinds(append(dialKinds, faults.KindStale)))
			}
			cfg.faultKinds = append(cfg.faultKinds, faults.Kind(k))
		}
	}
	switch {
	case cfg.conns < 1:
		return nil, errors.New("-conns must be positive")
	case cfg.concurrency < 1:
		return nil, errors.New("-concurrency must be positive")
	case cfg.early < 0 || cfg.early > 1:
		return nil, errors.New("-early must be within [0, 1]")
	case cfg.maxDuration <= 0 || cfg.settle <= 0:
		return nil, errors.New("-max-duration and -settle must be positive")
	case cfg.fdAllow < 0 || cfg.goAllow < 0:
		return nil, errors.New("-fd-allowance and -goroutine-allowance must not be negative")
	}
	return cfg, nil
}

// modeResult is what one mode's soak produced.
type modeResult struct {
	mode     string
	took     time.Duration
	capped   bool // the duration cap stopped it early
	load     *loadStats
	sched    *schedule
	targets  []target
	pool     map[string]api.Pool // after the settle, pool mode only
	poolWant int                 // max idle
}

// run is the whole program.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := cfg.faultline
	if bin == "" {
		fmt.Fprintln(stdout, "building faultline ...")
		if bin, err = buildFaultline(ctx, dir); err != nil {
			return err
		}
	}
	viol := newViolations()

	echo, err := startUpstream(serveEcho)
	if err != nil {
		return err
	}
	defer echo.Close()
	rr := &rrServer{seed: cfg.seed, maxDelay: cfg.maxDelay, report: viol.add}
	rrUp, err := startUpstream(rr.serve)
	if err != nil {
		return err
	}
	defer rrUp.Close()

	p, err := startFaultline(bin, dir)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.kill()
		}
	}()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	cl := client.New(p.control, client.WithHTTPClient(hc))

	// The proxies: one per mode and upstream.
	targets := map[string][]target{}
	for _, mode := range cfg.modes {
		for _, up := range []struct{ name, addr string }{{"echo", echo.addr()}, {"rr", rrUp.addr()}} {
			spec := api.ProxySpec{Name: mode + "-" + up.name, Upstream: up.addr, Mode: mode, Seed: cfg.seed}
			if mode == "pool" {
				spec.Pool = api.PoolSpec{MaxIdle: cfg.poolMaxIdle}
			}
			px, err := cl.CreateProxy(ctx, spec)
			if err != nil {
				return fmt.Errorf("create proxy %s: %w", spec.Name, err)
			}
			targets[mode] = append(targets[mode], target{proxy: px.Name, addr: px.Listen, upstream: up.name})
		}
	}

	// The event stream and the fault session.
	evSess, err := cl.Dial(ctx)
	if err != nil {
		return err
	}
	defer evSess.Close()
	sub, err := evSess.Subscribe(ctx, "", eventKinds, 0)
	if err != nil {
		return err
	}
	checker := newEventChecker(viol)
	evCtx, evStop := context.WithCancel(ctx)
	var evWG sync.WaitGroup
	evWG.Go(func() { checker.follow(evCtx, sub) })
	defer func() { evStop(); evWG.Wait() }()
	faultSess, err := cl.Dial(ctx)
	if err != nil {
		return err
	}
	defer faultSess.Close()

	var fates, partials sync.Map
	var done atomic.Int64
	limits := newViolations()
	newLoad := func(mode, label string, idx uint64) *load {
		return &load{seed: cfg.seed, label: label, modeIdx: idx, targets: targets[mode], early: cfg.early,
			viol: viol, fates: &fates, partials: &partials, limits: limits, done: &done}
	}

	// Warm-up without faults, so that what the process keeps for reuse
	// (parked goroutines, the runtime's threads) is in the baseline.
	warm := min(cfg.conns, 2*cfg.concurrency)
	for i, mode := range cfg.modes {
		newLoad(mode, mode+" mode warm-up", uint64(100+i)).run(ctx, warm, cfg.concurrency, time.Now().Add(time.Minute))
	}
	if err := settle(ctx, cl, cfg, targets); err != nil {
		return err
	}
	before, err := p.readStats(ctx, hc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "faultline pid %d, control %s; before the load (after %d warm-up connections per mode, pools drained): %s\n",
		p.pid(), p.control, warm, before)

	// The soak, one mode after the other.
	start := time.Now()
	stopAt := start.Add(cfg.maxDuration)
	var results []*modeResult
	for i, mode := range cfg.modes {
		res := &modeResult{mode: mode, targets: targets[mode], poolWant: cfg.poolMaxIdle}
		names := []string{}
		for _, t := range targets[mode] {
			names = append(names, t.proxy)
		}
		res.sched = newSchedule(faultSess, mode, names, cfg.seed+uint64(i), cfg.faultKinds, viol)
		schedCtx, schedStop := context.WithCancel(ctx)
		var schedWG sync.WaitGroup
		if cfg.faults {
			schedWG.Go(func() { res.sched.run(schedCtx) })
		}
		progCtx, progStop := context.WithCancel(ctx)
		var progWG sync.WaitGroup
		done.Store(0)
		if cfg.progress > 0 {
			progWG.Go(func() { progress(progCtx, stdout, mode, cfg.conns, &done, viol, cfg.progress) })
		}
		t0 := time.Now()
		res.load = newLoad(mode, mode+" mode", uint64(1+i)).run(ctx, cfg.conns, cfg.concurrency, stopAt)
		res.took = time.Since(t0)
		res.capped = res.load.conns < int64(cfg.conns)
		progStop()
		progWG.Wait()
		schedStop()
		schedWG.Wait()
		if err := ctx.Err(); err != nil {
			return err
		}
		if !p.alive() {
			viol.add("process-exited", fmt.Sprintf("%s mode: faultline exited during the load: %v: %s", mode, p.waitErr, tail(p.stderrText())))
			break
		}
		if err := settleMode(ctx, cl, cfg, res, viol); err != nil {
			return err
		}
		results = append(results, res)
	}

	// Afterwards: the event stream caught up, counts agree, and the process
	// is back where it started.
	after := procStats{goroutines: -1}
	if p.alive() {
		waitCaughtUp(ctx, cl, checker, cfg.settle, viol)
		crossCheck(ctx, cl, checker, results, viol)
		if err := settle(ctx, cl, cfg, targets); err != nil {
			viol.add("settle", err.Error())
		}
		after = waitBack(ctx, p, hc, before, cfg, viol)
	}
	if s := p.stderrText(); strings.Contains(s, "panic") {
		viol.add("panic-logged", "faultline's stderr mentions a panic: "+tail(s))
	}
	evStop()
	evWG.Wait()
	faultSess.Close()
	evSess.Close()
	stopped = true
	switch {
	case !p.alive():
	case viol.has("goroutine-growth"):
		// What the extra goroutines are: a dump, by SIGQUIT.
		viol.add("goroutine-growth", "the process's goroutines at the end (SIGQUIT dump), by where they wait: "+p.dumpGoroutines())
	default:
		if err := p.stop(); err != nil {
			viol.add("process-exit", err.Error()+": "+tail(p.stderrText()))
		}
	}
	printSummary(stdout, cfg, bin, results, checker, before, after, viol, limits)
	if n := viol.total(); n > 0 {
		return fmt.Errorf("%w: %d", ErrViolations, n)
	}
	return nil
}

// settle clears every fault, waits until no proxy has a live connection
// and drains the pools.
func settle(ctx context.Context, cl *client.Client, cfg *config, targets map[string][]target) error {
	if err := cl.Reset(ctx); err != nil {
		return err
	}
	for _, ts := range targets {
		for _, t := range ts {
			if err := waitNoConns(ctx, cl, t.proxy, cfg.settle); err != nil {
				return err
			}
		}
	}
	for mode, ts := range targets {
		if mode != "pool" {
			continue
		}
		for _, t := range ts {
			if _, err := cl.DrainPool(ctx, t.proxy); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitNoConns waits up to d for the proxy to have no live connection.
func waitNoConns(ctx context.Context, cl *client.Client, name string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		px, err := cl.Proxy(ctx, name)
		if err != nil {
			return err
		}
		if px.Conns == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proxy %s still has %d live connections %s after the load", name, px.Conns, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settleMode waits, after a mode's load, for its proxies to have no live
// connection and its pools no busy one, then checks the pools' idle counts.
func settleMode(ctx context.Context, cl *client.Client, cfg *config, res *modeResult, viol *violations) error {
	for _, t := range res.targets {
		if err := waitNoConns(ctx, cl, t.proxy, cfg.settle); err != nil {
			viol.add("conns-left", fmt.Sprintf("%s mode: %v", res.mode, err))
		}
	}
	if res.mode != "pool" {
		return nil
	}
	res.pool = map[string]api.Pool{}
	for _, t := range res.targets {
		deadline := time.Now().Add(cfg.settle)
		for {
			st, err := cl.Pool(ctx, t.proxy)
			if err != nil {
				return err
			}
			res.pool[t.proxy] = st
			if st.Busy == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		st := res.pool[t.proxy]
		if st.Busy != 0 {
			viol.add("pool-busy", fmt.Sprintf("proxy %s: %d connections busy %s after the load", t.proxy, st.Busy, cfg.settle))
		}
		if st.Idle > cfg.poolMaxIdle {
			viol.add("pool-over-max-idle", fmt.Sprintf("proxy %s: %d idle, max %d", t.proxy, st.Idle, cfg.poolMaxIdle))
		}
	}
	return nil
}

// waitCaughtUp waits until the checker has read every event logged.
func waitCaughtUp(ctx context.Context, cl *client.Client, ec *eventChecker, d time.Duration, viol *violations) {
	deadline := time.Now().Add(d)
	for {
		ok, err := ec.caughtUp(ctx, cl)
		switch {
		case err != nil:
			viol.add("events-incomplete", fmt.Sprintf("the event checks could not see every event: %v", err))
			return
		case ok:
			return
		case time.Now().After(deadline):
			viol.add("events-incomplete", fmt.Sprintf("the event stream did not catch up within %s", d))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crossCheck compares each pool's counters with the events counted.
func crossCheck(ctx context.Context, cl *client.Client, ec *eventChecker, results []*modeResult, viol *violations) {
	if ec.streamErr() != nil {
		return
	}
	for _, res := range results {
		if res.mode != "pool" {
			continue
		}
		for _, t := range res.targets {
			st, err := cl.Pool(ctx, t.proxy)
			if err != nil {
				viol.add("api-error", fmt.Sprintf("pool %s: %v", t.proxy, err))
				continue
			}
			ev := ec.snapshot(t.proxy)
			var diffs []string
			check := func(what string, stat uint64, events int64) {
				if int64(stat) != events {
					diffs = append(diffs, fmt.Sprintf("%s: pool says %d, events %d", what, stat, events))
				}
			}
			check("dialed", st.Dialed, ev.dialed)
			check("reused", st.Reused, ev.borrowedReused)
			check("retried", st.Retried, ev.retried)
			reasons := counts{}
			for r := range st.Discarded {
				reasons[string(r)] = 0
			}
			for r := range ev.discarded {
				reasons[r] = 0
			}
			for r := range reasons {
				check("discarded "+r, st.Discarded[proxyReason(r)], ev.discarded[r])
			}
			if len(diffs) > 0 {
				viol.add("stats-disagree", fmt.Sprintf("proxy %s: %s", t.proxy, strings.Join(diffs, "; ")))
			}
		}
	}
}

// waitBack waits up to the settle time for the process's goroutines and
// fds to come back within the allowances of before, and returns the last
// reading; what is still over is a violation.
func waitBack(ctx context.Context, p *proc, hc *http.Client, before procStats, cfg *config, viol *violations) procStats {
	deadline := time.Now().Add(cfg.settle)
	for {
		after, err := p.readStats(ctx, hc)
		if err != nil {
			viol.add("process-stats", err.Error())
			return after
		}
		// faultline opens no pipe itself: its pipes are Go's splice
		// pipes, cached by the runtime until a GC, so they are left out.
		fdOver := after.fds-after.pipes > before.fds-before.pipes+cfg.fdAllow
		goOver := before.goroutines >= 0 && after.goroutines > before.goroutines+cfg.goAllow
		if !fdOver && !goOver {
			return after
		}
		if time.Now().After(deadline) {
			if fdOver {
				viol.add("fd-growth", fmt.Sprintf("%d fds other than pipes after the load, %d before (allowance %d); %s",
					after.fds-after.pipes, before.fds-before.pipes, cfg.fdAllow, fdReport(p.pid())))
			}
			if goOver {
				viol.add("goroutine-growth", fmt.Sprintf("%d goroutines after the load, %d before (allowance %d)", after.goroutines, before.goroutines, cfg.goAllow))
			}
			return after
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// progress prints how far the mode's load is, every interval.
func progress(ctx context.Context, w io.Writer, mode string, n int, done *atomic.Int64, viol *violations, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(w, "  %s: %d/%d connections after %s; %d violations so far in the run\n",
				mode, done.Load(), n, time.Since(start).Round(time.Second), viol.total())
		}
	}
}

// tail is the end of s, on one line.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// faultKinds lists kinds for the summary.
func faultKinds(ks []faults.Kind) string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}
