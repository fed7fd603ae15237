package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Scenario names, in column order.
const (
	scBulk  = "bulk"
	scPing  = "ping"
	scChurn = "churn"
	scMem   = "mem"
	scRPS   = "rps"
	scRPS1k = "rps1k"
	scRedis = "redis"
)

// upstreams are the in-process servers every relay points at.
type upstreams struct {
	echo    *server
	bulk    *server
	rpsEcho *rpsEcho // the rps scenarios' echo, served by their event loop
	// The redis scenario's: a redis-server started for the run, and
	// redis-benchmark; or why the scenario cannot run.
	redis          *relay
	redisBenchmark string
	redisSkip      string
}

type scenario struct {
	name     string
	upstream func(*upstreams) string
	pin      bool // harness and relay share one CPU (-ping-cpu)
	passes   bool // runs -passes times per round, each 1/passes as long (passCfg)
	run      func(ctx context.Context, cfg *config, ups *upstreams, r *relay, row *rowResult) (summary string, err error)
	// skip says why the scenario cannot run at all, if it cannot.
	skip func(*upstreams) string
}

var scenarios = []scenario{
	{name: scBulk, upstream: bulkUpstream, run: recordBulk},
	{name: scPing, upstream: echoUpstream, pin: true, run: recordPing},
	{name: scChurn, upstream: echoUpstream, run: recordChurn},
	{name: scMem, upstream: echoUpstream, run: recordMem},
	{name: scRPS, upstream: rpsUpstream, passes: true, run: recordRPS},
	{name: scRPS1k, upstream: rpsUpstream, passes: true, run: recordRPS1k},
	{name: scRedis, upstream: redisUpstream, passes: true, run: recordRedis, skip: func(u *upstreams) string { return u.redisSkip }},
}

func bulkUpstream(u *upstreams) string  { return u.bulk.Addr() }
func echoUpstream(u *upstreams) string  { return u.echo.Addr() }
func redisUpstream(u *upstreams) string { return u.redis.addr }
func rpsUpstream(u *upstreams) string   { return u.rpsEcho.Addr() }

// The record functions run one round of a scenario against r and add its
// sample to the row.

func recordBulk(ctx context.Context, cfg *config, _ *upstreams, r *relay, row *rowResult) (string, error) {
	mbps, err := runBulk(ctx, cfg, r.addr)
	if err != nil {
		return "", err
	}
	if row.Bulk == nil {
		row.Bulk = &bulkResult{BytesEachWay: cfg.bulkBytes}
	}
	b := row.Bulk
	b.RoundsMBps = append(b.RoundsMBps, mbps)
	b.MBps = median(b.RoundsMBps)
	return fmt.Sprintf("%.0f MB/s", mbps), nil
}

func recordPing(ctx context.Context, cfg *config, _ *upstreams, r *relay, row *rowResult) (string, error) {
	p50, p99, err := runPing(ctx, cfg, r.addr)
	if err != nil {
		return "", err
	}
	if row.Ping == nil {
		row.Ping = &pingResult{CountPerRound: cfg.pingCount, PinnedCPU: cfg.pingCPU}
	}
	p := row.Ping
	p.RoundsP50us = append(p.RoundsP50us, micros(p50))
	p.RoundsP99us = append(p.RoundsP99us, micros(p99))
	p.P50us, p.P99us = median(p.RoundsP50us), median(p.RoundsP99us)
	return fmt.Sprintf("p50 %.1f µs, p99 %.1f µs", micros(p50), micros(p99)), nil
}

func recordChurn(ctx context.Context, cfg *config, _ *upstreams, r *relay, row *rowResult) (string, error) {
	cpu0, hasCPU, err := r.CPU()
	if err != nil {
		return "", err
	}
	n, d, err := runChurn(ctx, cfg, r.addr)
	if err != nil {
		return "", err
	}
	var cpu time.Duration
	if hasCPU {
		cpu1, _, err := r.CPU()
		if err != nil {
			return "", err
		}
		cpu = cpu1 - cpu0
	}
	return addChurnSample(cfg, row, n, d, cpu, hasCPU), nil
}

// addChurnSample adds a round's churn to row: n connections in d, for cpu
// of the relay's CPU time (if hasCPU). It returns the line to log.
func addChurnSample(cfg *config, row *rowResult, n int64, d, cpu time.Duration, hasCPU bool) string {
	if row.Churn == nil {
		row.Churn = &churnResult{Concurrency: cfg.churnConcurrency}
	}
	c := row.Churn
	rate := float64(n) / d.Seconds()
	c.RoundsConnsPerS = append(c.RoundsConnsPerS, rate)
	c.RoundsConns = append(c.RoundsConns, n)
	c.ConnsPerS = median(c.RoundsConnsPerS)
	msg := fmt.Sprintf("%.0f conn/s (%d in %.2fs)", rate, n, d.Seconds())
	if hasCPU && n > 0 {
		per := micros(cpu) / float64(n)
		c.RoundsCPUus = append(c.RoundsCPUus, per)
		c.CPUus = median(c.RoundsCPUus)
		msg += fmt.Sprintf(", relay CPU %.0f µs/conn", per)
	}
	return msg
}

func recordMem(ctx context.Context, cfg *config, _ *upstreams, r *relay, row *rowResult) (string, error) {
	ms, err := runMem(ctx, cfg, r)
	if err != nil {
		return "", err
	}
	if row.Mem == nil {
		row.Mem = &memResult{Conns: cfg.memConns}
	}
	m := row.Mem
	kib := float64(ms.afterKiB-ms.beforeKiB) / float64(cfg.memConns)
	m.RoundsKiBPerConn = append(m.RoundsKiBPerConn, kib)
	m.RoundsBeforeKiB = append(m.RoundsBeforeKiB, ms.beforeKiB)
	m.RoundsAfterKiB = append(m.RoundsAfterKiB, ms.afterKiB)
	m.KiBPerConn, m.Procs, m.FDs = median(m.RoundsKiBPerConn), ms.procs, ms.fds
	return fmt.Sprintf("%.1f KiB/conn (RSS %d -> %d KiB, %d procs, %d fds)",
		kib, ms.beforeKiB, ms.afterKiB, ms.procs, ms.fds), nil
}

func scenarioNames() []string {
	var names []string
	for _, sc := range scenarios {
		names = append(names, sc.name)
	}
	return names
}

// bench runs the selected scenarios for the selected rows in rounds: each
// round runs every row once (a fresh relay process per row and scenario),
// so slow drift of the machine spreads over all rows instead of biasing
// the rows that happen to run late. It then prints the table (also when
// interrupted, with what it has).
func bench(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	rep := &report{Meta: newMeta(cfg), cfg: cfg}
	if cfg.goBench != "" {
		f, err := os.Open(cfg.goBench)
		if err != nil {
			return fmt.Errorf("-gobench: %w", err)
		}
		rep.GoBench, err = parseGoBench(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("-gobench %s: %w", cfg.goBench, err)
		}
	}
	echo, err := startServer(echoConn)
	if err != nil {
		return err
	}
	defer echo.Close()
	var bulkSrv bulkServer
	bulk, err := startServer(bulkSrv.serve)
	if err != nil {
		return err
	}
	defer bulk.Close()
	rpsEcho, err := startRPSEcho()
	if err != nil {
		return err
	}
	defer rpsEcho.Close()
	ups := &upstreams{echo: echo, bulk: bulk, rpsEcho: rpsEcho}
	if slices.Contains(cfg.scenarios, scRedis) {
		var server string
		server, ups.redisBenchmark, ups.redisSkip = findRedis()
		if ups.redisSkip == "" {
			if ups.redis, err = startRedis(ctx, cfg, server); err != nil {
				return err
			}
			defer func() {
				if err := ups.redis.Stop(); err != nil { // after the table: say it on stderr
					fmt.Fprintf(stderr, "stopping redis-server: %v\n", err)
				}
			}()
		} else {
			fmt.Fprintf(stderr, "redis skipped: %s\n", ups.redisSkip)
		}
	}

	specs := relaySpecs(cfg)
	for _, name := range cfg.rows {
		row := &rowResult{Name: name, Skipped: specs[name].skip}
		rep.Rows = append(rep.Rows, row)
		if row.Skipped != "" {
			fmt.Fprintf(stderr, "%-15s skipped: %s\n", name, row.Skipped)
		}
	}
	for round := 1; round <= cfg.rounds && ctx.Err() == nil; round++ {
		fmt.Fprintf(stderr, "round %d of %d\n", round, cfg.rounds)
		for _, sc := range scenarios {
			if (sc.name == scRPS || sc.name == scRPS1k) && cfg.rpsSlice > 0 {
				runInterleaved(ctx, cfg, specs, sc, wantedRows(ctx, cfg, ups, rep.Rows, sc), stderr)
				continue
			}
			if sc.name == scChurn && cfg.churnSlice > 0 {
				runChurnInterleaved(ctx, cfg, specs, sc, ups, wantedRows(ctx, cfg, ups, rep.Rows, sc), stderr)
				continue
			}
			scfg, passes := cfg, 1
			if sc.passes {
				scfg, passes = passCfg(cfg), cfg.passes
			}
			for range passes {
				for _, row := range rep.Rows {
					if ctx.Err() != nil || !wanted(cfg, ups, row, sc) {
						continue
					}
					runScenario(ctx, scfg, specs[row.Name], sc, ups, row, stderr)
				}
			}
		}
	}
	rep.Meta.ElapsedS = time.Since(rep.Meta.Start).Seconds()
	rep.evaluate()
	rep.writeTable(stdout)
	if cfg.jsonPath != "" {
		if err := rep.writeJSON(cfg.jsonPath); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return nil
}

// passCfg is cfg for one pass of a request scenario: its timed part
// (-rps-duration, -redis-requests) divided by -passes. Each pass is one
// sample of the scenario, as a round is of the others: the rows of a pass
// run a few seconds apart, where over a whole round they ran tens of
// seconds apart, and this machine's speed was seen to drift by a quarter
// within a round (the harness's own CPU per request, the same work in
// every row, went from 20 to 32 µs).
func passCfg(cfg *config) *config {
	c := *cfg
	c.rpsDuration = cfg.passDuration()
	c.redisRequests = cfg.redisRequests / cfg.passes
	return &c
}

// wanted says whether sc runs for row in this round, and records why not
// when it never will.
func wanted(cfg *config, ups *upstreams, row *rowResult, sc scenario) bool {
	switch {
	case row.Skipped != "", !slices.Contains(cfg.scenarios, sc.name), row.Errors[sc.name] != "":
		return false
	}
	if sc.skip != nil {
		if why := sc.skip(ups); why != "" {
			row.setSkip(sc.name, why)
			return false
		}
	}
	if why := notApplicable(cfg, row.Name, sc.name); why != "" {
		row.setNotRun(sc.name, why)
		return false
	}
	return true
}

// wantedRows are the rows of rows that sc runs for in this round (see
// wanted), for the scenarios whose rows take turns.
func wantedRows(ctx context.Context, cfg *config, ups *upstreams, rows []*rowResult, sc scenario) []*rowResult {
	var out []*rowResult
	for _, row := range rows {
		if ctx.Err() == nil && wanted(cfg, ups, row, sc) {
			out = append(out, row)
		}
	}
	return out
}

func runScenario(ctx context.Context, cfg *config, spec relaySpec, sc scenario, ups *upstreams, row *rowResult, log io.Writer) {
	fmt.Fprintf(log, "  %-15s %-6s ", row.Name, sc.name)
	t0 := time.Now()
	var (
		summary string
		err     error
	)
	if sc.pin && cfg.pingCPU >= 0 {
		var unpin func() error
		if unpin, err = pinHarness(cfg.pingCPU); err == nil {
			defer func() {
				if uerr := unpin(); uerr != nil {
					row.note("unpinning: " + uerr.Error())
				}
			}()
		}
	}
	var r *relay
	if err == nil {
		r, err = spec.start(ctx, sc.upstream(ups))
	}
	if err == nil {
		summary, err = sc.run(ctx, cfg, ups, r, row)
		if serr := r.Stop(); serr != nil {
			row.note(fmt.Sprintf("%s (after %s)", serr, sc.name))
		}
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, errCorrupt) {
			err = fmt.Errorf("interrupted: %w", err)
		}
		row.setError(sc.name, err)
		fmt.Fprintf(log, "ERROR after %.1fs: %v\n", time.Since(t0).Seconds(), err)
		return
	}
	fmt.Fprintf(log, "%-62s %5.1fs\n", summary, time.Since(t0).Seconds())
}

// notApplicable says why a scenario is not run for a row, if it is not.
func notApplicable(cfg *config, row, scenario string) string {
	switch {
	case slices.Contains(faultRows, row) && scenario != scBulk && scenario != scPing:
		return "fault rows measure the fault path's bulk and ping only"
	case (row == rowBarePool || row == rowEpollPool) && scenario != scChurn:
		return "the pool reference rows measure churn only"
	case scenario == scMem && row == rowDirect:
		return "no relay process to measure"
	case (scenario == scRPS || scenario == scRPS1k) && row == rowFaultlinePool && cfg.rpsConns > cfg.poolSize:
		return fmt.Sprintf("--pool-size %d caps open upstream connections below -rps-conns %d", cfg.poolSize, cfg.rpsConns)
	case scenario == scRedis && row == rowFaultlinePool && cfg.redisConns > cfg.poolSize:
		return fmt.Sprintf("--pool-size %d caps open upstream connections below -redis-conns %d", cfg.poolSize, cfg.redisConns)
	case scenario == scMem && row == rowFaultlinePool && cfg.memConns > cfg.poolSize:
		return fmt.Sprintf("--pool-size %d caps open upstream connections below -mem-conns %d", cfg.poolSize, cfg.memConns)
	}
	return ""
}

func (r *rowResult) setNotRun(scenario, why string) {
	if r.NotRun == nil {
		r.NotRun = map[string]string{}
	}
	r.NotRun[scenario] = why
}

func (r *rowResult) setSkip(scenario, why string) {
	if r.Skips == nil {
		r.Skips = map[string]string{}
	}
	r.Skips[scenario] = why
}

func (r *rowResult) setError(scenario string, err error) {
	if r.Errors == nil {
		r.Errors = map[string]string{}
	}
	r.Errors[scenario] = err.Error()
}

func (r *rowResult) note(s string) {
	if !slices.Contains(r.Notes, s) {
		r.Notes = append(r.Notes, s)
	}
}

// passCount is -passes, or 1 for a config built without flags.
func (c *config) passCount() int { return max(c.passes, 1) }

// passDuration is the timed part of one pass of rps or rps1k.
func (c *config) passDuration() time.Duration {
	return (c.rpsDuration / time.Duration(c.passCount())).Round(time.Millisecond)
}
