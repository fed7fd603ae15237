package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	Meta    meta           `json:"meta"`
	GoBench []goBenchLine  `json:"go_benchmarks,omitempty"` // from -gobench
	Rows    []*rowResult   `json:"rows"`
	Targets []targetResult `json:"targets"`
	Notes   []string       `json:"notes"`
	cfg     *config
}

type meta struct {
	Go       string    `json:"go"`
	Platform string    `json:"platform"`
	CPUs     int       `json:"cpus"`
	CPU      string    `json:"cpu"`
	Kernel   string    `json:"kernel"`
	Start    time.Time `json:"start"`
	ElapsedS float64   `json:"elapsed_s"`
	Args     []string  `json:"args"`
}

type rowResult struct {
	Name    string            `json:"name"`
	Skipped string            `json:"skipped,omitempty"` // why the row did not run
	Bulk    *bulkResult       `json:"bulk,omitempty"`
	Ping    *pingResult       `json:"ping,omitempty"`
	Churn   *churnResult      `json:"churn,omitempty"`
	Mem     *memResult        `json:"mem,omitempty"`
	RPS     *rpsResult        `json:"rps,omitempty"`
	RPS1k   *rpsResult        `json:"rps1k,omitempty"`
	Redis   *redisResult      `json:"redis,omitempty"`
	Skips   map[string]string `json:"skips,omitempty"`   // by scenario: why it could not run (a tool not installed)
	Errors  map[string]string `json:"errors,omitempty"`  // by scenario
	NotRun  map[string]string `json:"not_run,omitempty"` // by scenario: why it does not apply
	Notes   []string          `json:"notes,omitempty"`
}

func newMeta(cfg *config) meta {
	m := meta{
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:     runtime.NumCPU(),
		CPU:      "?",
		Kernel:   "?",
		Start:    time.Now(),
		Args:     os.Args[1:],
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// metric is one column of the table.
type metric struct {
	key      string
	title    string
	unit     string
	scenario string
	higher   bool // higher is better
	format   string
	rounds   func(*rowResult) []float64 // one sample per round
	block    int                        // the table block it is shown in (see blocks)
}

// blocks name the blocks of columns the table is printed in, so that no
// line gets too wide: one connection at a time, then many requests.
var blocks = []string{"connections", "requests", "redis"}

// blockTitle heads block b of the table.
func (rep *report) blockTitle(b int) string {
	switch blocks[b] {
	case "requests":
		return fmt.Sprintf("requests: rps (64 B), rps1k (1 KiB), %d connections of sequential round trips", rep.cfg.rpsConns)
	case "redis":
		return fmt.Sprintf("redis: redis-benchmark GET, %d connections", rep.cfg.redisConns)
	}
	return "connections: bulk, ping, churn, mem"
}

var metrics = []metric{
	{"bulk", "bulk MB/s", "MB/s", scBulk, true, "%.0f", func(r *rowResult) []float64 {
		if r.Bulk == nil {
			return nil
		}
		return r.Bulk.RoundsMBps
	}, 0},
	{"p50", "ping p50 µs", "µs", scPing, false, "%.1f", func(r *rowResult) []float64 {
		if r.Ping == nil {
			return nil
		}
		return r.Ping.RoundsP50us
	}, 0},
	{"p99", "ping p99 µs", "µs", scPing, false, "%.1f", func(r *rowResult) []float64 {
		if r.Ping == nil {
			return nil
		}
		return r.Ping.RoundsP99us
	}, 0},
	{"churn", "churn conn/s", "conn/s", scChurn, true, "%.0f", func(r *rowResult) []float64 {
		if r.Churn == nil {
			return nil
		}
		return r.Churn.RoundsConnsPerS
	}, 0},
	{"cpu", "cpu µs/conn", "µs/conn", scChurn, false, "%.0f", func(r *rowResult) []float64 {
		if r.Churn == nil {
			return nil
		}
		return r.Churn.RoundsCPUus
	}, 0},
	{"mem", "mem KiB/conn", "KiB/conn", scMem, false, "%.1f", func(r *rowResult) []float64 {
		if r.Mem == nil {
			return nil
		}
		return r.Mem.RoundsKiBPerConn
	}, 0},
	{"rps", "rps req/s", "req/s", scRPS, true, "%.0f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS }, func(x *rpsResult) []float64 { return x.RoundsReqPerS }), 1},
	{"rps-p50", "rps p50 µs", "µs", scRPS, false, "%.0f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS }, func(x *rpsResult) []float64 { return x.RoundsP50us }), 1},
	{"rps-p99", "rps p99 µs", "µs", scRPS, false, "%.0f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS }, func(x *rpsResult) []float64 { return x.RoundsP99us }), 1},
	{"rps-cpu", "rps cpu/req", "µs/req", scRPS, false, "%.1f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS }, func(x *rpsResult) []float64 { return x.RoundsCPUus }), 1},
	{"rps1k", "rps1k req/s", "req/s", scRPS1k, true, "%.0f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS1k }, func(x *rpsResult) []float64 { return x.RoundsReqPerS }), 1},
	{"rps1k-p50", "rps1k p50 µs", "µs", scRPS1k, false, "%.0f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS1k }, func(x *rpsResult) []float64 { return x.RoundsP50us }), 1},
	{"rps1k-p99", "rps1k p99 µs", "µs", scRPS1k, false, "%.0f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS1k }, func(x *rpsResult) []float64 { return x.RoundsP99us }), 1},
	{"rps1k-cpu", "rps1k cpu/req", "µs/req", scRPS1k, false, "%.1f", rpsRounds(func(r *rowResult) *rpsResult { return r.RPS1k }, func(x *rpsResult) []float64 { return x.RoundsCPUus }), 1},
	{"redis", "redis req/s", "req/s", scRedis, true, "%.0f", redisRounds(func(x *redisResult) []float64 { return x.RoundsReqPerS }), 2},
	{"redis-p50", "redis p50 µs", "µs", scRedis, false, "%.0f", redisRounds(func(x *redisResult) []float64 { return x.RoundsP50us }), 2},
	{"redis-p99", "redis p99 µs", "µs", scRedis, false, "%.0f", redisRounds(func(x *redisResult) []float64 { return x.RoundsP99us }), 2},
	{"redis-cpu", "redis cpu/req", "µs/req", scRedis, false, "%.1f", redisRounds(func(x *redisResult) []float64 { return x.RoundsCPUus }), 2},
}

func redisRounds(series func(*redisResult) []float64) func(*rowResult) []float64 {
	return func(r *rowResult) []float64 {
		if r.Redis != nil {
			return series(r.Redis)
		}
		return nil
	}
}

// rpsRounds reads one series of an rps result.
func rpsRounds(res func(*rowResult) *rpsResult, series func(*rpsResult) []float64) func(*rowResult) []float64 {
	return func(r *rowResult) []float64 {
		if x := res(r); x != nil {
			return series(x)
		}
		return nil
	}
}

// value is the row's figure for m: the median over rounds. A scenario that
// failed in any round has none: its other rounds are in -json only.
func (m metric) value(r *rowResult) (float64, bool) {
	v := m.rounds(r)
	if len(v) == 0 || r.Errors[m.scenario] != "" {
		return 0, false
	}
	return median(v), true
}

func metricByKey(key string) metric {
	i := slices.IndexFunc(metrics, func(m metric) bool { return m.key == key })
	return metrics[i]
}

// cell says why a row has no value for m: "skip", "ERR" or "-".
func (r *rowResult) missing(m metric) string {
	switch {
	case r.Skipped != "":
		return "skip"
	case r.Errors[m.scenario] != "":
		return "ERR"
	case r.Skips[m.scenario] != "":
		return "skip"
	}
	return "-"
}

func (rep *report) row(name string) *rowResult {
	for _, r := range rep.Rows {
		if r.Name == name {
			return r
		}
	}
	return nil
}

const (
	nameW = 16
	colW  = 14
)

func (rep *report) writeTable(w io.Writer) {
	m := rep.Meta
	fmt.Fprintf(w, "relaybench  %s %s, %d CPUs (%s), kernel %s, %s, run took %s\n\n",
		m.Go, m.Platform, m.CPUs, m.CPU, m.Kernel, m.Start.Format(time.DateTime), time.Duration(m.ElapsedS*float64(time.Second)).Round(time.Second))

	for b := range blocks {
		rep.writeBlock(w, b)
	}
	for _, ref := range []string{rowBare, rowHAProxy} {
		for b := range blocks {
			rep.writeRatios(w, ref, b)
		}
	}

	count := map[string]int{}
	for _, t := range rep.Targets {
		if !t.Stretch {
			count[t.Status]++
		}
	}
	fmt.Fprintf(w, "\ntargets: %d PASS, %d FAIL, %d SKIP\n", count["PASS"], count["FAIL"], count["SKIP"])
	for _, t := range rep.Targets {
		if !t.Stretch {
			fmt.Fprintf(w, "  %-4s  %-44s %s\n", t.Status, t.Target, t.Detail)
		}
	}
	fmt.Fprintf(w, "\nstretch goals (reported, not targets)\n")
	for _, t := range rep.Targets {
		if t.Stretch {
			fmt.Fprintf(w, "  %-6s  %-42s %s\n", t.Status, t.Target, t.Detail)
		}
	}

	var problems []string
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			problems = append(problems, fmt.Sprintf("%s: skipped: %s", r.Name, r.Skipped))
		}
		for _, sc := range scenarioNames() {
			if e := r.Errors[sc]; e != "" {
				problems = append(problems, fmt.Sprintf("%s %s: ERROR: %s", r.Name, sc, e))
			}
		}
		for _, sc := range scenarioNames() {
			if why := r.Skips[sc]; why != "" {
				problems = append(problems, fmt.Sprintf("%s %s: skipped: %s", r.Name, sc, why))
			}
		}
		// One line per row and reason: "bare-pool bulk, ping, mem: not measured: ...".
		var reasons []string
		byReason := map[string][]string{}
		for _, sc := range scenarioNames() {
			if why := r.NotRun[sc]; why != "" && r.Name != rowDirect {
				if byReason[why] == nil {
					reasons = append(reasons, why)
				}
				byReason[why] = append(byReason[why], sc)
			}
		}
		for _, why := range reasons {
			problems = append(problems, fmt.Sprintf("%s %s: not measured: %s", r.Name, strings.Join(byReason[why], ", "), why))
		}
		for _, n := range r.Notes {
			problems = append(problems, fmt.Sprintf("%s: %s", r.Name, n))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\nskipped rows, errors, warnings\n")
		for _, p := range problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}

	fmt.Fprintf(w, "\nnotes\n")
	for i, n := range rep.Notes {
		fmt.Fprintf(w, "  [%d] %s\n", i+1, wrap(n, 100, "      "))
	}
}

// blockMetrics are the columns of block b whose scenario was selected.
func (rep *report) blockMetrics(b int) []metric {
	var ms []metric
	for _, mt := range metrics {
		if mt.block == b && slices.Contains(rep.cfg.scenarios, mt.scenario) {
			ms = append(ms, mt)
		}
	}
	return ms
}

// blockRows are the rows with something to show in columns ms: a figure,
// an error or a skip; not the rows for which none of them applies.
func (rep *report) blockRows(ms []metric) []*rowResult {
	var rows []*rowResult
	for _, r := range rep.Rows {
		for _, mt := range ms {
			if _, ok := mt.value(r); ok || r.missing(mt) != "-" {
				rows = append(rows, r)
				break
			}
		}
	}
	return rows
}

func (rep *report) writeBlock(w io.Writer, b int) {
	ms := rep.blockMetrics(b)
	if len(ms) == 0 {
		return
	}
	fmt.Fprintf(w, "%s\n%-*s", rep.blockTitle(b), nameW, "row")
	for _, mt := range ms {
		fmt.Fprintf(w, "%*s", colW, mt.title)
	}
	fmt.Fprintln(w)
	for _, r := range rep.blockRows(ms) {
		fmt.Fprintf(w, "%-*s", nameW, r.Name)
		for _, mt := range ms {
			if v, ok := mt.value(r); ok {
				fmt.Fprintf(w, "%*s", colW, fmt.Sprintf(mt.format, v))
			} else {
				fmt.Fprintf(w, "%*s", colW, r.missing(mt))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func (rep *report) writeRatios(w io.Writer, refName string, b int) {
	ms := rep.blockMetrics(b)
	if len(ms) == 0 {
		return
	}
	ref := rep.row(refName)
	fmt.Fprintf(w, "\nratio to %s, %s (row / %s; higher is better for MB/s, conn/s, req/s; lower for latency, cpu, mem)\n",
		refName, blocks[b], refName)
	if ref == nil || ref.Skipped != "" {
		why := "row not selected"
		if ref != nil {
			why = ref.Skipped
		}
		fmt.Fprintf(w, "  none: %s\n", why)
		return
	}
	fmt.Fprintf(w, "%-*s", nameW, "row")
	for _, mt := range ms {
		fmt.Fprintf(w, "%*s", colW, mt.key)
	}
	fmt.Fprintln(w)
	for _, r := range rep.blockRows(ms) {
		fmt.Fprintf(w, "%-*s", nameW, r.Name)
		for _, mt := range ms {
			fmt.Fprintf(w, "%*s", colW, ratioCell(r, ref, mt))
		}
		fmt.Fprintln(w)
	}
}

func ratioCell(r, ref *rowResult, mt metric) string {
	v, ok := mt.value(r)
	if !ok {
		return r.missing(mt)
	}
	rv, ok := mt.value(ref)
	if !ok || rv <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v/rv)
}

func (rep *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// evaluate fills in the targets and the notes.
func (rep *report) evaluate() {
	rep.Targets = nil
	for _, t := range targets {
		rep.Targets = append(rep.Targets, rep.check(t))
	}
	rep.Targets = append(rep.Targets, rep.checkAddFault())
	rep.Notes = rep.notes()
}

func (rep *report) notes() []string {
	cfg := rep.cfg
	pin := "harness and relay unpinned"
	if cfg.pingCPU >= 0 {
		pin = fmt.Sprintf("harness and relay pinned to CPU %d (GOMAXPROCS 1; unpinned, cross-CPU wake-ups on this "+
			"machine make a round trip flip between two modes far apart)", cfg.pingCPU)
	}
	n := []string{
		roundsNote(cfg),
		fmt.Sprintf("bulk: one connection, %d MiB client->upstream and %d MiB upstream->client at the same time; "+
			"MB/s = bytes of both directions / wall time (1 MB = 10^6 B); one timed run per round after an untimed "+
			"warm-up; byte count and CRC-32C checked at both ends.", cfg.bulkBytes>>20, cfg.bulkBytes>>20),
		fmt.Sprintf("ping: one connection, %d B request, %d B echo, sequential; per round %d untimed then %d timed "+
			"round trips, p50/p99 by nearest rank; %s.", cfg.pingSize, cfg.pingSize, cfg.pingWarmup, cfg.pingCount, pin),
		fmt.Sprintf("churn: %d worker(s) (1 = sequential): connect, one %d B echo, close (FIN, no SO_LINGER); "+
			"per round, stops at %d connections or %v, whichever is first%s; conn/s = connections / elapsed; "+
			"cpu µs/conn = the relay's CPU time over the round (user + system, every process of the relay, "+
			"from /proc/PID/stat in 10 ms ticks) / connections.",
			cfg.churnConcurrency, cfg.churnSize, cfg.churnCount, cfg.churnDuration, churnTiming(cfg)),
		fmt.Sprintf("mem: (VmRSS after - VmRSS before) / %d idle relayed connections, each after one 16 B echo; "+
			"readings %v after a warm-up connection and %v after the last connection opened. "+
			"For socat: sum of VmRSS of the parent and its forked children (one per connection), which counts "+
			"shared pages once per process.", cfg.memConns, cfg.memSettle, cfg.memSettle),
	}
	if slices.Contains(cfg.scenarios, scRPS) || slices.Contains(cfg.scenarios, scRPS1k) {
		n = append(n, fmt.Sprintf("rps, rps1k: %d connections opened first, then each does strictly sequential round trips "+
			"(write a %d B (rps) or %d B (rps1k) request, read its echo in full, check it); load generator and echo "+
			"upstream are %d epoll event loop(s) on locked OS threads in the harness, no allocation per round trip; "+
			"%s; req/s = round trips completed in the timed part, over all "+
			"connections / its length; p50/p99 (nearest rank, within 1%%) of those round trips' latency at the "+
			"client; cpu/req = the relay's CPU time over the timed part (as for churn) / round trips, in µs.",
			cfg.rpsConns, rpsSize, rps1kSize, cfg.rpsLoops, rpsTiming(cfg)))
	}
	if h := rep.harnessNote(); h != "" {
		n = append(n, h)
	}
	if y := rep.yardstickNote(); y != "" {
		n = append(n, y)
	}
	if slices.Contains(cfg.scenarios, scRedis) {
		n = append(n, fmt.Sprintf("redis: relaybench starts its own redis-server (127.0.0.1, a free port, --save \"\" "+
			"--appendonly no) for the run; per row and run, redis-benchmark -c %d -n %d -t get -q --csv runs through "+
			"the relay after an untimed run of -n %d; req/s, p50 and p99 are redis-benchmark's; relaybench checks "+
			"from the server's total_commands_processed that the requests reached it; cpu/req = the relay's CPU "+
			"time over the timed run / requests, in µs.", cfg.redisConns, cfg.redisRequests/cfg.passCount(), max(cfg.redisRequests/cfg.passCount()/10, cfg.redisConns)))
	}
	if r := rep.row(rowHAProxy); r != nil && r.Skipped == "" {
		splice := "no splice (haproxy's default)"
		if cfg.haproxySplice {
			splice = "option splice-auto"
		}
		maxconn := fmt.Sprintf("maxconn %d", haproxyMaxconn(cfg.haproxySplice))
		if haproxyMaxconn(cfg.haproxySplice) < 10000 {
			maxconn += " (not 10000: haproxy then wants more fds than the hard limit)"
		}
		n = append(n, "haproxy -db: mode tcp, "+maxconn+", timeouts connect 10s, client/server 1h, "+splice+
			", one frontend and one server; no connection reuse (haproxy has no TCP pooling).")
	}
	if r := rep.row(rowToxiproxy); r != nil && r.Skipped == "" {
		n = append(n, "toxiproxy: toxiproxy-server with one proxy and no toxic, made through its HTTP API before the run.")
	}
	if r := rep.row(rowSocat); r != nil && r.Skipped == "" {
		n = append(n, "socat: TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork TCP:UPSTREAM, default options (8 KiB buffer, one process per connection).")
	}
	if r := rep.row(rowBarePool); r != nil && r.Skipped == "" {
		n = append(n, fmt.Sprintf("bare-pool: the bare relay with a pool, the ceiling for faultline-pool: a LIFO list of up to %d idle "+
			"upstream connections (dialed when empty); one goes back when the client's side ended with EOF and a read deadline "+
			"in the past on it stopped the other copy; no check at borrow or release (no probe, no stranded or unread bytes, no age).", cfg.poolSize))
	}
	if r := rep.row(rowEpollPool); r != nil && r.Skipped == "" {
		n = append(n, fmt.Sprintf("epoll-pool: a pool relay without goroutines or Go's netpoller: one OS thread, one level-triggered epoll loop "+
			"over non-blocking sockets (haproxy's design), bare-pool's LIFO list of up to %d and its rule for release; "+
			"no goroutine per session, no Go netpoller, no deadline interrupt, no checks.", cfg.poolSize))
	}
	if r := rep.row(rowFaultlinePool); r != nil && r.Skipped == "" {
		n = append(n, fmt.Sprintf("faultline-pool: --pool-size %d.", cfg.poolSize))
	}
	if cfg.flProcs > 0 {
		n = append(n, fmt.Sprintf("faultline rows: GOMAXPROCS=%d (-faultline-gomaxprocs), where the other Go rows run with Go's default.", cfg.flProcs))
	} else if cfg.faultline != "" {
		n = append(n, "faultline rows: the binary's own GOMAXPROCS (faultline run --procs, default 1), where the other Go rows run with Go's default (one per CPU).")
	}
	return n
}

// targetSpec is one of faultline's goals: row's metric compared with factor
// times ref's, or with factor itself when ref is empty. A stretch goal is
// reported (met, missed) but is not a target: it never makes a FAIL.
type targetSpec struct {
	row     string
	metric  string
	ref     string
	factor  float64
	atLeast bool
	stretch bool
}

var targets = func() []targetSpec {
	t := []targetSpec{
		{row: rowFaultlineDial, metric: "bulk", ref: rowBare, factor: 0.9, atLeast: true},
		{row: rowFaultlineDial, metric: "bulk", ref: rowHAProxy, factor: 2, atLeast: true},
		{row: rowFaultlineDial, metric: "p50", ref: rowBare, factor: 1.1},
		{row: rowFaultlineDial, metric: "churn", ref: rowBare, factor: 0.9, atLeast: true},
		{row: rowFaultlinePool, metric: "churn", ref: rowBarePool, factor: 0.9, atLeast: true},
		{row: rowFaultlinePool, metric: "churn", ref: rowHAProxy, factor: 1.1, atLeast: true},
		{row: rowFaultlineDial, metric: "mem", factor: 12},
		{row: rowFaultlineDial, metric: "mem", factor: 8, stretch: true},
		{row: rowFaultlineFault, metric: "bulk", ref: rowToxiproxyFault, factor: 1.5, atLeast: true},
	}
	// Small messages (issue 18): both faultline rows, each request scenario.
	for _, m := range requestMetrics {
		for _, row := range []string{rowFaultlineDial, rowFaultlinePool} {
			t = append(t,
				targetSpec{row: row, metric: m, ref: rowBare, factor: reqVsBare, atLeast: true},
				targetSpec{row: row, metric: m, ref: rowToxiproxy, factor: reqVsToxiproxy, atLeast: true},
				targetSpec{row: row, metric: m, ref: rowHAProxy, factor: reqVsHAProxy, atLeast: true, stretch: true})
		}
	}
	return t
}()

// The small-message targets (issue 18), in requests per second: faultline
// at least reqVsBare times the bare relay's and reqVsToxiproxy times
// toxiproxy's; reqVsHAProxy times haproxy's is the stretch.
const (
	reqVsBare      = 1.1
	reqVsToxiproxy = 1.2
	reqVsHAProxy   = 0.9
)

// requestMetrics are the request scenarios' req/s metrics.
var requestMetrics = []string{"rps", "rps1k", "redis"}

// yardstickNote puts the toxiproxy target in the other references' terms:
// what reqVsToxiproxy times toxiproxy's req/s was as a multiple of the
// bare relay's and haproxy's, to read beside reqVsBare and the stretch
// reqVsHAProxy. The targets were set when toxiproxy made about 0.83x the
// bare relay's requests, which made the toxiproxy target the looser one.
func (rep *report) yardstickNote() string {
	var parts []string
	for _, m := range requestMetrics {
		mt := metricByKey(m)
		tp, why := rep.value(rowToxiproxy, mt)
		bare, whyBare := rep.value(rowBare, mt)
		if why != "" || whyBare != "" || tp <= 0 || bare <= 0 {
			continue
		}
		part := fmt.Sprintf("%s %.2fx bare", m, reqVsToxiproxy*tp/bare)
		if ha, why := rep.value(rowHAProxy, mt); why == "" && ha > 0 {
			part += fmt.Sprintf(" and %.2fx haproxy", reqVsToxiproxy*tp/ha)
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("yardsticks (req/s): %gx toxiproxy was %s; the other targets are %gx bare and, as a stretch, %gx haproxy.",
		reqVsToxiproxy, strings.Join(parts, "; "), reqVsBare, reqVsHAProxy)
}

type targetResult struct {
	Target  string `json:"target"`
	Status  string `json:"status"` // PASS, FAIL or SKIP; for a stretch goal met, missed or SKIP
	Detail  string `json:"detail"`
	Stretch bool   `json:"stretch,omitempty"` // reported, not a target
}

func (t targetSpec) String() string {
	op := "<="
	if t.atLeast {
		op = ">="
	}
	mt := metricByKey(t.metric)
	if t.ref == "" {
		return fmt.Sprintf("%s %s %s %g %s", t.row, t.metric, op, t.factor, mt.unit)
	}
	return fmt.Sprintf("%s %s %s %gx %s", t.row, t.metric, op, t.factor, t.ref)
}

func (rep *report) check(t targetSpec) targetResult {
	res := targetResult{Target: t.String(), Status: "SKIP", Stretch: t.stretch}
	mt := metricByKey(t.metric)
	v, why := rep.value(t.row, mt)
	if why != "" {
		res.Detail = why
		return res
	}
	bound, detail := t.factor, ""
	if t.ref != "" {
		rv, why := rep.value(t.ref, mt)
		if why != "" {
			res.Detail = why
			return res
		}
		bound = t.factor * rv
		detail = fmt.Sprintf(" (%s: "+mt.format+", ratio %.2fx%s)", t.ref, rv, v/rv, rep.roundRatios(t.row, t.ref, mt))
	} else if rs := mt.rounds(rep.row(t.row)); len(rs) > 1 {
		detail = fmt.Sprintf(" (rounds "+mt.format+"-"+mt.format+")", slices.Min(rs), slices.Max(rs))
	}
	ok := v >= bound
	if !t.atLeast {
		ok = v <= bound
	}
	res.Status = map[bool]string{true: "PASS", false: "FAIL"}[ok]
	if t.stretch {
		res.Status = map[bool]string{true: "met", false: "missed"}[ok]
	}
	op := map[bool]string{true: ">=", false: "<="}[t.atLeast]
	if !ok { // the figure as it stands to the bound
		op = map[bool]string{true: "<", false: ">"}[t.atLeast]
	}
	res.Detail = fmt.Sprintf(mt.format+" %s "+mt.format+" %s%s", v, op, bound, mt.unit, detail)
	return res
}

// value is row's figure for mt, or why there is none.
func (rep *report) value(row string, mt metric) (float64, string) {
	r := rep.row(row)
	switch {
	case r == nil:
		return 0, row + " not selected (-rows)"
	case r.Skipped != "":
		return 0, row + " skipped: " + r.Skipped
	case r.Errors[mt.scenario] != "":
		return 0, row + " " + mt.scenario + " failed (see errors)"
	case r.Skips[mt.scenario] != "":
		return 0, mt.scenario + " skipped: " + r.Skips[mt.scenario]
	case r.NotRun[mt.scenario] != "":
		return 0, row + " " + mt.scenario + " not measured: " + r.NotRun[mt.scenario]
	}
	v, ok := mt.value(r)
	if !ok {
		return 0, row + " " + mt.scenario + " not run (-scenarios)"
	}
	return v, ""
}

// wrap breaks s into lines of at most width bytes at spaces; lines after the
// first start with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		if i > 0 {
			if line+1+len(word) > width {
				b.WriteString("\n" + indent)
				line = 0
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}

// churnTiming says how churn's rows share the round: in turns, or one
// after the other.
func churnTiming(cfg *config) string {
	if cfg.churnSlice <= 0 {
		return ", rows one after the other"
	}
	return fmt.Sprintf(", every row's relay up at once in front of the echo upstream and the rows taking "+
		"turns of %v until each had its share (elapsed counts its turns only; its CPU is read over all turns, "+
		"in which it idles through the others')", cfg.churnSlice)
}

// roundsNote is the first note: how rounds, passes and turns make the
// runs each figure is the median of.
func roundsNote(cfg *config) string {
	p := cfg.passCount()
	req := fmt.Sprintf("the request scenarios (rps, rps1k, redis) %d times (passes), each pass 1/%d as long", p, p)
	if cfg.rpsSlice > 0 {
		req = fmt.Sprintf("redis %d times (passes), each pass 1/%d as long; rps and rps1k run once per round "+
			"with every row's relay up at once, taking turns of %v (see rps, rps1k)", p, p, cfg.rpsSlice)
	}
	return fmt.Sprintf("Rounds: %d. Each round runs every scenario once for every row, rows interleaved, in a fresh "+
		"relay process each time, and %s; the table shows the median over runs (per-run figures are in -json), "+
		"and \"by run\" the range of a row's ratio to the reference over runs made side by side. The load "+
		"generator and the upstream servers (echo; bulk source/sink) run inside the harness process, so harness "+
		"and relay share the machine's CPUs in every row.", cfg.rounds, req)
}

// roundRatios describes the spread of row/ref over runs, pairing the
// samples of the same round (or pass), as a hint of how much noise the
// ratio has.
func (rep *report) roundRatios(row, ref string, mt metric) string {
	a, b := mt.rounds(rep.row(row)), mt.rounds(rep.row(ref))
	if len(a) < 2 || len(a) != len(b) {
		return ""
	}
	var q []float64
	for i := range a {
		if b[i] > 0 {
			q = append(q, a[i]/b[i])
		}
	}
	if len(q) < 2 {
		return ""
	}
	return fmt.Sprintf("; by run %.2f-%.2fx", slices.Min(q), slices.Max(q))
}

// harnessNote says what the rps harness reached alone (the direct row) and
// what CPU it used per request in the relay rows: the share of the machine
// the relay competes with.
func (rep *report) harnessNote() string {
	var direct string
	var lo, hi float64
	var runs []float64 // every run's, of every relay row
	for _, r := range rep.Rows {
		x := r.RPS
		if x == nil || len(x.RoundsHarnessCPUus) == 0 || r.Errors[scRPS] != "" {
			continue
		}
		if r.Name == rowDirect {
			direct = fmt.Sprintf("the direct row made %.0f req/s with %.1f µs of harness CPU per request", x.ReqPerS, x.HarnessCPUus)
			continue
		}
		if lo == 0 || x.HarnessCPUus < lo {
			lo = x.HarnessCPUus
		}
		hi = max(hi, x.HarnessCPUus)
		runs = append(runs, x.RoundsHarnessCPUus...)
	}
	if direct == "" && hi == 0 {
		return ""
	}
	s := "harness (rps, medians): "
	if direct != "" {
		s += direct
		if hi > 0 {
			s += "; "
		}
	}
	if hi > 0 {
		s += fmt.Sprintf("through the relays it used %.1f-%.1f µs of CPU per request, which the relay's CPU adds to on the same CPUs", lo, hi)
	}
	if len(runs) > 1 && slices.Min(runs) > 0 {
		// The harness does the same work per request in every run: how
		// far its cost moves is how far the machine's speed did.
		s += fmt.Sprintf("; run by run it used %.1f-%.1f µs (%.2fx): the machine's own drift, which the \"by run\" ranges carry",
			slices.Min(runs), slices.Max(runs), slices.Max(runs)/slices.Min(runs))
	}
	return s + "."
}

// rpsTiming says how an rps run is timed.
func rpsTiming(cfg *config) string {
	if cfg.rpsSlice > 0 {
		return fmt.Sprintf("per round every row's relay is started, each with its own echo upstream and its own "+
			"event loop, and the rows take turns of %v (one row's connections doing round trips, the others' idle) "+
			"until each had %v untimed and then %v timed, so rows are compared a fraction of a second apart and "+
			"the machine's drift falls on all alike; round trips still out when a turn ends are not counted "+
			"(at most one per connection per turn); the relay's CPU is read over the whole timed part, in which "+
			"it idles through the others' turns; the harness's CPU cannot be told apart per row", cfg.rpsSlice,
			cfg.rpsWarmup, cfg.rpsDuration)
	}
	return fmt.Sprintf("per run %v untimed, then %v timed", cfg.rpsWarmup, cfg.passDuration())
}
