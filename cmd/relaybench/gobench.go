package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The AddFault target is measured by a Go benchmark of package proxy,
// BenchmarkAddFault1000 (a proxy with 1000 live connections; AddFault
// returns once the fault is in force on all of them), not by relaybench:
// -gobench hands relaybench that benchmark's output, and the targets block
// checks it with the rest.

const (
	addFaultBench  = "BenchmarkAddFault1000"
	addFaultMetric = "p99-µs/add"
	addFaultMaxUs  = 5000
)

// goBenchLine is one result line of go test -bench output.
type goBenchLine struct {
	Name    string             `json:"name"` // without the -GOMAXPROCS suffix
	N       int64              `json:"n"`
	Metrics map[string]float64 `json:"metrics"` // by unit: "ns/op", "p99-µs/add", ...
}

// parseGoBench reads the result lines of go test -bench output and skips
// everything else.
//
//	BenchmarkAddFault1000/latency-2   300   43734240 ns/op   440.0 p50-µs/add   768.0 p99-µs/add
func parseGoBench(r io.Reader) ([]goBenchLine, error) {
	var out []goBenchLine
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue // a log line that starts with a benchmark's name
		}
		l := goBenchLine{Name: f[0], N: n, Metrics: map[string]float64{}}
		if i := strings.LastIndexByte(l.Name, '-'); i > 0 {
			if _, err := strconv.Atoi(l.Name[i+1:]); err == nil {
				l.Name = l.Name[:i]
			}
		}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			l.Metrics[f[i+1]] = v
		}
		if ok {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// checkAddFault checks that AddFault's p99 is under 5 ms in every variant
// of BenchmarkAddFault1000 found in -gobench.
func (rep *report) checkAddFault() targetResult {
	res := targetResult{Target: fmt.Sprintf("AddFault p99 <= %d µs, 1000 live conns", addFaultMaxUs), Status: "SKIP"}
	if rep.cfg.goBench == "" {
		res.Detail = "-gobench FILE not given (make bench gives it the output of " + addFaultBench + ")"
		return res
	}
	var worst goBenchLine
	var parts []string
	for _, l := range rep.GoBench {
		v, ok := l.Metrics[addFaultMetric]
		if !ok || !strings.HasPrefix(l.Name, addFaultBench+"/") {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimPrefix(l.Name, addFaultBench+"/"), v))
		if worst.Name == "" || v > worst.Metrics[addFaultMetric] {
			worst = l
		}
	}
	if worst.Name == "" {
		res.Detail = fmt.Sprintf("no %s line with %s in %s", addFaultBench, addFaultMetric, rep.cfg.goBench)
		return res
	}
	v := worst.Metrics[addFaultMetric]
	res.Status = map[bool]string{true: "PASS", false: "FAIL"}[v <= addFaultMaxUs]
	res.Detail = fmt.Sprintf("%.0f <= %d µs (worst of %s µs; %d adds each; go test -bench, -gobench %s)",
		v, addFaultMaxUs, strings.Join(parts, ", "), worst.N, rep.cfg.goBench)
	if res.Status == "FAIL" { // the figure as it stands to the bound
		res.Detail = strings.Replace(res.Detail, " <= ", " > ", 1)
	}
	return res
}
