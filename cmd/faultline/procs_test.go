package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestProcs checks how many Go processors the binary runs its proxies on:
// one by default, $GOMAXPROCS when set and --procs is not, --procs when
// given, and a usage error for a count out of range. It reads the figure
// the process reports itself (go_sched_gomaxprocs_threads on /metrics).
func TestProcs(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want int
	}{
		{name: "default", want: defaultProcs},
		{name: "environment", env: []string{"GOMAXPROCS=3"}, want: 3},
		{name: "flag over environment", env: []string{"GOMAXPROCS=3"}, args: []string{"--procs", "2"}, want: 2},
		{name: "flag", args: []string{"--procs=4"}, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--control", "127.0.0.1:0"}, tt.args...)
			p := startEnv(t, tt.env, args...)
			url := p.control(t)
			if got := gomaxprocs(t, url); got != tt.want {
				t.Errorf("go_sched_gomaxprocs_threads: got %d, want %d", got, tt.want)
			}
			p.stop(t)
		})
	}
	for _, cmd := range [][]string{{"run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1"}, {"demo", "--listen", "127.0.0.1:0"}} {
		p := start(t, append(cmd, "--control", "127.0.0.1:0", "--procs", "-1")...)
		if code := p.wait(t); code != exitUsage {
			t.Errorf("%s --procs -1: exit code %d, want %d", cmd[0], code, exitUsage)
		}
		if !strings.Contains(p.stderr.String(), "--procs -1: want 0") {
			t.Errorf("%s --procs -1: stderr %q does not say what --procs wants", cmd[0], p.stderr.String())
		}
	}
}

// gomaxprocs reads go_sched_gomaxprocs_threads from the control server's
// /metrics.
func gomaxprocs(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_sched_gomaxprocs_threads "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("go_sched_gomaxprocs_threads %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no go_sched_gomaxprocs_threads on /metrics")
	return 0
}
