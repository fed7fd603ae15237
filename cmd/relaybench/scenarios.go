package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Results hold one sample per round and their median, which the table shows.

type bulkResult struct {
	MBps         float64   `json:"mb_per_s"` // median over rounds
	RoundsMBps   []float64 `json:"rounds_mb_per_s"`
	BytesEachWay int64     `json:"bytes_each_way_per_run"` // verified at both ends
}

type pingResult struct {
	P50us         float64   `json:"p50_us"` // median over rounds
	P99us         float64   `json:"p99_us"` // median over rounds
	RoundsP50us   []float64 `json:"rounds_p50_us"`
	RoundsP99us   []float64 `json:"rounds_p99_us"`
	CountPerRound int       `json:"round_trips_per_round"`
	PinnedCPU     int       `json:"pinned_cpu"` // -1: not pinned
}

type churnResult struct {
	ConnsPerS       float64   `json:"conns_per_s"` // median over rounds
	RoundsConnsPerS []float64 `json:"rounds_conns_per_s"`
	RoundsConns     []int64   `json:"rounds_conns"`
	Concurrency     int       `json:"concurrency"`
	// The relay's CPU time (user and system, all its processes) per
	// connection; none for the direct row.
	CPUus       float64   `json:"cpu_us_per_conn,omitempty"` // median over rounds
	RoundsCPUus []float64 `json:"rounds_cpu_us_per_conn,omitempty"`
}

type memResult struct {
	KiBPerConn       float64   `json:"kib_per_conn"` // median over rounds
	RoundsKiBPerConn []float64 `json:"rounds_kib_per_conn"`
	RoundsBeforeKiB  []int64   `json:"rounds_rss_before_kib"`
	RoundsAfterKiB   []int64   `json:"rounds_rss_after_kib"`
	Conns            int       `json:"conns"`
	Procs            int       `json:"procs"` // processes summed in the last reading (socat forks per connection)
	FDs              int       `json:"fds"`   // open fds of the relay's main process at the last reading
}

// memSample is one round of the mem scenario.
type memSample struct {
	beforeKiB, afterKiB int64
	procs, fds          int
}

const (
	dialTimeout = 5 * time.Second
	stepTimeout = 5 * time.Second // one echo in churn and mem
)

var dialer = net.Dialer{Timeout: dialTimeout}

// bindConn makes c's blocked calls return once ctx is done or the time
// limit passes; call the returned func when done with c.
func bindConn(ctx context.Context, c net.Conn, limit time.Duration) (stop func() bool) {
	c.SetDeadline(time.Now().Add(limit))
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// runBulk measures full-duplex throughput on one connection: an untimed
// warm-up, then one timed run. It returns MB/s over both directions.
func runBulk(ctx context.Context, cfg *config, addr string) (float64, error) {
	if _, err := bulkOnce(ctx, addr, min(cfg.bulkBytes, 16<<20), cfg.bulkTimeout); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	d, err := bulkOnce(ctx, addr, cfg.bulkBytes, cfg.bulkTimeout)
	if err != nil {
		return 0, fmt.Errorf("timed run: %w", err)
	}
	return float64(2*cfg.bulkBytes) / d.Seconds() / 1e6, nil
}

// bulkOnce sends n bytes up while the upstream sends n bytes down on the
// same connection, checks both with CRC-32C, and returns the time from
// the header until the upstream's trailer (sent once it has received all n
// bytes) arrived.
func bulkOnce(ctx context.Context, addr string, n int64, limit time.Duration) (time.Duration, error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer bindConn(ctx, c, limit)()

	start := time.Now()
	var hdr [bulkHeaderLen]byte
	binary.BigEndian.PutUint64(hdr[0:8], uint64(n))
	binary.BigEndian.PutUint64(hdr[8:16], uint64(n))
	if _, err := c.Write(hdr[:]); err != nil {
		return 0, err
	}
	var (
		wg   sync.WaitGroup
		werr error
	)
	wg.Go(func() { _, werr = writePattern(c, n) })
	got, sum, err := readPattern(c, n)
	if err == nil {
		err = readTrailer(c, n)
	}
	elapsed := time.Since(start)
	c.Close() // unblocks the writer after an error; after success it is done
	wg.Wait()
	switch {
	case err == nil && werr != nil:
		err = fmt.Errorf("sending: %w", werr)
	case err == nil && (got != n || sum != patternCRC(n)):
		err = fmt.Errorf("%w: client received %d bytes crc %08x, want %d bytes crc %08x",
			errCorrupt, got, sum, n, patternCRC(n))
	case err != nil && ctx.Err() != nil:
		err = ctx.Err()
	case isTimeout(err):
		err = fmt.Errorf("bulk run of %d bytes each way not done within %v (%d bytes received): %w", n, limit, got, err)
	}
	return elapsed, err
}

// runPing measures sequential request/echo round trips on one connection
// and returns the p50 and p99 latency.
func runPing(ctx context.Context, cfg *config, addr string) (p50, p99 time.Duration, err error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	defer bindConn(ctx, c, cfg.pingTimeout)()

	req := slices.Clone(pattern[:cfg.pingSize])
	resp := make([]byte, cfg.pingSize)
	lat := make([]time.Duration, 0, cfg.pingCount)
	for i := range cfg.pingWarmup + cfg.pingCount {
		if len(req) >= 4 {
			binary.BigEndian.PutUint32(req, uint32(i))
		}
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return 0, 0, fmt.Errorf("round trip %d: %w", i, err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return 0, 0, fmt.Errorf("round trip %d: %w", i, err)
		}
		d := time.Since(t0)
		if !bytes.Equal(req, resp) {
			return 0, 0, fmt.Errorf("round trip %d: %w: echo differs", i, errCorrupt)
		}
		if i >= cfg.pingWarmup {
			lat = append(lat, d)
		}
	}
	slices.Sort(lat)
	return percentile(lat, 50), percentile(lat, 99), nil
}

// runChurn opens connections with a fixed concurrency, each doing one echo
// and a clean close, until cfg.churnCount or cfg.churnDuration is reached.
// It returns how many it completed and how long that took.
func runChurn(ctx context.Context, cfg *config, addr string) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	msg := pattern[:cfg.churnSize]
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(cfg.churnDuration)
	for range cfg.churnConcurrency {
		wg.Go(func() { churnWorker(ctx, cancel, addr, msg, int64(cfg.churnCount), deadline, &next, &done) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return 0, 0, err
	}
	return done.Load(), elapsed, nil
}

func churnWorker(ctx context.Context, fail context.CancelCauseFunc, addr string, msg []byte,
	count int64, deadline time.Time, next, done *atomic.Int64) {
	buf := make([]byte, len(msg))
	for ctx.Err() == nil && time.Now().Before(deadline) && next.Add(1) <= count {
		c, err := echoConn1(ctx, addr, msg, buf)
		if err != nil {
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				err = fmt.Errorf("%w (ephemeral ports exhausted after %d connections; lower -churn-count)", err, done.Load())
			}
			fail(fmt.Errorf("churn connection %d: %w", done.Load()+1, err))
			return
		}
		c.Close() // FIN: everything sent was read, and no SO_LINGER
		done.Add(1)
	}
}

// echoConn1 dials addr and does one echo of msg; the caller owns the
// returned connection, which has no deadline left on it.
func echoConn1(ctx context.Context, addr string, msg, buf []byte) (net.Conn, error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := bindConn(ctx, c, stepTimeout)
	_, err = c.Write(msg)
	if err == nil {
		_, err = io.ReadFull(c, buf)
	}
	if err == nil && !bytes.Equal(msg, buf) {
		err = fmt.Errorf("%w: echo differs", errCorrupt)
	}
	stop()
	if err == nil {
		err = c.SetDeadline(time.Time{})
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// runMem holds cfg.memConns idle relayed connections, each after one echo,
// and reads the relay's RSS before and after.
func runMem(ctx context.Context, cfg *config, r *relay) (memSample, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(2*cfg.memConns+256) {
		return memSample{}, fmt.Errorf("harness fd limit %d too low for %d connections (needs about %d); lower -mem-conns",
			lim.Cur, cfg.memConns, 2*cfg.memConns+256)
	}
	msg := pattern[:16]
	buf := make([]byte, len(msg))
	// Warm up both copy loops once so lazily built state is not counted.
	warm, err := echoConn1(ctx, r.addr, msg, buf)
	if err != nil {
		return memSample{}, fmt.Errorf("warm-up: %w", err)
	}
	warm.Close()
	if err := sleepCtx(ctx, cfg.memSettle); err != nil {
		return memSample{}, err
	}
	var ms memSample
	ms.beforeKiB, _, err = r.RSSKiB()
	if err != nil {
		return memSample{}, err
	}

	conns := make([]net.Conn, 0, cfg.memConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	deadline := time.Now().Add(cfg.memOpenTimeout)
	for len(conns) < cfg.memConns {
		if time.Now().After(deadline) {
			return memSample{}, fmt.Errorf("opened only %d of %d connections within %v", len(conns), cfg.memConns, cfg.memOpenTimeout)
		}
		c, err := echoConn1(ctx, r.addr, msg, buf)
		if err != nil {
			return memSample{}, fmt.Errorf("connection %d: %w", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	if err := sleepCtx(ctx, cfg.memSettle); err != nil {
		return memSample{}, err
	}
	ms.afterKiB, ms.procs, err = r.RSSKiB()
	ms.fds = r.openFDs()
	return ms, err
}

func sleepCtx(ctx context.Context, d time.Duration) error { return sleepOr(ctx, d, nil) }

// sleepOr waits d, or until ctx is done (its error) or failed is closed
// (errLoopEnded; nil: never).
func sleepOr(ctx context.Context, d time.Duration, failed <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-failed:
		return errLoopEnded
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100 // ceil(n*p/100)
	return d[max(i-1, 0)]
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
