package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The redis scenario: a real client through each relay. relaybench starts
// its own redis-server on a free loopback port (no persistence) for the
// run, and redis-benchmark (GET, -redis-conns connections, -redis-requests
// requests) runs against each row's relay in front of it.

type redisResult struct {
	ReqPerS       float64   `json:"req_per_s"` // median over rounds, as redis-benchmark reports it
	P50us         float64   `json:"p50_us"`    // median over rounds, redis-benchmark's
	P99us         float64   `json:"p99_us"`    // median over rounds, redis-benchmark's
	RoundsReqPerS []float64 `json:"rounds_req_per_s"`
	RoundsP50us   []float64 `json:"rounds_p50_us"`
	RoundsP99us   []float64 `json:"rounds_p99_us"`
	// The relay's CPU time (user and system, all its processes) per
	// request over the timed run; none for the direct row.
	CPUus       float64   `json:"cpu_us_per_req,omitempty"` // median over rounds
	RoundsCPUus []float64 `json:"rounds_cpu_us_per_req,omitempty"`
	Conns       int       `json:"conns"`
	Requests    int       `json:"requests"` // per timed run
	Version     string    `json:"redis_benchmark_version,omitempty"`
}

// findRedis returns the paths of redis-server and redis-benchmark, or why
// the redis scenario cannot run.
func findRedis() (server, benchmark, skip string) {
	var missing []string
	server, err := exec.LookPath("redis-server")
	if err != nil {
		missing = append(missing, "redis-server")
	}
	benchmark, err = exec.LookPath("redis-benchmark")
	if err != nil {
		missing = append(missing, "redis-benchmark")
	}
	if len(missing) > 0 {
		skip = strings.Join(missing, " and ") + " not found in PATH"
	}
	return server, benchmark, skip
}

// startRedis starts redis-server on a free loopback port, without
// persistence, its files in a temporary directory; Stop ends it.
func startRedis(ctx context.Context, cfg *config, path string) (*relay, error) {
	return startPortRelay(ctx, cfg, "redis-server", func(port int, dir string) ([]string, error) {
		return []string{path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning"}, nil
	})
}

// redisCommands reads total_commands_processed from the redis server at
// addr (INFO stats; the INFO command itself counts once it has run).
func redisCommands(ctx context.Context, addr string) (int64, error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer bindConn(ctx, c, stepTimeout)()
	if _, err := c.Write([]byte("INFO stats\r\n")); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	head, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(head, "$") {
		return 0, fmt.Errorf("INFO stats: unexpected reply %q", head)
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("INFO stats: unexpected reply %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO stats: no total_commands_processed")
}

// redisBenchOut is what relaybench reads from redis-benchmark's --csv line.
type redisBenchOut struct {
	rps, p50ms, p99ms float64
}

// parseRedisCSV reads the GET line of redis-benchmark -q --csv:
//
//	"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
//	"GET","42016.80","0.759","0.160","0.583","0.943","1.607","93.503"
func parseRedisCSV(out []byte) (redisBenchOut, error) {
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return redisBenchOut{}, fmt.Errorf("redis-benchmark output: %w", err)
	}
	if len(recs) < 2 {
		return redisBenchOut{}, fmt.Errorf("redis-benchmark output: %d CSV lines, want a header and a GET line", len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	test, ok := col["test"]
	if !ok {
		return redisBenchOut{}, errors.New("redis-benchmark output: no test column")
	}
	for _, rec := range recs[1:] {
		if test >= len(rec) || rec[test] != "GET" {
			continue
		}
		var o redisBenchOut
		for _, f := range []struct {
			name string
			v    *float64
		}{{"rps", &o.rps}, {"p50_latency_ms", &o.p50ms}, {"p99_latency_ms", &o.p99ms}} {
			i, ok := col[f.name]
			if !ok || i >= len(rec) {
				return redisBenchOut{}, fmt.Errorf("redis-benchmark output: no %s column", f.name)
			}
			if *f.v, err = strconv.ParseFloat(rec[i], 64); err != nil {
				return redisBenchOut{}, fmt.Errorf("redis-benchmark output: %s: %w", f.name, err)
			}
		}
		if o.rps <= 0 {
			return redisBenchOut{}, fmt.Errorf("redis-benchmark output: rps %v", o.rps)
		}
		return o, nil
	}
	return redisBenchOut{}, errors.New("redis-benchmark output: no GET line")
}

// runRedisBenchmark runs redis-benchmark against addr and returns its
// figures.
func runRedisBenchmark(ctx context.Context, path, addr string, conns, requests int, limit time.Duration) (redisBenchOut, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return redisBenchOut{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-h", host, "-p", port, "-c", strconv.Itoa(conns),
		"-n", strconv.Itoa(requests), "-t", "get", "-q", "--csv")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("not done within %v", limit)
		}
		return redisBenchOut{}, fmt.Errorf("redis-benchmark: %w: %s%s", err, bytes.TrimSpace(stderr.Bytes()), bytes.TrimSpace(out))
	}
	return parseRedisCSV(out)
}

// recordRedis runs redis-benchmark through r twice, a short untimed run and
// the timed one, and checks from the server's command count that the
// requests went through.
func recordRedis(ctx context.Context, cfg *config, ups *upstreams, r *relay, row *rowResult) (string, error) {
	if ups.redisSkip != "" {
		return "", errors.New(ups.redisSkip)
	}
	if _, err := runRedisBenchmark(ctx, ups.redisBenchmark, r.addr, cfg.redisConns, max(cfg.redisRequests/10, cfg.redisConns), cfg.redisTimeout); err != nil {
		return "", fmt.Errorf("warm-up: %w", err)
	}
	before, err := redisCommands(ctx, ups.redis.addr)
	if err != nil {
		return "", err
	}
	cpu0, hasCPU, err := r.CPU()
	if err != nil {
		return "", err
	}
	o, err := runRedisBenchmark(ctx, ups.redisBenchmark, r.addr, cfg.redisConns, cfg.redisRequests, cfg.redisTimeout)
	if err != nil {
		return "", err
	}
	cpu1, _, err := r.CPU()
	if err != nil {
		return "", err
	}
	after, err := redisCommands(ctx, ups.redis.addr)
	if err != nil {
		return "", err
	}
	if got := after - before - 1; got < int64(cfg.redisRequests) {
		return "", fmt.Errorf("redis-server processed %d commands during the run, want at least the %d requests", got, cfg.redisRequests)
	}

	if row.Redis == nil {
		row.Redis = &redisResult{Conns: cfg.redisConns, Requests: cfg.redisRequests}
	}
	x := row.Redis
	x.RoundsReqPerS = append(x.RoundsReqPerS, o.rps)
	x.RoundsP50us = append(x.RoundsP50us, o.p50ms*1000)
	x.RoundsP99us = append(x.RoundsP99us, o.p99ms*1000)
	x.ReqPerS, x.P50us, x.P99us = median(x.RoundsReqPerS), median(x.RoundsP50us), median(x.RoundsP99us)
	msg := fmt.Sprintf("%.0f req/s, p50 %.0f µs, p99 %.0f µs", o.rps, o.p50ms*1000, o.p99ms*1000)
	if hasCPU {
		per := micros(cpu1-cpu0) / float64(cfg.redisRequests)
		x.RoundsCPUus = append(x.RoundsCPUus, per)
		x.CPUus = median(x.RoundsCPUus)
		msg += fmt.Sprintf(", relay CPU %.1f µs/req", per)
	}
	return msg, nil
}
