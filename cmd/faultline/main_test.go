package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/faultline-proxy/faultline/internal/echo"
)

// waitTimeout bounds every wait in these tests. It is generous: a test that
// reaches it has failed, not run slowly.
const waitTimeout = 10 * time.Second

// binary is the faultline binary that TestMain builds.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

// testMain builds the binary, runs the tests, removes the binary and then
// checks for leaked goroutines (what goleak.VerifyTestMain does, but with
// the build directory cleaned up either way).
func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "faultline-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "faultline")
	out, err := exec.Command(goTool(), "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			return 1
		}
	}
	return code
}

// goTool returns the go command: the one on PATH, else the one of the
// toolchain that built this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// listeningRE matches the line run and demo print for each proxy once it
// listens: its name, address and upstream.
var listeningRE = regexp.MustCompile(`^proxy (\S+) listening on (127\.0\.0\.1:[1-9][0-9]*) -> (\S+)`)

// controlRE matches the line run and demo print once the control server
// listens.
var controlRE = regexp.MustCompile(`^control listening on (http://127\.0\.0\.1:[1-9][0-9]*)$`)

// process is a running faultline binary.
type process struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader // a pipe that supports read deadlines
	out    *os.File
	stderr bytes.Buffer // read only after exited is closed
	exited chan struct{}
	err    error // from Wait, set before exited is closed
}

// start runs the binary with args. It is killed, if still running, when the
// test ends.
func start(t *testing.T, args ...string) *process {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with env (KEY=VALUE) added to the environment.
func startEnv(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: exec.Command(binary, args...), stdout: bufio.NewReader(r), out: r, exited: make(chan struct{})}
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout = w
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		t.Fatalf("start %s: %v", binary, err)
	}
	_ = w.Close() // the child has its own copy: EOF on r once it exits
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		_ = r.Close()
	})
	return p
}

// line reads one line of the process's standard output.
func (p *process) line(t *testing.T) string {
	t.Helper()
	_ = p.out.SetReadDeadline(time.Now().Add(waitTimeout))
	s, err := p.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("read stdout: got %q, %v; want a line", s, err)
	}
	return strings.TrimSuffix(s, "\n")
}

// listening reads stdout up to the next proxy's listening line and returns
// the proxy's name and address and the upstream's address.
func (p *process) listening(t *testing.T) (name, addr, upstream string) {
	t.Helper()
	for {
		l := p.line(t)
		if m := listeningRE.FindStringSubmatch(l); m != nil {
			return m[1], m[2], m[3]
		}
	}
}

// control reads stdout up to the control line and returns the control URL.
func (p *process) control(t *testing.T) string {
	t.Helper()
	for {
		l := p.line(t)
		if m := controlRE.FindStringSubmatch(l); m != nil {
			return m[1]
		}
		if strings.HasPrefix(l, "control") {
			t.Fatalf("control line: got %q, want %q", l, "control listening on http://127.0.0.1:PORT")
		}
	}
}

// wait waits for the process to exit and returns its exit code, failing the
// test if it takes longer than waitTimeout.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("faultline did not exit within %s", waitTimeout)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		t.Fatalf("wait: %v", p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

// rest returns what the process wrote to stdout after what was read, once
// it exited.
func (p *process) rest(t *testing.T) string {
	t.Helper()
	_ = p.out.SetReadDeadline(time.Now().Add(waitTimeout))
	b, err := io.ReadAll(p.stdout)
	if err != nil {
		t.Fatalf("read stdout: %v", err)
	}
	return string(b)
}

// stop sends SIGTERM and checks that the process exits with status 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if code := p.wait(t); code != exitOK {
		t.Errorf("exit code after SIGTERM: got %d, want %d; stderr:\n%s", code, exitOK, &p.stderr)
	}
}

// startEcho starts an echo server for the test.
func startEcho(t *testing.T) string {
	t.Helper()
	s, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr().String()
}

// roundTrip connects to addr, sends msg and checks that msg comes back.
// It reads the echo before it closes: in pool mode the client's FIN ends
// the session.
func roundTrip(t *testing.T, addr, msg string) {
	t.Helper()
	c := dialWithin(t, addr)
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo through %s: got %q, %v; want %q", addr, got, err, msg)
	}
}

func TestUsageErrors(t *testing.T) {
	const upstream = "127.0.0.1:1" // never dialed: the flags are rejected first
	tests := []struct {
		name       string
		args       []string
		wantStderr string // the problem, as named on stderr
	}{
		{
			name:       "unknown flag",
			args:       []string{"run", "--listen", "127.0.0.1:0", "--upstream", upstream, "--bogus"},
			wantStderr: "flag provided but not defined: -bogus",
		},
		{
			name:       "missing upstream",
			args:       []string{"run", "--listen", "127.0.0.1:0"},
			wantStderr: "--upstream is required",
		},
		{
			name:       "bad mode",
			args:       []string{"run", "--listen", "127.0.0.1:0", "--upstream", upstream, "--mode", "bogus"},
			wantStderr: `unknown mode: "bogus"`,
		},
		{
			name:       "duration without unit",
			args:       []string{"run", "--listen", "127.0.0.1:0", "--upstream", upstream, "--pool-idle-timeout", "5"},
			wantStderr: `--pool-idle-timeout: "5" is not a duration: add a unit, e.g. 5ms or 5s`,
		},
		{
			name:       "fault duration without unit",
			args:       []string{"fault", "add", "main", "--kind", "latency", "--delay", "5"},
			wantStderr: `--delay: "5" is not a duration: add a unit, e.g. 5ms or 5s`,
		},
		{
			name:       "fault duration not a number",
			args:       []string{"fault", "add", "main", "--kind", "latency", "--delay", "soon"},
			wantStderr: `--delay: "soon" is not a duration, e.g. 5ms or 5s`,
		},
		{
			name:       "unknown fault kind",
			args:       []string{"fault", "add", "main", "--kind", "latncy"},
			wantStderr: `unknown fault kind "latncy": did you mean latency? (kinds: latency, stall, blackhole, reset, half-close, bandwidth, slice, limit, slow-close, corrupt, drop-on-accept, connect-delay, refuse, idle-close, stale)`,
		},
		{
			name:       "toxiproxy's timeout",
			args:       []string{"fault", "add", "main", "--kind", "timeout"},
			wantStderr: `unknown fault kind "timeout": did you mean stall? (toxiproxy's timeout)`,
		},
		{
			name:       "toxiproxy's reset_peer",
			args:       []string{"fault", "add", "main", "--kind", "reset_peer"},
			wantStderr: `did you mean reset? (toxiproxy's reset_peer)`,
		},
		{
			name:       "toxiproxy's slicer",
			args:       []string{"fault", "add", "main", "--kind", "slicer"},
			wantStderr: `did you mean slice? (toxiproxy's slicer)`,
		},
		{
			name:       "toxiproxy's limit_data",
			args:       []string{"fault", "add", "main", "--kind", "limit_data"},
			wantStderr: `did you mean limit? (toxiproxy's limit_data)`,
		},
		{
			name:       "toxiproxy's slow_close",
			args:       []string{"fault", "add", "main", "--kind", "slow_close"},
			wantStderr: `did you mean slow-close?`,
		},
		{
			name:       "unknown fault kind in JSON",
			args:       []string{"fault", "add", "main", `{"kind":"timeout"}`},
			wantStderr: `unknown fault kind "timeout": did you mean stall?`,
		},
		{
			name:       "unknown fault kind, nothing near",
			args:       []string{"fault", "add", "main", "--kind", "xyzzyplugh"},
			wantStderr: `unknown fault kind "xyzzyplugh" (kinds: latency, stall,`,
		},
		{
			name:       "unknown command",
			args:       []string{"serve"},
			wantStderr: `unknown command "serve"`,
		},
		{
			name:       "no proxy",
			args:       []string{"run"},
			wantStderr: "--listen and --upstream are required, or --config FILE",
		},
		{
			name:       "proxy without subcommand",
			args:       []string{"proxy"},
			wantStderr: "proxy: want a subcommand (add, get, ls, rm, update)",
		},
		{
			name:       "proxy add without upstream",
			args:       []string{"proxy", "add", "x"},
			wantStderr: "proxy add: --upstream is required",
		},
		{
			name:       "fault add without kind",
			args:       []string{"fault", "add", "main"},
			wantStderr: "fault add: --kind is required (or the fault as JSON)",
		},
		{
			name:       "fault add with JSON and flags",
			args:       []string{"fault", "add", "main", `{"kind":"stall"}`, "--delay", "1s"},
			wantStderr: "give the fault as JSON or as flags, not both",
		},
		{
			name:       "fault add with bad JSON",
			args:       []string{"fault", "add", "main", `{"kind":"latency","dealy":"1s"}`},
			wantStderr: `unknown field "dealy"`,
		},
		{
			name:       "fault rm without names",
			args:       []string{"fault", "rm", "main"},
			wantStderr: "fault rm: give fault NAMEs or --all",
		},
		{
			name:       "conns without proxy",
			args:       []string{"conns"},
			wantStderr: "conns: want one PROXY",
		},
		{
			name:       "events with unknown kind",
			args:       []string{"events", "--kind", "accepted,bogus"},
			wantStderr: `event kind "bogus"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.args...)
			if code := p.wait(t); code != exitUsage {
				t.Errorf("exit code: got %d, want %d", code, exitUsage)
			}
			if stderr := p.stderr.String(); !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if out := p.rest(t); out != "" {
				t.Errorf("stdout: got %q, want nothing", out)
			}
			// One line for the problem, one for the hint: not the usage.
			if lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n"); len(lines) != 2 || !hintRE.MatchString(lines[1]) {
				t.Errorf("stderr: got %q, want the problem and a hint such as \"see 'faultline fault add -h'\"", p.stderr.String())
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	p := start(t, "run", "--config", "testdata/nope.yaml")
	if code := p.wait(t); code != exitUsage {
		t.Errorf("exit code: got %d, want %d", code, exitUsage)
	}
	if stderr, want := p.stderr.String(), "testdata/nope.yaml: no such file or directory"; !strings.Contains(stderr, want) {
		t.Errorf("stderr: got %q, want it to contain %q", stderr, want)
	}
}

// hintRE matches the hint line of a usage error.
var hintRE = regexp.MustCompile(`^see 'faultline( [a-z-]+)* -h'$`)

// TestHelp checks that -h of every command and subcommand prints its
// synopsis and flags on stdout and exits 0.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string // on stdout
	}{
		{[]string{"-h"}, "faultline run"},
		{[]string{"run", "-h"}, "-upstream"},
		{[]string{"demo", "-h"}, "faultline demo"},
		{[]string{"toxiproxy-server", "-h"}, "-port"},
		{[]string{"proxy", "-h"}, "faultline proxy add NAME"},
		{[]string{"proxy", "ls", "-h"}, "faultline proxy ls"},
		{[]string{"proxy", "add", "-h"}, "-upstream"},
		{[]string{"proxy", "update", "-h"}, "-enabled"},
		{[]string{"proxy", "rm", "--help"}, "faultline proxy rm NAME"},
		{[]string{"fault", "-h"}, "faultline fault add PROXY"},
		{[]string{"fault", "ls", "-h"}, "faultline fault ls PROXY"},
		{[]string{"fault", "add", "-h"}, "-delay"},
		{[]string{"fault", "rm", "-h"}, "-all"},
		{[]string{"conns", "-h"}, "faultline conns PROXY"},
		{[]string{"conns", "close", "-h"}, "-rst"},
		{[]string{"pool", "-h"}, "faultline pool drain"},
		{[]string{"pool", "drain", "-h"}, "faultline pool drain PROXY"},
		{[]string{"events", "-h"}, "-kind"},
		{[]string{"report", "-h"}, "-title"},
		{[]string{"reset", "-h"}, "faultline reset"},
		{[]string{"proxy", "get", "-h"}, "faultline proxy get NAME"},
		{[]string{"pool", "stats", "-h"}, "faultline pool stats PROXY"},
		{[]string{"fault", "get", "-h"}, "faultline fault get PROXY NAME"},
		{[]string{"fault", "update", "-h"}, "-delay"},
		{[]string{"apply", "-h"}, "faultline apply FILE"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, nil, tt.args...)
			if out := r.ok(t, strings.Join(tt.args, " ")); !strings.Contains(out, tt.want) {
				t.Errorf("stdout: got %q, want it to contain %q", out, tt.want)
			}
			if r.stderr != "" {
				t.Errorf("stderr: got %q, want nothing", r.stderr)
			}
		})
	}
}

// dialWithin connects to addr, with waitTimeout as the deadline of the
// dial and of everything on the connection.
func dialWithin(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	return c
}
