package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrProcess is wrapped by errors about the faultline process.
var ErrProcess = errors.New("faultline process")

// proc is the faultline process under test.
type proc struct {
	cmd     *exec.Cmd
	control string // base URL of its control API
	exited  chan struct{}
	waitErr error // set before exited is closed

	mu     sync.Mutex // guards stderr
	stderr bytes.Buffer
}

var controlLine = regexp.MustCompile(`control listening on (http://\S+)`)

// buildFaultline builds ./cmd/faultline into dir and returns its path.
func buildFaultline(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "faultline")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/faultline-proxy/faultline/cmd/faultline")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build faultline: %w: %s", err, out)
	}
	return bin, nil
}

// startFaultline runs "faultline run" with no proxy and its control API on
// a free loopback port, and waits until it says where that is.
func startFaultline(bin, dir string) (*proc, error) {
	cfg := filepath.Join(dir, "soak.yaml")
	if err := os.WriteFile(cfg, []byte("proxies: []\n"), 0o600); err != nil {
		return nil, err
	}
	p := &proc{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "--config", cfg, "--control", "127.0.0.1:0")
	p.cmd.Env = append(os.Environ(), "FAULTLINE_TOKEN=")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	p.cmd.WaitDelay = 2 * time.Second
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProcess, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := controlLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.control = <-found:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%w: exited before listening: %v: %s", ErrProcess, p.waitErr, p.stderrText())
	case <-time.After(15 * time.Second):
		p.kill()
		return nil, fmt.Errorf("%w: no control address within 15s: %s", ErrProcess, p.stderrText())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(b []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(b)
}

func (p *proc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
		return fmt.Errorf("%w: did not exit within 10s of SIGTERM", ErrProcess)
	}
	if p.waitErr != nil {
		return fmt.Errorf("%w: on SIGTERM: %w", ErrProcess, p.waitErr)
	}
	return nil
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// procStats is what the harness reads of the process.
type procStats struct {
	fds        int
	threads    int
	rssKiB     int64
	goroutines int // -1: /metrics has no go_goroutines
}

func (s procStats) String() string {
	g := "n/a (no go_goroutines in /metrics)"
	if s.goroutines >= 0 {
		g = strconv.Itoa(s.goroutines)
	}
	return fmt.Sprintf("goroutines %s, fds %d, threads %d, RSS %d KiB", g, s.fds, s.threads, s.rssKiB)
}

// readStats reads the process's fds, threads and RSS from /proc and its
// goroutines from /metrics when the server reports them.
func (p *proc) readStats(ctx context.Context, hc *http.Client) (procStats, error) {
	st := procStats{goroutines: -1}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid()))
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrProcess, err)
	}
	st.fds = len(ents)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrProcess, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			st.threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			st.rssKiB, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.control+"/metrics", nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	st.goroutines, err = goroutines(resp.Body)
	return st, err
}

// goroutines reads go_goroutines from a Prometheus text exposition; -1 if
// it is not there.
func goroutines(r io.Reader) (int, error) {
	n := -1
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				n = int(f)
			}
		}
	}
	return n, sc.Err()
}
