package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// runRPSInterleaved runs one round of an rps scenario against every relay
// of rs at once, taking turns: each relay has its own event loop and conns
// connections (opened first, all of them), and the loops take turns of
// slice each, one relay's connections doing round trips while the others'
// wait idle, until each relay has had warmup untimed and then d timed.
// Relay i's upstream is echos[i], served by relay i's loop alone, so that
// a round trip costs the harness the same as in runRPS: one thread, one
// epoll set, both ends.
// Rows measured this way are a fraction of a second apart, not seconds: a
// change of the machine's speed during the run falls on all of them alike.
//
// A round trip counts if it completed during one of its relay's timed
// turns; those still out when a turn ends complete uncounted (at most
// conns per turn). The relay's CPU is read over the whole timed part,
// others' turns included, in which it sits idle. The harness serves every
// relay, so no sample has the harness's CPU.
func runRPSInterleaved(ctx context.Context, rs []*relay, echos []*rpsEcho, conns, size int, warmup, d, slice time.Duration) ([]rpsSample, error) {
	n := len(rs)
	phases := make([]atomic.Int32, n)
	wakes := make([]int, n)
	for i := range wakes {
		wakes[i] = -1
	}
	defer func() {
		for _, fd := range wakes {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for i := range n {
		phases[i].Store(rpsPaused)
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		wakes[i] = fd
	}
	poke := func(i int) {
		var one [8]byte
		one[0] = 1 // little-endian 1
		unix.Write(wakes[i], one[:])
	}
	set := func(i int, p int32) {
		phases[i].Store(p)
		poke(i)
		if onTurn != nil {
			onTurn(phases)
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex // guards first and out
		first   error
		out     = make([]rpsSample, n)
		hists   = make([]*histogram, n)
		failed  = make(chan struct{})
		failOne sync.Once
		dialed  sync.WaitGroup
	)
	dialed.Add(n)
	for i, r := range rs {
		wg.Go(func() {
			t, h, err := runRPSLoop(ctx, r.addr, echos[i], conns, size, &phases[i], dialed.Done, wakes[i])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				first = cmp.Or(first, fmt.Errorf("%s: %w", r.name, err))
				failOne.Do(func() { close(failed) })
				return
			}
			out[i].reqs, hists[i] = t, h
		})
	}
	// Every phase is done before any loop is woken to see it: a loop that
	// ends closes the echo connections it served, some of them other
	// relays', whose loops must then take the EOF for the end.
	stopAll := func() {
		for i := range n {
			phases[i].Store(rpsDone)
		}
		for i := range n {
			poke(i)
		}
	}
	wait := func(d time.Duration) error { return sleepOr(ctx, d, failed) }

	err := waitDialed(ctx, &dialed, failed)
	// Untimed, in turns too: every relay warms up the same way.
	for i := 0; err == nil && i < n; i++ {
		set(i, rpsWarmup)
		err = wait(warmup)
		set(i, rpsPaused)
	}
	cpu0 := make([]time.Duration, n)
	cpu1 := make([]time.Duration, n)
	for i, r := range rs {
		if err == nil {
			cpu0[i], out[i].hasCPU, err = r.CPU()
		}
	}
	for err == nil && out[n-1].elapsed < d {
		for i := 0; err == nil && i < n; i++ {
			turn := min(slice, d-out[i].elapsed)
			t0 := time.Now()
			set(i, rpsTimed)
			err = wait(turn)
			set(i, rpsPaused)
			out[i].elapsed += time.Since(t0)
		}
	}
	for i, r := range rs {
		if err == nil && out[i].hasCPU {
			cpu1[i], _, err = r.CPU()
		}
	}
	stopAll()
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].reqs == 0 {
			return nil, fmt.Errorf("%s: no round trip completed in %v", rs[i].name, d)
		}
		out[i].p50, out[i].p99 = hists[i].percentile(50), hists[i].percentile(99)
		out[i].cpu = cpu1[i] - cpu0[i]
	}
	return out, nil
}

// onTurn, if set (by tests), sees every relay's phase after each change.
var onTurn func(phases []atomic.Int32)

// runInterleaved runs one round of the rps scenario sc for every row that
// wants it, all relays up at once and taking turns (runRPSInterleaved), and
// records a sample for each.
func runInterleaved(ctx context.Context, cfg *config, specs map[string]relaySpec, sc scenario, rows []*rowResult, log io.Writer) {
	size, res := rpsSize, func(r *rowResult) **rpsResult { return &r.RPS }
	if sc.name == scRPS1k {
		size, res = rps1kSize, func(r *rowResult) **rpsResult { return &r.RPS1k }
	}
	var (
		rs    []*relay
		ran   []*rowResult
		echos []*rpsEcho
	)
	defer func() {
		for i, r := range rs {
			if err := r.Stop(); err != nil {
				ran[i].note(fmt.Sprintf("%s (after %s)", err, sc.name))
			}
		}
		for _, e := range echos {
			e.Close()
		}
	}()
	for _, row := range rows {
		echo, err := startRPSEcho()
		if err != nil {
			row.setError(sc.name, err)
			fmt.Fprintf(log, "  %-15s %-6s ERROR: %v\n", row.Name, sc.name, err)
			continue
		}
		r, err := specs[row.Name].start(ctx, echo.Addr())
		if err != nil {
			echo.Close()
			row.setError(sc.name, err)
			fmt.Fprintf(log, "  %-15s %-6s ERROR starting: %v\n", row.Name, sc.name, err)
			continue
		}
		rs, ran, echos = append(rs, r), append(ran, row), append(echos, echo)
	}
	if len(rs) == 0 {
		return
	}
	t0 := time.Now()
	samples, err := runRPSInterleaved(ctx, rs, echos, cfg.rpsConns, size, cfg.rpsWarmup, cfg.rpsDuration, cfg.rpsSlice)
	if err != nil {
		for _, row := range ran {
			row.setError(sc.name, err)
		}
		fmt.Fprintf(log, "  %-15s %-6s ERROR after %.1fs: %v\n", "(interleaved)", sc.name, time.Since(t0).Seconds(), err)
		return
	}
	for i, row := range ran {
		msg := addRPSSample(cfg, samples[i], size, res(row))
		fmt.Fprintf(log, "  %-15s %-6s %-62s %5.1fs\n", row.Name, sc.name, msg, time.Since(t0).Seconds())
	}
}

// onChurnTurn, if set (by tests), sees each churn turn: the row and how
// long its turn took.
var onChurnTurn func(row string, d time.Duration)

// runChurnInterleaved runs one round of churn for every row of rows, all
// relays up at once in front of the echo upstream (a goroutine per
// connection, so sharing it costs no relay another's work), taking turns:
// each relay in turn gets -churn-slice of sequential connections, until
// each has had -churn-duration or made -churn-count connections. As with
// rps, rows are compared a fraction of a second apart, so the machine's
// drift falls on all alike. The relay's CPU is read over all the turns,
// its idle time in the others' turns included.
func runChurnInterleaved(ctx context.Context, cfg *config, specs map[string]relaySpec, sc scenario, ups *upstreams, rows []*rowResult, log io.Writer) {
	type turns struct {
		row    *rowResult
		r      *relay
		cpu0   time.Duration
		hasCPU bool
		n      int64
		d      time.Duration
		err    error
	}
	var ts []*turns
	defer func() {
		for _, t := range ts {
			if err := t.r.Stop(); err != nil {
				t.row.note(fmt.Sprintf("%s (after %s)", err, sc.name))
			}
		}
	}()
	for _, row := range rows {
		r, err := specs[row.Name].start(ctx, sc.upstream(ups))
		if err != nil {
			row.setError(sc.name, err)
			fmt.Fprintf(log, "  %-15s %-6s ERROR starting: %v\n", row.Name, sc.name, err)
			continue
		}
		ts = append(ts, &turns{row: row, r: r})
	}
	for _, t := range ts {
		t.cpu0, t.hasCPU, t.err = t.r.CPU()
	}
	t0 := time.Now()
	for more := true; more && ctx.Err() == nil; {
		more = false
		for _, t := range ts {
			if t.err != nil || t.d >= cfg.churnDuration || t.n >= int64(cfg.churnCount) || ctx.Err() != nil {
				continue
			}
			turn := *cfg
			turn.churnDuration = min(cfg.churnSlice, cfg.churnDuration-t.d)
			turn.churnCount = cfg.churnCount - int(t.n)
			n, d, err := runChurn(ctx, &turn, t.r.addr)
			t.n, t.d, t.err = t.n+n, t.d+d, err
			if onChurnTurn != nil {
				onChurnTurn(t.row.Name, d)
			}
			more = true
		}
	}
	for _, t := range ts {
		var cpu time.Duration
		if t.err == nil && t.hasCPU {
			var cpu1 time.Duration
			cpu1, _, t.err = t.r.CPU()
			cpu = cpu1 - t.cpu0
		}
		if t.err == nil && ctx.Err() != nil {
			t.err = fmt.Errorf("interrupted: %w", context.Cause(ctx))
		}
		if t.err != nil {
			t.row.setError(sc.name, t.err)
			fmt.Fprintf(log, "  %-15s %-6s ERROR after %.1fs: %v\n", t.row.Name, sc.name, time.Since(t0).Seconds(), t.err)
			continue
		}
		msg := addChurnSample(cfg, t.row, t.n, t.d, cpu, t.hasCPU)
		fmt.Fprintf(log, "  %-15s %-6s %-62s %5.1fs\n", t.row.Name, sc.name, msg, time.Since(t0).Seconds())
	}
}
