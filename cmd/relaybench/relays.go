package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Row names, in table order.
const (
	rowDirect        = "direct"
	rowBare          = "bare"
	rowBarePool      = "bare-pool"  // the bare relay with a pool: the ceiling for faultline-pool's churn
	rowEpollPool     = "epoll-pool" // an event-loop pool relay: churn without goroutines or Go's netpoller
	rowFaultlineDial = "faultline-dial"
	rowFaultlinePool = "faultline-pool"
	rowHAProxy       = "haproxy"
	rowToxiproxy     = "toxiproxy" // toxiproxy-server, a proxy with no toxic
	rowSocat         = "socat"
	// The fault rows relay with a zero-delay latency fault on both
	// directions, which takes each tool off its fast path onto its
	// fault-processing path.
	rowFaultlineFault = "faultline-fault"
	rowToxiproxyFault = "toxiproxy-fault"
)

var allRows = []string{rowDirect, rowBare, rowBarePool, rowEpollPool, rowFaultlineDial, rowFaultlinePool, rowHAProxy, rowToxiproxy, rowSocat, rowFaultlineFault, rowToxiproxyFault}

// faultRows are the rows that only make sense for throughput and latency.
var faultRows = []string{rowFaultlineFault, rowToxiproxyFault}

// relaySpec says how to start one row's relay in front of an upstream.
type relaySpec struct {
	name  string
	skip  string // why the row cannot run; empty if it can
	start func(ctx context.Context, upstream string) (*relay, error)
}

func relaySpecs(cfg *config) map[string]relaySpec {
	specs := map[string]relaySpec{
		rowDirect: {name: rowDirect, start: func(_ context.Context, up string) (*relay, error) {
			return &relay{name: rowDirect, addr: up}, nil
		}},
	}
	if exe, err := os.Executable(); err != nil {
		specs[rowBare] = relaySpec{name: rowBare, skip: fmt.Sprintf("cannot find own executable: %v", err)}
		specs[rowBarePool] = relaySpec{name: rowBarePool, skip: specs[rowBare].skip}
		specs[rowEpollPool] = relaySpec{name: rowEpollPool, skip: specs[rowBare].skip}
	} else {
		// This binary re-executed as the relay, with the hidden flags of
		// bare.go and extra ones per row.
		self := func(name string, extra ...string) relaySpec {
			return relaySpec{name: name, start: func(ctx context.Context, up string) (*relay, error) {
				argv := append([]string{exe, "-" + bareListenFlag, "127.0.0.1:0", "-" + bareUpstreamFlag, up}, extra...)
				return startLineRelay(ctx, cfg, name, argv)
			}}
		}
		pool := strconv.Itoa(cfg.poolSize)
		specs[rowBare] = self(rowBare)
		specs[rowBarePool] = self(rowBarePool, "-"+barePoolFlag, pool)
		specs[rowEpollPool] = self(rowEpollPool, "-"+barePoolFlag, pool, "-"+bareEpollFlag)
	}

	flSkip := ""
	switch fi, err := os.Stat(cfg.faultline); {
	case cfg.faultline == "":
		flSkip = "-faultline PATH not given"
	case err != nil:
		flSkip = fmt.Sprintf("-faultline: %v", err)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		flSkip = fmt.Sprintf("-faultline %s is not an executable file", cfg.faultline)
	}
	for _, mode := range []string{"dial", "pool"} {
		name := "faultline-" + mode
		specs[name] = relaySpec{name: name, skip: flSkip, start: func(ctx context.Context, up string) (*relay, error) {
			argv := []string{cfg.faultline, "run", "--listen", "127.0.0.1:0", "--upstream", up, "--mode", mode, "--control", "127.0.0.1:0"}
			if mode == "pool" {
				argv = append(argv, "--pool-size", strconv.Itoa(cfg.poolSize))
			}
			return startLineRelay(ctx, cfg, name, argv)
		}}
	}

	specs[rowFaultlineFault] = relaySpec{name: rowFaultlineFault, skip: flSkip, start: func(ctx context.Context, up string) (*relay, error) {
		return startFaultlineFault(ctx, cfg, up)
	}}
	for _, row := range []string{rowToxiproxy, rowToxiproxyFault} {
		if path, err := exec.LookPath("toxiproxy-server"); err != nil {
			specs[row] = relaySpec{name: row, skip: "toxiproxy-server not found in PATH"}
		} else {
			specs[row] = relaySpec{name: row, start: func(ctx context.Context, up string) (*relay, error) {
				return startToxiproxy(ctx, cfg, row, path, up, row == rowToxiproxyFault)
			}}
		}
	}

	if path, err := exec.LookPath("haproxy"); err != nil {
		specs[rowHAProxy] = relaySpec{name: rowHAProxy, skip: "haproxy not found in PATH"}
	} else {
		specs[rowHAProxy] = relaySpec{name: rowHAProxy, start: func(ctx context.Context, up string) (*relay, error) {
			return startPortRelay(ctx, cfg, rowHAProxy, func(port int, dir string) ([]string, error) {
				file := filepath.Join(dir, "haproxy.cfg")
				if err := os.WriteFile(file, []byte(haproxyConfig(port, up, cfg.haproxySplice)), 0o600); err != nil {
					return nil, err
				}
				return []string{path, "-db", "-f", file}, nil
			})
		}}
	}
	if path, err := exec.LookPath("socat"); err != nil {
		specs[rowSocat] = relaySpec{name: rowSocat, skip: "socat not found in PATH"}
	} else {
		specs[rowSocat] = relaySpec{name: rowSocat, start: func(ctx context.Context, up string) (*relay, error) {
			return startPortRelay(ctx, cfg, rowSocat, func(port int, _ string) ([]string, error) {
				return []string{path, fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port), "TCP:" + up}, nil
			})
		}}
	}
	return specs
}

// haproxyMaxconn is 10000, or less if the fd hard limit is too low for it:
// haproxy refuses to start unless it can have 2 fds per connection plus a
// few, and with splice also 2 per pipe, maxconn/4 pipes by default (20000
// fds are not enough for 10000 connections either way).
func haproxyMaxconn(splice bool) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 10000
	}
	perConn := 2.0
	if splice {
		perConn = 2.5
	}
	return int(min(10000, max(100, (float64(lim.Max)-100)/perConn)))
}

func haproxyConfig(port int, upstream string, splice bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    maxconn %d\n\n", haproxyMaxconn(splice))
	fmt.Fprintf(&b, "defaults\n    mode tcp\n    timeout connect 10s\n    timeout client 1h\n    timeout server 1h\n")
	if splice {
		fmt.Fprintf(&b, "    option splice-auto\n")
	}
	fmt.Fprintf(&b, "\nfrontend relaybench\n    bind 127.0.0.1:%d\n    default_backend upstream\n\n", port)
	fmt.Fprintf(&b, "backend upstream\n    server up %s\n", upstream)
	return b.String()
}

// relay is one running relay process (nil cmd for the direct row). Each is
// the leader of its own process group: a ctrl-C in the terminal reaches only
// the harness, which then stops its relays in order, and socat's forked
// children can be found, measured and stopped as a group.
type relay struct {
	name      string
	addr      string // where clients connect
	cmd       *exec.Cmd
	cleanExit bool   // whether the process must exit 0 on SIGTERM
	tmpDir    string // removed by Stop
	stdout    *outputWatcher
	stderr    *outputWatcher

	exited  chan struct{} // closed once cmd.Wait has returned
	waitErr error         // cmd.Wait's result; read after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// launch starts argv as a new process group, with env added to the
// harness's environment, and a goroutine that waits for it; Stop ends both.
func launch(name string, argv, env []string, tmpDir string) (*relay, error) {
	r := &relay{
		name:   name,
		tmpDir: tmpDir,
		stdout: newOutputWatcher(true),
		stderr: newOutputWatcher(false),
		exited: make(chan struct{}),
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = r.stdout
	cmd.Stderr = r.stderr
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		if tmpDir != "" {
			os.RemoveAll(tmpDir)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.cmd = cmd
	go func() {
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()
	return r, nil
}

// startLineRelay starts a relay that prints
// "proxy listening on HOST:PORT -> UPSTREAM" once it listens (bare, faultline).
func startLineRelay(ctx context.Context, cfg *config, name string, argv []string) (*relay, error) {
	var env []string
	if argv[0] == cfg.faultline && cfg.flProcs > 0 {
		env = []string{"GOMAXPROCS=" + strconv.Itoa(cfg.flProcs)}
	}
	r, err := launch(name, argv, env, "")
	if err != nil {
		return nil, err
	}
	r.cleanExit = true
	timer := time.NewTimer(cfg.startTimeout)
	defer timer.Stop()
	select {
	case addr := <-r.stdout.addr:
		r.addr = addr
		if err := checkLoopback(addr); err != nil {
			r.Stop()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return r, nil
	case <-r.exited:
		err = fmt.Errorf("%s exited before listening: %v%s", name, r.waitErr, r.outputTail())
	case <-timer.C:
		err = fmt.Errorf("%s printed no %q line within %v%s", name, listenPrefix, cfg.startTimeout, r.outputTail())
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.Stop()
	return nil, err
}

// startPortRelay starts a relay on a port chosen here (haproxy, socat): it
// picks a free port, starts the relay, and dials until it accepts. If the
// relay exits early (the port was taken meanwhile), it tries another port.
func startPortRelay(ctx context.Context, cfg *config, name string, argv func(port int, dir string) ([]string, error)) (*relay, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "relaybench-"+name+"-")
		if err != nil {
			return nil, err
		}
		args, err := argv(port, dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		r, err := launch(name, args, nil, dir)
		if err != nil {
			return nil, err
		}
		r.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = r.waitAccepting(ctx, cfg.startTimeout)
		if err == nil {
			return r, nil
		}
		r.Stop()
		lastErr = err
		if !errors.Is(err, errExitedEarly) {
			break
		}
	}
	return nil, lastErr
}

var errExitedEarly = errors.New("exited before accepting")

func (r *relay) waitAccepting(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-r.exited:
			return fmt.Errorf("%s %w: %v%s", r.name, errExitedEarly, r.waitErr, r.outputTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting on %s within %v: %v%s", r.name, r.addr, timeout, err, r.outputTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// checkLoopback rejects a relay address that is not on 127.0.0.1/8.
func checkLoopback(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("bad listen address %q: %w", addr, err)
	}
	if !ap.Addr().Is4() || !ap.Addr().IsLoopback() {
		return fmt.Errorf("listen address %s is not 127.0.0.1/8", addr)
	}
	return nil
}

// RSSKiB is the VmRSS of the relay's process group, and how many processes
// it summed.
func (r *relay) RSSKiB() (int64, int, error) {
	if r.cmd == nil {
		return 0, 0, errors.New("no relay process")
	}
	return groupRSSKiB(r.cmd.Process.Pid)
}

// CPU is the CPU time the relay's process group has used so far (see
// groupCPU); ok is false for the direct row, which has no relay process.
func (r *relay) CPU() (d time.Duration, ok bool, err error) {
	if r.cmd == nil {
		return 0, false, nil
	}
	d, err = groupCPU(r.cmd.Process.Pid)
	return d, err == nil, err
}

// openFDs counts the open fds of the relay's main process (-1 if unknown).
func (r *relay) openFDs() int {
	if r.cmd == nil {
		return -1
	}
	entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(r.cmd.Process.Pid), "fd"))
	if err != nil {
		return -1
	}
	return len(entries)
}

// Stop sends SIGTERM to the relay's process group, waits for the leader
// (SIGKILL after 5 s) and for the rest of the group, and removes the
// relay's temporary files. It is safe to call more than once.
func (r *relay) Stop() error {
	r.stopOnce.Do(func() { r.stopErr = r.stop() })
	return r.stopErr
}

func (r *relay) stop() error {
	if r.cmd == nil {
		return nil
	}
	defer func() {
		if r.tmpDir != "" {
			os.RemoveAll(r.tmpDir)
		}
	}()
	pgid := r.cmd.Process.Pid
	// Let forked children (socat) end on their own first, after the clients
	// closed, so that the parent reaps them rather than init.
	for deadline := time.Now().Add(2 * time.Second); groupCount(pgid, true) > 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGTERM)
	killed := false
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		killed = true
		<-r.exited
	}
	// Forked children may outlive the leader briefly.
	for deadline := time.Now().Add(3 * time.Second); groupCount(pgid, false) > 0; {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	switch {
	case killed:
		return fmt.Errorf("%s did not exit within 5s of SIGTERM; killed%s", r.name, r.outputTail())
	case r.cleanExit && r.waitErr != nil:
		return fmt.Errorf("%s on SIGTERM: %v%s", r.name, r.waitErr, r.outputTail())
	}
	return nil
}

// outputTail is the end of the relay's output on one line, for errors.
func (r *relay) outputTail() string {
	var lines []string
	for _, s := range []string{r.stderr.tailString(), r.stdout.tailString()} {
		for l := range strings.Lines(s) {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return ""
	}
	s := strings.Join(lines, " | ")
	if len(s) > 400 {
		s = "..." + s[len(s)-400:]
	}
	return "; output: " + s
}
