package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// dumpGoroutines ends the process with SIGQUIT, which makes the Go
// runtime print every goroutine's stack, and returns the goroutines
// counted by their first frame outside the runtime, most first.
func (p *proc) dumpGoroutines() string {
	before := len(p.stderrText())
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
	}
	return summarizeDump(p.stderrText()[before:])
}

// summarizeDump counts the goroutines of a Go stack dump by their first
// frame in faultline's own code (else their first outside package
// runtime): where they wait or run.
func summarizeDump(dump string) string {
	byFrame := counts{}
	for _, g := range strings.Split(dump, "\n\ngoroutine ")[1:] {
		frame := ""
		for line := range strings.Lines(g) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "/") || strings.HasSuffix(line, ":") || strings.HasPrefix(line, "created by") {
				continue
			}
			f := line
			if i := strings.LastIndexByte(line, '('); i > 0 {
				f = line[:i] // the arguments
			}
			if strings.HasPrefix(f, "github.com/faultline-proxy/") || strings.HasPrefix(f, "main.") {
				frame = f
				break
			}
			if frame == "" && !strings.HasPrefix(f, "runtime.") {
				frame = f
			}
		}
		byFrame[cmp.Or(frame, "runtime")]++
	}
	type fc struct {
		frame string
		n     int64
	}
	var all []fc
	for f, n := range byFrame {
		all = append(all, fc{f, n})
	}
	slices.SortFunc(all, func(a, b fc) int { return cmp.Compare(b.n, a.n) })
	var parts []string
	for i, x := range all {
		if i == 10 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", x.frame, x.n))
	}
	return strings.Join(parts, ", ")
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// procStats is what the harness reads of the process.
type procStats struct {
	fds        int // all of them
	pipes      int // of fds: Go's splice pipes, which its runtime caches until a GC or two
	threads    int
	rssKiB     int64
	goroutines int // -1: /metrics has no go_goroutines
}

func (s procStats) String() string {
	g := "n/a (no go_goroutines in /metrics)"
	if s.goroutines >= 0 {
		g = strconv.Itoa(s.goroutines)
	}
	return fmt.Sprintf("goroutines %s, fds %d (%d of them pipes), threads %d, RSS %d KiB", g, s.fds, s.pipes, s.threads, s.rssKiB)
}

// readStats reads the process's fds, threads and RSS from /proc and its
// goroutines from /metrics when the server reports them.
func (p *proc) readStats(ctx context.Context, hc *http.Client) (procStats, error) {
	st := procStats{goroutines: -1}
	dir := fmt.Sprintf("/proc/%d/fd", p.pid())
	ents, err := os.ReadDir(dir)
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrProcess, err)
	}
	st.fds = len(ents)
	for _, e := range ents {
		if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(t, "pipe:") {
			st.pipes++
		}
	}
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

// tcpStates names the states of /proc/net/tcp.
var tcpStates = map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
	"05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}

// fdReport describes the process's fds, to say what a growth is made of:
// counts by kind, and its TCP sockets by state and ports.
func fdReport(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	kinds := counts{}
	inodes := map[string]bool{}
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(t, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
			t = "socket"
		} else if i := strings.IndexByte(t, ':'); i > 0 {
			t = t[:i]
		}
		kinds[t]++
	}
	socks := counts{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			fs := strings.Fields(line)
			if len(fs) < 10 || !inodes[fs[9]] {
				continue
			}
			socks[fmt.Sprintf("%s %s->%s", tcpStates[fs[3]], port(fs[1]), port(fs[2]))]++
		}
	}
	return fmt.Sprintf("fds by kind: %s; its TCP sockets by state, local->remote port: %s", kinds, socks)
}

// port returns the decimal port of a /proc/net/tcp address ("0100007F:1F90").
func port(addr string) string {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return addr
	}
	n, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return p
	}
	return strconv.FormatUint(n, 10)
}
