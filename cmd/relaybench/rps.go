package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The rps scenarios: many connections, each doing strictly sequential
// request/response round trips through the relay to the echo upstream, as a
// test suite's clients do (a redis command, an SQL query, an HTTP request on
// a kept-alive connection).
//
// The load generator shares the machine with the relay, so it is kept cheap:
// one goroutine per connection, buffers allocated once, a per-connection
// histogram of fixed size for the latencies (no allocation per request), and
// one atomic load per request to see the phase.

type rpsResult struct {
	ReqPerS       float64   `json:"req_per_s"` // median over rounds
	P50us         float64   `json:"p50_us"`    // median over rounds
	P99us         float64   `json:"p99_us"`    // median over rounds
	RoundsReqPerS []float64 `json:"rounds_req_per_s"`
	RoundsP50us   []float64 `json:"rounds_p50_us"`
	RoundsP99us   []float64 `json:"rounds_p99_us"`
	RoundsReqs    []int64   `json:"rounds_requests"` // timed requests per round
	// The relay's CPU time (user and system, all its processes) per
	// request over the timed part; none for the direct row.
	CPUus       float64   `json:"cpu_us_per_req,omitempty"` // median over rounds
	RoundsCPUus []float64 `json:"rounds_cpu_us_per_req,omitempty"`
	// The harness's CPU time (load generator and echo upstream) per
	// request over the timed part: what the relay shares the CPUs with.
	HarnessCPUus       float64   `json:"harness_cpu_us_per_req"` // median over rounds
	RoundsHarnessCPUus []float64 `json:"rounds_harness_cpu_us_per_req"`
	Conns              int       `json:"conns"`
	Size               int       `json:"size"`
}

// rpsSample is one round of an rps scenario.
type rpsSample struct {
	reqs     int64
	elapsed  time.Duration // timed part
	p50, p99 time.Duration
	cpu      time.Duration // the relay's, over the timed part
	hasCPU   bool
	harness  time.Duration // this process's CPU time (load generator and upstream) over the timed part
}

// Phases of an rps round, read by every connection's goroutine once per
// request.
const (
	rpsWarmup int32 = iota
	rpsTimed
	rpsDone
	rpsPaused // runRPSInterleaved: another relay's turn
)

// runRPS runs one round of an rps scenario against r (whose upstream is
// echo, or any echo server if echo is nil): loops event loops (rpsloop.go)
// share conns connections and, once all are open, do size-byte round trips
// on each, one after the other, untimed for warmup, then timed for d; the
// round ends when the phase is done. A round trip counts, and its latency, if it completed
// while the phase was timed.
func runRPS(ctx context.Context, r *relay, echo *rpsEcho, loops, conns, size int, warmup, d time.Duration) (rpsSample, error) {
	var (
		phase   atomic.Int32
		wg      sync.WaitGroup
		mu      sync.Mutex // guards all, timed and first
		all     histogram
		timed   int64
		first   error
		failed  = make(chan struct{})
		failOne sync.Once
	)
	loops = max(min(loops, conns), 1)
	var dialed sync.WaitGroup
	dialed.Add(loops)
	for i := range loops {
		n := conns/loops + min(1, max(0, conns%loops-i)) // the first conns%loops loops take one more
		wg.Go(func() {
			t, h, err := runRPSLoop(ctx, r.addr, echo, n, size, &phase, dialed.Done, -1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				first = cmp.Or(first, err)
				phase.Store(rpsDone)
				failOne.Do(func() { close(failed) })
				return
			}
			all.merge(h)
			timed += t
		})
	}
	wait := func(d time.Duration) error { return sleepOr(ctx, d, failed) }

	// The clock starts once every connection is open.
	err := waitDialed(ctx, &dialed, failed)

	var s rpsSample
	var cpu0, self0, cpu1, self1 time.Duration
	if err == nil {
		err = wait(warmup)
	}
	if err == nil {
		cpu0, s.hasCPU, err = r.CPU()
	}
	if err == nil {
		self0, err = selfCPU()
	}
	t0 := time.Now()
	if err == nil && phase.CompareAndSwap(rpsWarmup, rpsTimed) {
		err = wait(d)
	}
	t1 := time.Now()
	phase.Store(rpsDone)
	if err == nil {
		self1, err = selfCPU()
	}
	if err == nil && s.hasCPU {
		cpu1, _, err = r.CPU()
	}
	wg.Wait()
	if first != nil {
		return rpsSample{}, first
	}
	if err != nil {
		return rpsSample{}, err
	}
	if timed == 0 {
		return rpsSample{}, fmt.Errorf("no round trip completed in %v", d)
	}
	s.reqs = timed
	s.elapsed = t1.Sub(t0)
	s.p50, s.p99 = all.percentile(50), all.percentile(99)
	s.cpu = cpu1 - cpu0
	s.harness = self1 - self0
	return s, nil
}

var errLoopEnded = errors.New("the rps loop ended early")

// waitDialed waits until every loop has opened its connections (dialed),
// one has failed, or ctx is done.
func waitDialed(ctx context.Context, dialed *sync.WaitGroup, failed <-chan struct{}) error {
	ready := make(chan struct{})
	go func() {
		dialed.Wait()
		close(ready)
	}()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-failed:
		return errLoopEnded
	}
}

// selfCPU is the CPU time, user and system, this process has used so far.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// histogram counts durations in log-linear buckets: 2^histSubBits buckets
// per power of two of nanoseconds, so a percentile read from it is within
// 1/2^histSubBits (under 1%) of the true value. Fixed size: adding never
// allocates.
type histogram struct {
	counts [64 << histSubBits]int64
	total  int64
}

const histSubBits = 7

func histIndex(ns uint64) int {
	if ns < 1<<histSubBits {
		return int(ns)
	}
	exp := bits.Len64(ns) - 1 - histSubBits // >= 0
	return (exp+1)<<histSubBits + int(ns>>exp) - 1<<histSubBits
}

// histLow is the smallest duration in bucket i.
func histLow(i int) time.Duration {
	if i < 1<<histSubBits {
		return time.Duration(i)
	}
	exp := i>>histSubBits - 1
	mant := uint64(i&(1<<histSubBits-1)) + 1<<histSubBits
	return time.Duration(mant << exp)
}

func (h *histogram) add(d time.Duration) {
	h.counts[histIndex(uint64(max(d, 0)))]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
	h.total += o.total
}

// percentile is the nearest-rank percentile p, as the low end of its
// bucket.
func (h *histogram) percentile(p int) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := (h.total*int64(p) + 99) / 100 // ceil(n*p/100)
	rank = max(rank, 1)
	var seen int64
	for i, n := range h.counts {
		seen += n
		if seen >= rank {
			return histLow(i)
		}
	}
	return histLow(len(h.counts) - 1)
}

// Message sizes of the rps scenarios.
const (
	rpsSize   = 64
	rps1kSize = 1024
)

func recordRPS(ctx context.Context, cfg *config, ups *upstreams, r *relay, row *rowResult) (string, error) {
	return recordRPSSize(ctx, cfg, ups, r, rpsSize, &row.RPS)
}

func recordRPS1k(ctx context.Context, cfg *config, ups *upstreams, r *relay, row *rowResult) (string, error) {
	return recordRPSSize(ctx, cfg, ups, r, rps1kSize, &row.RPS1k)
}

func recordRPSSize(ctx context.Context, cfg *config, ups *upstreams, r *relay, size int, p **rpsResult) (string, error) {
	s, err := runRPS(ctx, r, ups.rpsEcho, cfg.rpsLoops, cfg.rpsConns, size, cfg.rpsWarmup, cfg.rpsDuration)
	if err != nil {
		return "", err
	}
	return addRPSSample(cfg, s, size, p), nil
}

// addRPSSample adds one run's figures to *p (made if nil) and describes
// them. A sample with no harness CPU (runRPSInterleaved: the harness served
// every relay at once) adds none.
func addRPSSample(cfg *config, s rpsSample, size int, p **rpsResult) string {
	if *p == nil {
		*p = &rpsResult{Conns: cfg.rpsConns, Size: size}
	}
	x := *p
	rate := float64(s.reqs) / s.elapsed.Seconds()
	x.RoundsReqPerS = append(x.RoundsReqPerS, rate)
	x.RoundsP50us = append(x.RoundsP50us, micros(s.p50))
	x.RoundsP99us = append(x.RoundsP99us, micros(s.p99))
	x.RoundsReqs = append(x.RoundsReqs, s.reqs)
	x.ReqPerS, x.P50us, x.P99us = median(x.RoundsReqPerS), median(x.RoundsP50us), median(x.RoundsP99us)
	msg := fmt.Sprintf("%.0f req/s, p50 %.0f µs, p99 %.0f µs", rate, micros(s.p50), micros(s.p99))
	if s.harness > 0 {
		hcpu := micros(s.harness) / float64(s.reqs)
		x.RoundsHarnessCPUus = append(x.RoundsHarnessCPUus, hcpu)
		x.HarnessCPUus = median(x.RoundsHarnessCPUus)
		msg += fmt.Sprintf(", harness CPU %.1f µs/req", hcpu)
	}
	if s.hasCPU {
		per := micros(s.cpu) / float64(s.reqs)
		x.RoundsCPUus = append(x.RoundsCPUus, per)
		x.CPUus = median(x.RoundsCPUus)
		msg += fmt.Sprintf(", relay CPU %.1f µs/req", per)
	}
	return msg
}
