package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The bare row re-executes this binary as the relay.
	if isBareRelayArgs(os.Args[1:]) {
		os.Exit(runMain())
	}
	goleak.VerifyTestMain(m)
}

// TestQuickRun runs the whole harness in quick mode on the rows that need
// nothing installed and checks the figures are there and positive. No
// timing assertions.
func TestQuickRun(t *testing.T) {
	rep, stdout := runQuick(t, "-quick", "-rows", "direct,bare")
	if got := len(rep.Rows); got != 2 {
		t.Fatalf("got %d rows, want 2", got)
	}
	for _, r := range rep.Rows {
		if r.Skipped != "" || len(r.Errors) > 0 || len(r.Notes) > 0 {
			t.Errorf("%s: skipped %q, errors %v, notes %v", r.Name, r.Skipped, r.Errors, r.Notes)
			continue
		}
		if r.Bulk == nil || r.Ping == nil || r.Churn == nil {
			t.Errorf("%s: missing results: bulk %v, ping %v, churn %v", r.Name, r.Bulk, r.Ping, r.Churn)
			continue
		}
		if r.Bulk.MBps <= 0 || r.Bulk.BytesEachWay != 16<<20 {
			t.Errorf("%s: bulk %+v, want positive MB/s and 16 MiB each way", r.Name, *r.Bulk)
		}
		if r.Ping.P50us <= 0 || r.Ping.P99us < r.Ping.P50us {
			t.Errorf("%s: ping %+v, want 0 < p50 <= p99", r.Name, *r.Ping)
		}
		if r.Churn.ConnsPerS <= 0 || len(r.Churn.RoundsConns) != 1 || r.Churn.RoundsConns[0] <= 0 {
			t.Errorf("%s: churn %+v, want positive", r.Name, *r.Churn)
		}
	}
	if c := rep.Rows[1].Churn; c == nil || len(c.RoundsCPUus) != 1 || c.CPUus <= 0 {
		t.Errorf("bare: churn %+v, want the relay's CPU per connection, positive", c)
	}
	if c := rep.Rows[0].Churn; c != nil && c.RoundsCPUus != nil {
		t.Errorf("direct: churn CPU %v, want none (no relay process)", c.RoundsCPUus)
	}
	if m := rep.Rows[1].Mem; m == nil || m.KiBPerConn <= 0 || len(m.RoundsBeforeKiB) != 1 || m.RoundsBeforeKiB[0] <= 0 || m.Conns != 100 {
		t.Errorf("bare: mem %+v, want positive KiB/conn over 100 connections", m)
	}
	if rep.Rows[0].Mem != nil {
		t.Errorf("direct: mem %+v, want none (no relay process)", *rep.Rows[0].Mem)
	}
	for _, want := range []string{"bulk MB/s", "cpu µs/conn", "ratio to bare", "targets", "SKIP"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if kids := childPIDs(t); len(kids) > 0 {
		t.Errorf("child processes left behind: %v", kids)
	}
}

// TestBulkBytesBothEnds checks through the bare relay subprocess that the
// bytes the client counts are the bytes the upstream counts, both ways.
func TestBulkBytesBothEnds(t *testing.T) {
	cfg := quickConfig(t)
	var bs bulkServer
	srv, err := startServer(bs.serve)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	r, err := relaySpecs(cfg)[rowBare].start(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopping bare relay: %v", err)
		}
	}()

	const n = 8<<20 + 12345 // not a multiple of any buffer size
	for range 2 {
		if _, err := bulkOnce(ctx, r.addr, n, 30*time.Second); err != nil {
			t.Fatalf("bulkOnce: %v", err)
		}
	}
	if got, want := bs.received.Load(), int64(2*n); got != want {
		t.Errorf("upstream received %d verified bytes, want %d", got, want)
	}
	if got, want := bs.sent.Load(), int64(2*n); got != want {
		t.Errorf("upstream sent %d bytes, want %d", got, want)
	}
	if got := bs.failed.Load(); got != 0 {
		t.Errorf("upstream saw %d failed sessions, want 0", got)
	}
}

// TestBulkDetectsCorruption checks that a relay flipping one byte is caught,
// in either direction.
func TestBulkDetectsCorruption(t *testing.T) {
	var bs bulkServer
	srv, err := startServer(bs.serve)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, up := range []bool{true, false} {
		addr, stop := corruptingRelay(t, srv.Addr(), up, 5<<20)
		_, err := bulkOnce(context.Background(), addr, 8<<20, 30*time.Second)
		stop()
		if !errors.Is(err, errCorrupt) {
			t.Errorf("corrupting up=%v: got %v, want errCorrupt", up, err)
		}
	}
}

func TestParseListenLine(t *testing.T) {
	tests := []struct {
		line string
		addr string
		ok   bool
	}{
		{"proxy listening on 127.0.0.1:41234 -> 127.0.0.1:5432", "127.0.0.1:41234", true},
		{"proxy listening on 127.0.0.1:1 -> x", "127.0.0.1:1", true},
		{"listening on 127.0.0.1:41234", "", false},
		{"proxy listening on 127.0.0.1:41234", "", false},
		{"proxy main listening on 127.0.0.1:7 -> 127.0.0.1:5432", "127.0.0.1:7", true},
		{"proxy two words listening on 127.0.0.1:7 -> x", "", false},
		{"control listening on http://127.0.0.1:8470", "", false},
	}
	for _, tt := range tests {
		addr, ok := parseListenLine(tt.line)
		if addr != tt.addr || ok != tt.ok {
			t.Errorf("parseListenLine(%q) = %q, %v; want %q, %v", tt.line, addr, ok, tt.addr, tt.ok)
		}
	}
}

func quickConfig(t *testing.T) *config {
	t.Helper()
	cfg, err := parseFlags([]string{"-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// corruptingRelay relays one connection to upstream and flips the byte at
// offset at in one direction (client to upstream if up).
func corruptingRelay(t *testing.T, upstream string, up bool, at int64) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards open
		open []net.Conn
	)
	keep := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	wg.Go(func() {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		keep(down)
		upc, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		keep(upc)
		src, dst := net.Conn(down), net.Conn(upc)
		if !up {
			src, dst = upc, down
		}
		var cw sync.WaitGroup
		cw.Go(func() { io.Copy(dst, &flipReader{r: src, at: at}); down.Close(); upc.Close() })
		cw.Go(func() { io.Copy(src, dst); down.Close(); upc.Close() })
		cw.Wait()
	})
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

type flipReader struct {
	r   io.Reader
	at  int64
	off int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}

// childPIDs lists live processes whose parent is this one.
func childPIDs(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok && strings.TrimSpace(v) == me {
				pid, _ := strconv.Atoi(e.Name())
				kids = append(kids, pid)
			}
		}
	}
	return kids
}

// TestFaultlineGOMAXPROCS checks that -faultline-gomaxprocs reaches the
// faultline rows' environment, and only theirs.
func TestFaultlineGOMAXPROCS(t *testing.T) {
	script := `echo "GOMAXPROCS=[$GOMAXPROCS]" >&2; echo "proxy listening on 127.0.0.1:9 -> 127.0.0.1:1"; exec sleep 30`
	for _, tc := range []struct {
		name     string
		procs    int
		relayBin string // argv[0] of the relay; cfg.faultline is /bin/sh
		want     string
	}{
		{"faultline row", 3, "/bin/sh", "GOMAXPROCS=[3]"},
		{"faultline row, default", 0, "/bin/sh", "GOMAXPROCS=[" + os.Getenv("GOMAXPROCS") + "]"},
		{"other row", 3, "sh", "GOMAXPROCS=[" + os.Getenv("GOMAXPROCS") + "]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config{faultline: "/bin/sh", flProcs: tc.procs, startTimeout: 10 * time.Second}
			r, err := startLineRelay(context.Background(), cfg, "fake", []string{tc.relayBin, "-c", script})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Stop()
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(r.stderr.tailString(), "GOMAXPROCS=[") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := r.stderr.tailString(); !strings.Contains(got, tc.want) {
				t.Errorf("relay's stderr %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// TestGroupCPU checks that groupCPU counts a busy process of the group and
// never more than the CPUs could have given it.
func TestGroupCPU(t *testing.T) {
	r, err := launch("busy", []string{"/bin/sh", "-c", "while :; do :; done"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	start := time.Now()
	var used time.Duration
	for deadline := start.Add(10 * time.Second); used < 100*time.Millisecond && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if used, _, err = r.CPU(); err != nil {
			t.Fatal(err)
		}
	}
	wall := time.Since(start)
	if used < 100*time.Millisecond {
		t.Fatalf("a busy shell used %v of CPU in %v, want at least 100ms", used, wall)
	}
	if limit := wall * time.Duration(runtime.NumCPU()); used > limit+clockTick {
		t.Errorf("%v of CPU in %v of wall time on %d CPUs", used, wall, runtime.NumCPU())
	}
}

// TestPoolRowsReuse runs sequential echo sessions through each pool
// reference relay subprocess (bare-pool, epoll-pool) and checks that each
// echo is right, that the upstream saw far fewer connections than there
// were sessions, that 8 MiB echoed while the client writes and reads at
// once arrive intact (more than socket buffers hold, so the relay must wait
// for a writable side and keep what it could not write), and that a
// session the upstream ends first reaches the client as EOF.
func TestPoolRowsReuse(t *testing.T) {
	for _, row := range []string{rowBarePool, rowEpollPool} {
		t.Run(row, func(t *testing.T) { testPoolRowReuses(t, row) })
	}
}

func testPoolRowReuses(t *testing.T, row string) {
	cfg := quickConfig(t)
	var accepted atomic.Int64
	closeFirst := make(chan struct{}, 1) // a token: the next upstream session ends after one echo
	srv, err := startServer(func(c net.Conn) {
		accepted.Add(1)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			select {
			case <-closeFirst:
				c.Close()
				return
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r, err := relaySpecs(cfg)[row].start(context.Background(), srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopping %s relay: %v", row, err)
		}
	}()

	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	echo := func(i int, thenEOF bool) {
		t.Helper()
		c := dial()
		defer c.Close()
		msg := []byte("session " + strconv.Itoa(i))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("session %d: echo %q, %v; want %q", i, got, err, msg)
		}
		if thenEOF {
			if n, err := c.Read(got); err != io.EOF {
				t.Errorf("session %d: after the upstream closed, read %d bytes, %v; want EOF", i, n, err)
			}
		}
	}
	const sessions = 40
	for i := range sessions {
		echo(i, false)
	}
	if n := accepted.Load(); n > sessions/4 {
		t.Errorf("upstream accepted %d connections for %d sequential sessions; want reuse (at most %d)", n, sessions, sessions/4)
	}

	c := dial()
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		wrote <- err
	}()
	got := make([]byte, len(data))
	n, err := io.ReadFull(c, got)
	c.Close()
	if werr := <-wrote; werr != nil {
		t.Errorf("writing %d bytes: %v", len(data), werr)
	}
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("8 MiB echo: read %d bytes (%v), equal %v", n, err, bytes.Equal(got, data))
	}

	closeFirst <- struct{}{}
	echo(sessions, true)
}

// TestQuickRequests runs the request scenarios in quick mode on the rows
// that need nothing installed (redis: when installed; else its cells must
// say skip) and checks their figures are there and consistent: rps and
// rps1k with the rows taking turns (one sample per round, quick mode's
// -rps-slice), redis in two passes (a sample from each).
func TestQuickRequests(t *testing.T) {
	rep, stdout := runQuick(t, "-quick", "-passes", "2", "-rows", "direct,bare,bare-pool", "-scenarios", "rps,rps1k,redis")
	_, _, redisSkip := findRedis()
	for _, r := range rep.Rows[:2] {
		if r.Skipped != "" || len(r.Errors) > 0 || len(r.Notes) > 0 {
			t.Errorf("%s: skipped %q, errors %v, notes %v", r.Name, r.Skipped, r.Errors, r.Notes)
			continue
		}
		for _, x := range []struct {
			name string
			res  *rpsResult
			size int
		}{{"rps", r.RPS, rpsSize}, {"rps1k", r.RPS1k, rps1kSize}} {
			switch res := x.res; {
			case res == nil:
				t.Errorf("%s %s: no result", r.Name, x.name)
			case res.ReqPerS <= 0 || len(res.RoundsReqs) != 1 || res.RoundsReqs[0] <= 0:
				t.Errorf("%s %s: %+v, want positive req/s and requests", r.Name, x.name, *res)
			case res.P50us <= 0 || res.P99us < res.P50us:
				t.Errorf("%s %s: p50 %v, p99 %v, want 0 < p50 <= p99", r.Name, x.name, res.P50us, res.P99us)
			case res.Conns != 8 || res.Size != x.size:
				t.Errorf("%s %s: %d conns of %d B, want 8 of %d", r.Name, x.name, res.Conns, res.Size, x.size)
			case (r.Name == rowBare) != (len(res.RoundsCPUus) == 1):
				t.Errorf("%s %s: relay CPU per request %v, want one for bare, none for direct", r.Name, x.name, res.RoundsCPUus)
			}
		}
		if redisSkip != "" {
			if r.Redis != nil || r.Skips[scRedis] != redisSkip {
				t.Errorf("%s redis: result %v, skip %q; want none and skip %q", r.Name, r.Redis, r.Skips[scRedis], redisSkip)
			}
			continue
		}
		if x := r.Redis; x == nil || x.ReqPerS <= 0 || x.P99us < x.P50us || x.Requests != 1000 || len(x.RoundsReqPerS) != 2 || x.Conns != 8 {
			t.Errorf("%s redis: %+v, want positive req/s over two passes of 1000 requests on 8 conns", r.Name, x)
		}
	}
	if pool := rep.Rows[2]; pool.RPS != nil || pool.NotRun[scRPS] == "" {
		t.Errorf("bare-pool rps: %+v, not run %q; want not measured (churn only)", pool.RPS, pool.NotRun[scRPS])
	}
	for _, want := range []string{"rps req/s", "rps1k p99 µs", "redis req/s", "targets: ", "stretch goals"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(stdout.String(), "bulk MB/s") {
		t.Errorf("table shows the bulk column, which was not selected")
	}
	if kids := childPIDs(t); len(kids) > 0 {
		t.Errorf("child processes left behind (redis-server?): %v", kids)
	}
}

// TestRedisNotInstalled checks that without redis-server and
// redis-benchmark in PATH the redis cells say skip and the table says why.
func TestRedisNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-quick", "-rows", "direct", "-scenarios", "redis"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, &stderr)
	}
	out := stdout.String()
	const why = "redis-server and redis-benchmark not found in PATH"
	for _, want := range []string{
		"direct redis: skipped: " + why,
		"SKIP  faultline-dial redis >= 1.1x bare",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var cells []string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 5 && f[0] == rowDirect {
			cells = f[1:]
		}
	}
	if !slices.Equal(cells, []string{"skip", "skip", "skip", "skip"}) {
		t.Errorf("direct's redis cells %q, want skip in each", cells)
	}
}

// TestRPSDetectsCorruption checks that an rps round trip whose echo a relay
// changed is caught, either way.
func TestRPSDetectsCorruption(t *testing.T) {
	srv, err := startServer(echoConn)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, up := range []bool{true, false} {
		addr, stop := corruptingRelay(t, srv.Addr(), up, 5000)
		_, err := runRPS(context.Background(), &relay{addr: addr}, nil, 1, 1, rpsSize, 0, 10*time.Second)
		stop()
		if !errors.Is(err, errCorrupt) {
			t.Errorf("corrupting up=%v: got %v, want errCorrupt", up, err)
		}
	}
}

// TestRPSNoAllocPerRequest checks that the load generator and its echo
// allocate nothing per round trip: what a round allocates (sockets,
// histogram, goroutines) does not grow with the round trips made.
func TestRPSNoAllocPerRequest(t *testing.T) {
	echo, err := startRPSEcho()
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	r := &relay{addr: echo.Addr()}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := runRPS(context.Background(), r, echo, 2, 4, rpsSize, 0, 300*time.Millisecond)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	mallocs := after.Mallocs - before.Mallocs
	t.Logf("%d round trips, %d mallocs in the round", s.reqs, mallocs)
	if s.reqs < 1000 {
		t.Skipf("only %d round trips in 300ms; too few to tell", s.reqs)
	}
	if per := float64(mallocs) / float64(s.reqs); per > 0.05 {
		t.Errorf("%d mallocs for %d round trips (%.2f each), want none per round trip", mallocs, s.reqs, per)
	}
}

// TestRPSStuckEcho checks that a round trip whose echo never comes fails
// the round rather than lowering its figure quietly.
func TestRPSStuckEcho(t *testing.T) {
	srv, err := startServer(func(c net.Conn) { io.Copy(io.Discard, c) }) // reads, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, err = runRPS(context.Background(), &relay{addr: srv.Addr()}, nil, 2, 2, rpsSize, 0, stepTimeout+time.Second)
	if err == nil || !strings.Contains(err.Error(), "no echo after") {
		t.Errorf("got %v, want no echo after %v", err, stepTimeout)
	}
}

// TestHistogram checks the histogram's percentiles against the exact
// nearest-rank ones of the same durations: never above, and within 1%.
func TestHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	d := make([]time.Duration, 0, 100000)
	for range cap(d) {
		// from 10ns to about 1s, log-uniform
		v := time.Duration(math.Exp(rng.Float64()*math.Log(1e8)) * 10)
		d = append(d, v)
		h.add(v)
	}
	slices.Sort(d)
	for _, p := range []int{1, 50, 90, 99, 100} {
		exact, got := percentile(d, p), h.percentile(p)
		if got > exact || float64(exact-got) > 0.01*float64(exact) {
			t.Errorf("p%d: histogram %v, exact %v; want within 1%% below", p, got, exact)
		}
	}
	for _, v := range []time.Duration{0, 1, 127, 128, 129, 255, 256, 1<<40 + 12345, math.MaxInt64} {
		// (the bucket after MaxInt64's would start past it: it overflows)
		if i := histIndex(uint64(v)); histLow(i) > v || v != math.MaxInt64 && histLow(i+1) <= v {
			t.Errorf("%d: bucket %d is [%d, %d)", v, i, histLow(i), histLow(i+1))
		}
	}
}

func TestParseRedisCSV(t *testing.T) {
	const head = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"` + "\n"
	tests := []struct {
		name string
		out  string
		want redisBenchOut
		err  string
	}{
		{"redis 7", head + `"GET","42016.80","0.759","0.160","0.583","0.943","1.607","93.503"` + "\n", redisBenchOut{42016.80, 0.583, 1.607}, ""},
		{"columns moved", `"p99_latency_ms","test","p50_latency_ms","rps"` + "\n" + `"2","GET","1","10"` + "\n", redisBenchOut{10, 1, 2}, ""},
		{"no GET line", head + `"SET","1","1","1","1","1","1","1"` + "\n", redisBenchOut{}, "no GET line"},
		{"no p99", `"test","rps","p50_latency_ms"` + "\n" + `"GET","1","1"` + "\n", redisBenchOut{}, "no p99_latency_ms column"},
		{"bad number", head + `"GET","x","1","1","1","1","1","1"` + "\n", redisBenchOut{}, "rps"},
		{"zero rps", head + `"GET","0","1","1","1","1","1","1"` + "\n", redisBenchOut{}, "rps 0"},
		{"empty", "", redisBenchOut{}, "0 CSV lines"},
	}
	for _, tt := range tests {
		got, err := parseRedisCSV([]byte(tt.out))
		if tt.err == "" && (err != nil || got != tt.want) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: got %+v, %v; want %+v, error containing %q", tt.name, got, err, tt.want, tt.err)
		}
	}
}

// TestAddFaultTarget checks the AddFault target read from go test -bench
// output: the worst p99 over the variants decides.
func TestAddFaultTarget(t *testing.T) {
	const out = `goos: linux
BenchmarkAddFault1000/latency-2              300   43734240 ns/op   440.0 p50-µs/add   158.0 p50-µs/remove   768.0 p99-µs/add   572.0 p99-µs/remove
BenchmarkAddFault1000/stall-2                300   43463004 ns/op   455.0 p50-µs/add   157.0 p50-µs/remove   %s p99-µs/add   393.0 p99-µs/remove
BenchmarkBulk-2        28664   129168 ns/op   2029.49 MB/s
PASS
`
	tests := []struct {
		name, file, status, detail string
	}{
		{"under", fmt.Sprintf(out, "617.0"), "PASS", "768 <= 5000 µs (worst of latency 768, stall 617 µs; 300 adds each"},
		{"over", fmt.Sprintf(out, "5001.0"), "FAIL", "5001 > 5000 µs"},
		{"absent", "BenchmarkBulk-2   28664   129168 ns/op\n", "SKIP", "no BenchmarkAddFault1000 line"},
		{"not given", "", "SKIP", "-gobench FILE not given"},
	}
	for _, tt := range tests {
		rep := &report{cfg: &config{}}
		if tt.file != "" {
			rep.cfg.goBench = "bench.txt"
			var err error
			if rep.GoBench, err = parseGoBench(strings.NewReader(tt.file)); err != nil {
				t.Fatal(err)
			}
		}
		got := rep.checkAddFault()
		if got.Status != tt.status || !strings.Contains(got.Detail, tt.detail) {
			t.Errorf("%s: %s %q, want %s and %q", tt.name, got.Status, got.Detail, tt.status, tt.detail)
		}
	}
}

// TestStretchNeverFails checks that a missed stretch goal is reported as
// missed, not FAIL, while the target on the same figures still decides.
func TestStretchNeverFails(t *testing.T) {
	rps := func(v ...float64) *rpsResult { return &rpsResult{RoundsReqPerS: v} }
	rep := &report{cfg: &config{scenarios: []string{scRPS}}, Rows: []*rowResult{
		{Name: rowBare, RPS: rps(100, 100, 100)},
		{Name: rowFaultlineDial, RPS: rps(120, 110, 130)},
		{Name: rowHAProxy, RPS: rps(200, 200, 200)},
	}}
	rep.evaluate()
	want := map[string]string{
		"faultline-dial rps >= 1.1x bare":      "PASS",
		"faultline-dial rps >= 0.9x haproxy":   "missed",
		"faultline-dial rps >= 1.2x toxiproxy": "SKIP",
	}
	for _, tr := range rep.Targets {
		if w, ok := want[tr.Target]; ok {
			if tr.Status != w || tr.Stretch != (w == "missed") {
				t.Errorf("%s: %s (stretch %v), want %s", tr.Target, tr.Status, tr.Stretch, w)
			}
			delete(want, tr.Target)
		}
	}
	if len(want) > 0 {
		t.Errorf("targets missing: %v", want)
	}
	var b bytes.Buffer
	rep.writeTable(&b)
	if !strings.Contains(b.String(), "targets: 1 PASS, 0 FAIL, ") {
		t.Errorf("table's target count wrong:\n%s", &b)
	}
	if !strings.Contains(b.String(), "by run 1.10-1.30x") {
		t.Errorf("target detail lacks the by-round range 1.10-1.30x:\n%s", &b)
	}
}

// TestHarnessNoteDrift: the harness's CPU per request is the same work in
// every run, so the note gives its range over all runs as the machine's
// drift.
func TestHarnessNoteDrift(t *testing.T) {
	x := func(med float64, runs ...float64) *rpsResult {
		return &rpsResult{ReqPerS: 1, HarnessCPUus: med, RoundsHarnessCPUus: runs}
	}
	rep := &report{cfg: &config{}, Rows: []*rowResult{
		{Name: rowDirect, RPS: x(10, 10, 10)},
		{Name: rowBare, RPS: x(20, 18, 20, 36)},
		{Name: rowFaultlineDial, RPS: x(19, 19, 24, 17)},
	}}
	got := rep.harnessNote()
	if want := "run by run it used 17.0-36.0 µs (2.12x)"; !strings.Contains(got, want) {
		t.Errorf("note %q lacks %q", got, want)
	}
}

// TestYardstickNote: the note puts 1.2x toxiproxy's req/s in terms of the
// bare relay's and haproxy's, per request scenario measured.
func TestYardstickNote(t *testing.T) {
	x := func(reqs float64) *rpsResult { return &rpsResult{RoundsReqPerS: []float64{reqs}} }
	rep := &report{cfg: &config{}, Rows: []*rowResult{
		{Name: rowBare, RPS: x(1000), RPS1k: x(1000)},
		{Name: rowToxiproxy, RPS: x(1000), RPS1k: x(830)},
		{Name: rowHAProxy, RPS: x(1200)},
	}}
	got := rep.yardstickNote()
	for _, want := range []string{"1.2x toxiproxy was rps 1.20x bare and 1.00x haproxy; rps1k 1.00x bare;", "1.1x bare", "0.9x haproxy"} {
		if !strings.Contains(got, want) {
			t.Errorf("note %q lacks %q", got, want)
		}
	}
	if (&report{cfg: &config{}}).yardstickNote() != "" {
		t.Error("a note with no rows measured")
	}
}

// TestChurnInterleavedTurns: with -churn-slice, churn's rows take turns
// (each row's turns alternate with the other's) until each has had
// -churn-duration; with -churn-slice 0 they run one after the other.
func TestChurnInterleavedTurns(t *testing.T) {
	var order []string
	total := map[string]time.Duration{}
	onChurnTurn = func(row string, d time.Duration) {
		order = append(order, row)
		total[row] += d
	}
	defer func() { onChurnTurn = nil }()
	const dur, slice = 400 * time.Millisecond, 50 * time.Millisecond
	rep, _ := runQuick(t, "-quick", "-rows", "direct,bare", "-scenarios", "churn",
		"-churn-count", "1000000", "-churn-duration", dur.String(), "-churn-slice", slice.String())
	if len(order) < 2*int(dur/slice) {
		t.Errorf("%d turns, want at least %d", len(order), 2*int(dur/slice))
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			t.Fatalf("turn %d went to %s again: %v", i, order[i], order)
		}
	}
	for _, row := range []string{rowDirect, rowBare} {
		if total[row] < dur || total[row] > dur+slice {
			t.Errorf("%s: turns took %v in all, want %v to %v", row, total[row], dur, dur+slice)
		}
		r := rep.row(row)
		if r == nil || r.Churn == nil || len(r.Churn.RoundsConns) != 1 || r.Churn.RoundsConns[0] <= 0 {
			t.Errorf("%s: churn %+v, want one round with connections", row, r)
		}
	}

	order = nil
	rep, _ = runQuick(t, "-quick", "-rows", "direct,bare", "-scenarios", "churn", "-churn-slice", "0")
	if len(order) != 0 {
		t.Errorf("-churn-slice 0: %d turns, want rows one after the other", len(order))
	}
	if r := rep.row(rowBare); r == nil || r.Churn == nil || len(r.Churn.RoundsConns) != 1 {
		t.Errorf("-churn-slice 0: bare churn %+v, want one round", r)
	}
}

// TestRPSInterleavedTurns: relays taking turns each get their timed share
// (no more than a turn over) and count round trips; with the rows one
// after the other (-rps-slice 0) the request scenarios run in -passes.
func TestRPSInterleavedTurns(t *testing.T) {
	var rs []*relay
	var echos []*rpsEcho
	for i := range 2 {
		e, err := startRPSEcho()
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		echos = append(echos, e)
		rs = append(rs, &relay{name: fmt.Sprintf("direct-%d", i), addr: e.Addr()})
	}
	const d, slice = 300 * time.Millisecond, 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var changes, overlaps int // only the loop driving this test's goroutine calls onTurn
	onTurn = func(phases []atomic.Int32) {
		changes++
		active := 0
		for i := range phases {
			if p := phases[i].Load(); p == rpsWarmup || p == rpsTimed {
				active++
			}
		}
		if active > 1 {
			overlaps++
		}
	}
	defer func() { onTurn = nil }()
	out, err := runRPSInterleaved(ctx, rs, echos, 4, rpsSize, 50*time.Millisecond, d, slice)
	if err != nil {
		t.Fatal(err)
	}
	if changes == 0 || overlaps > 0 {
		t.Errorf("%d phase changes, %d with more than one relay's turn at once; want turns one at a time", changes, overlaps)
	}
	for i, s := range out {
		if s.elapsed < d || s.elapsed > d+slice+100*time.Millisecond || s.reqs <= 0 || s.p50 <= 0 || s.harness != 0 {
			t.Errorf("relay %d: %+v, want %v to %v timed, round trips, no harness CPU", i, s, d, d+slice)
		}
	}

	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"-quick", "-rps-slice", "0", "-passes", "2", "-rows", "direct,bare", "-scenarios", "rps"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, &stderr)
	}
	if got := strings.Count(stderr.String(), "  bare            rps "); got != 2 {
		t.Errorf("-rps-slice 0 -passes 2: %d bare rps runs, want 2:\n%s", got, &stderr)
	}
}

// runQuick runs relaybench with args (within a minute), logs its table,
// and returns the report it wrote as -json and its table.
func runQuick(t *testing.T, args ...string) (report, *bytes.Buffer) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, append(args, "-json", jsonPath), &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, &stderr)
	}
	t.Logf("table:\n%s", &stdout)
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, &stdout
}
