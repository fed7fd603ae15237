package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
)

// instance is a running "faultline run" with a proxy named main in front of
// an echo server.
type instance struct {
	p     *process
	ctl   string // the control URL
	addr  string // main's address
	echo  string // the echo server's address
	c     *client.Client
	token string
}

func startInstance(t *testing.T, env ...string) *instance {
	t.Helper()
	up := startEcho(t)
	p := startEnv(t, env, "run", "--listen", "127.0.0.1:0", "--upstream", up, "--control", "127.0.0.1:0")
	_, addr, _ := p.listening(t)
	in := &instance{p: p, addr: addr, echo: up}
	in.ctl = p.control(t)
	for _, kv := range env {
		if tok, ok := strings.CutPrefix(kv, envToken+"="); ok {
			in.token = tok
		}
	}
	in.c = client.New(in.ctl, client.WithToken(in.token))
	return in
}

// result is what a client command did.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs a client command of the binary to its end, with --control
// pointing at the instance, and env added to the environment.
func (in *instance) cli(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runCLI(t, env, append(args, "--control", in.ctl)...)
}

func runCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(c, binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("faultline %s: %v", strings.Join(args, " "), err)
	}
	if c.Err() != nil {
		t.Fatalf("faultline %s: still running after %s", strings.Join(args, " "), waitTimeout)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// ok fails the test unless r exited 0, and returns its stdout.
func (r result) ok(t *testing.T, what string) string {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("%s: exit code %d, want 0; stderr:\n%s", what, r.code, r.stderr)
	}
	return r.stdout
}

// failed checks that r exited with code and said want on stderr.
func (r result) failed(t *testing.T, what string, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Errorf("%s: got exit code %d, stderr %q; want %d and %q", what, r.code, r.stderr, code, want)
	}
}

// tableRow returns the row of table whose first column is key, split in
// columns, or nil.
func tableRow(table, key string) []string {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == key {
			return f
		}
	}
	return nil
}

func TestProxyCommands(t *testing.T) {
	in := startInstance(t)
	out := in.cli(t, nil, "proxy", "ls").ok(t, "proxy ls")
	if !strings.HasPrefix(out, "NAME") {
		t.Errorf("proxy ls: got %q, want a table with a header", out)
	}
	if row := tableRow(out, "main"); len(row) < 4 || row[1] != in.addr || row[2] != in.echo || row[3] != "dial" {
		t.Errorf("proxy ls: row of main: got %q, want main %s %s dial ...", row, in.addr, in.echo)
	}

	out = in.cli(t, nil, "proxy", "add", "extra", "--upstream", in.echo, "--listen", "127.0.0.1:0").ok(t, "proxy add")
	m := listeningRE.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil || m[1] != "extra" || m[3] != in.echo {
		t.Fatalf("proxy add: got %q, want %q", out, "proxy extra listening on 127.0.0.1:PORT -> "+in.echo)
	}
	roundTrip(t, m[2], "through extra")

	var ps []api.Proxy
	out = in.cli(t, nil, "proxy", "ls", "--json").ok(t, "proxy ls --json")
	if err := json.Unmarshal([]byte(out), &ps); err != nil || len(ps) != 2 || ps[0].Name != "extra" || ps[1].Name != "main" {
		t.Errorf("proxy ls --json: got %q (%v), want extra and main", out, err)
	}

	in.cli(t, nil, "proxy", "add", "extra", "--upstream", in.echo).failed(t, "proxy add (name taken)", exitError, `a proxy named "extra" exists (name_taken)`)
	if out := in.cli(t, nil, "proxy", "rm", "extra").ok(t, "proxy rm"); out != "removed proxy extra\n" {
		t.Errorf("proxy rm: got %q", out)
	}
	in.cli(t, nil, "proxy", "rm", "extra").failed(t, "proxy rm (gone)", exitError, `no proxy named "extra" (not_found)`)
	in.p.stop(t)
}

func TestFaultCommands(t *testing.T) {
	in := startInstance(t)
	out := in.cli(t, nil, "fault", "add", "main", "--kind", "latency", "--delay", "100ms", "--dir", "down", "--name", "slow").ok(t, "fault add (flags)")
	if !strings.HasPrefix(out, "added fault slow to main: latency down delay=100ms") {
		t.Errorf("fault add (flags): got %q", out)
	}
	out = in.cli(t, nil, "fault", "add", "main", `{"kind":"reset","side":"client","target":{"which":"ids","ids":[7]}}`, "--json").ok(t, "fault add (JSON)")
	var f faults.Fault
	if err := json.Unmarshal([]byte(out), &f); err != nil || f.Kind != faults.KindReset || f.Name == "" || len(f.Target.IDs) != 1 {
		t.Errorf("fault add (JSON) --json: got %q (%v), want the reset with a name", out, err)
	}

	out = in.cli(t, nil, "fault", "ls", "main").ok(t, "fault ls")
	if row := tableRow(out, "slow"); len(row) != 5 || row[1] != "latency" || row[2] != "down" || row[3] != "all" || row[4] != "delay=100ms" {
		t.Errorf("fault ls: row of slow: got %q, want slow latency down all delay=100ms", row)
	}
	if row := tableRow(out, f.Name); !regexp.MustCompile(`^reset - ids 7 side=client$`).MatchString(strings.Join(row[1:], " ")) {
		t.Errorf("fault ls: row of %s: got %q, want reset - ids 7 side=client (a reset has no direction)", f.Name, row)
	}
	var list []faults.Fault
	out = in.cli(t, nil, "fault", "ls", "main", "--json").ok(t, "fault ls --json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
		t.Errorf("fault ls --json: got %q (%v), want two faults", out, err)
	}

	in.cli(t, nil, "fault", "add", "main", "--kind", "bogus").failed(t, "fault add (unknown kind)", exitUsage, `unknown fault kind "bogus"`)
	in.cli(t, nil, "fault", "add", "main", "--kind", "corrupt").failed(t, "fault add (corrupt without prob)", exitError, "prob")
	in.cli(t, nil, "fault", "add", "nope", "--kind", "stall").failed(t, "fault add (unknown proxy)", exitError, `no proxy named "nope"`)
	in.cli(t, nil, "fault", "rm", "main", "nope").failed(t, "fault rm (unknown fault)", exitError, "(not_found)")

	if out := in.cli(t, nil, "fault", "rm", "main", "slow").ok(t, "fault rm"); out != "removed fault slow from main\n" {
		t.Errorf("fault rm: got %q", out)
	}
	in.cli(t, nil, "fault", "rm", "main", "--all").ok(t, "fault rm --all")
	if fs, err := in.c.Faults(ctx(t), "main"); err != nil || len(fs) != 0 {
		t.Errorf("faults after rm --all: got %+v, %v; want none", fs, err)
	}
	in.p.stop(t)
}

func TestConnsCommand(t *testing.T) {
	in := startInstance(t)
	c, err := net.DialTimeout("tcp", in.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	out := in.cli(t, nil, "conns", "main").ok(t, "conns")
	row := tableRow(out, "1")
	if len(row) < 5 || row[1] != c.LocalAddr().String() {
		t.Errorf("conns: got %q, want a row for connection 1 from %s", out, c.LocalAddr())
	}
	var cs []api.Conn
	out = in.cli(t, nil, "conns", "main", "--json").ok(t, "conns --json")
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) != 1 || cs[0].ID != 1 {
		t.Errorf("conns --json: got %q (%v), want connection 1", out, err)
	}
	in.cli(t, nil, "conns", "nope").failed(t, "conns (unknown proxy)", exitError, `no proxy named "nope"`)
	in.p.stop(t)
}

func TestClientEnvAndToken(t *testing.T) {
	in := startInstance(t, envToken+"=s3cret")
	// FAULTLINE_URL instead of --control; no token.
	r := runCLI(t, []string{envURL + "=" + in.ctl}, "proxy", "ls")
	r.failed(t, "proxy ls without the token", exitError, "(unauthorized)")
	r = runCLI(t, []string{envURL + "=" + in.ctl, envToken + "=s3cret"}, "proxy", "ls")
	if row := tableRow(r.ok(t, "proxy ls with $FAULTLINE_TOKEN"), "main"); row == nil {
		t.Errorf("proxy ls with $FAULTLINE_TOKEN: got %q, want main", r.stdout)
	}
	in.cli(t, nil, "proxy", "ls", "--token", "s3cret").ok(t, "proxy ls --token")
	in.cli(t, nil, "events", "--token", "wrong").failed(t, "events with a wrong token", exitError, "(unauthorized)")
	in.p.stop(t)
}

// TestGlobalFlags checks that --control and --token may come before the
// command.
func TestGlobalFlags(t *testing.T) {
	in := startInstance(t, envToken+"=s3cret")
	tests := []struct {
		args []string
		want string // on stdout
	}{
		{[]string{"--control", in.ctl, "--token", "s3cret", "proxy", "ls"}, "main"},
		{[]string{"--control=" + in.ctl, "-token=s3cret", "proxy", "ls", "--json"}, `"name": "main"`},
		{[]string{"--token", "s3cret", "--control", in.ctl, "fault", "add", "main", "--kind", "stall", "--name", "g"}, "added fault g"},
		{[]string{"--control", in.ctl, "--token", "s3cret", "fault", "ls", "main"}, "g"},
		{[]string{"--control", in.ctl, "--token", "s3cret", "conns", "--", "main"}, "ID"},
		{[]string{"--control", in.ctl, "--token", "s3cret", "fault", "rm", "main", "g"}, "removed fault g"},
	}
	for _, tt := range tests {
		r := runCLI(t, nil, tt.args...)
		if out := r.ok(t, strings.Join(tt.args, " ")); !strings.Contains(out, tt.want) {
			t.Errorf("faultline %s: got %q, want it to contain %q", strings.Join(tt.args, " "), out, tt.want)
		}
	}
	runCLI(t, nil, "--control", in.ctl, "run", "--listen", "127.0.0.1:0").failed(t, "--control before run", exitUsage, "--control and --token before the command are for the client commands")
	runCLI(t, nil, "--control").failed(t, "--control with no value", exitUsage, "--control needs a value")
	runCLI(t, nil, "--control", in.ctl).failed(t, "--control with no command", exitUsage, "want a command")
	runCLI(t, nil, "--control", in.ctl, "proxy").failed(t, "--control before proxy alone", exitUsage, "proxy: want a subcommand")
	in.p.stop(t)
}

// TestEventsUnknownProxy checks that events for a proxy that does not
// exist says so, rather than waiting for events that cannot come.
func TestEventsUnknownProxy(t *testing.T) {
	in := startInstance(t)
	in.cli(t, nil, "events", "--proxy", "nosuch").failed(t, "events --proxy nosuch", exitError, `no proxy named "nosuch"`)
	in.p.stop(t)
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	url := "http://" + addr
	hint := "is faultline running at " + url + "? start it with faultline run"
	for _, args := range [][]string{{"proxy", "ls"}, {"fault", "add", "main", "--kind", "stall"}, {"events"}, {"pool", "drain", "main"}, {"apply", "testdata/faultline.yaml"}} {
		r := runCLI(t, nil, append(args, "--control", url)...)
		r.failed(t, strings.Join(args, " ")+" of nothing", exitError, "connection refused")
		r.failed(t, strings.Join(args, " ")+" of nothing", exitError, hint)
	}
}

func TestEventsCommand(t *testing.T) {
	in := startInstance(t)
	// A live connection (so that the fault is applied to it), and the
	// cursor after its events, so that events starts from there.
	conn, err := net.DialTimeout("tcp", in.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cursor uint64
	for deadline := time.Now().Add(waitTimeout); cursor == 0; {
		evs, err := in.c.Events(ctx(t), client.EventsQuery{Kinds: []string{"dialed"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs.Events) > 0 {
			cursor = evs.Events[0].ID
		} else if time.Now().After(deadline) {
			t.Fatal("no dialed event")
		}
	}

	ev := start(t, "events", "--control", in.ctl, "--proxy", "main", "--kind", "fault-applied", "--after", itoa(cursor))
	if _, err := in.c.AddFault(ctx(t), "main", faults.Latency(time.Millisecond, 0).WithName("lag").WithDir(faults.Down)); err != nil {
		t.Fatal(err)
	}
	var e api.Event
	l := ev.line(t)
	if err := json.Unmarshal([]byte(l), &e); err != nil {
		t.Fatalf("events line %q: %v", l, err)
	}
	if e.Proxy != "main" || e.Event.Kind.String() != "fault-applied" || e.Event.Fault != "lag" || e.Event.Conn != 1 || e.ID <= cursor {
		t.Errorf("event: got %+v, want fault-applied of lag to connection 1 of main, after %d", e, cursor)
	}
	ev.stop(t)
	// Stop with the connection still open: the proxy's closing events
	// reach the event log while the server closes.
	in.p.stop(t)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// liveConn connects to the proxy proxyName at addr and makes one echo round
// trip through it, so that it is a live connection of the proxy; it returns
// the connection, closed when the test ends, and its ID.
func liveConn(t *testing.T, in *instance, proxyName, addr string) (net.Conn, uint64) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	cs, err := in.c.Conns(ctx(t), proxyName)
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range cs {
		if ci.Client == c.LocalAddr().String() {
			return c, ci.ID
		}
	}
	t.Fatalf("no live connection of %s from %s in %+v", proxyName, c.LocalAddr(), cs)
	return nil, 0
}

func TestConnsCloseCommand(t *testing.T) {
	in := startInstance(t)

	fin, finID := liveConn(t, in, "main", in.addr)
	out := in.cli(t, nil, "conns", "close", "main", itoa(finID)).ok(t, "conns close")
	if want := "closed connection " + itoa(finID) + " of proxy main (FIN)\n"; out != want {
		t.Errorf("conns close: got %q, want %q", out, want)
	}
	if n, err := fin.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read after conns close: got %d, %v; want 0, EOF", n, err)
	}

	rst, rstID := liveConn(t, in, "main", in.addr)
	if rstID == finID {
		t.Fatalf("two live connections with ID %d", rstID)
	}
	out = in.cli(t, nil, "conns", "close", "main", itoa(rstID), "--rst").ok(t, "conns close --rst")
	if want := "closed connection " + itoa(rstID) + " of proxy main (RST)\n"; out != want {
		t.Errorf("conns close --rst: got %q, want %q", out, want)
	}
	if n, err := rst.Read(make([]byte, 1)); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after conns close --rst: got %d, %v; want 0, ECONNRESET", n, err)
	}

	in.cli(t, nil, "conns", "close", "main", "999").failed(t, "conns close (unknown ID)", exitError, "proxy main has no live connection 999 (not_found)")
	in.cli(t, nil, "conns", "close", "nope", "1").failed(t, "conns close (unknown proxy)", exitError, `no proxy named "nope" (not_found)`)
	in.cli(t, nil, "conns", "close", "main", "x").failed(t, "conns close (bad ID)", exitUsage, `conns close: connection ID "x": want a number`)
	in.cli(t, nil, "conns", "close", "main", "7x").failed(t, "conns close (ID with junk)", exitUsage, `conns close: connection ID "7x": want a number`)
	in.cli(t, nil, "conns", "close", "main").failed(t, "conns close (no ID)", exitUsage, "conns close: want PROXY and connection ID")
	in.cli(t, nil, "conns", "close", "main", "1", "2").failed(t, "conns close (two IDs)", exitUsage, "conns close: want PROXY and connection ID")
	in.cli(t, nil, "conns", "close", "main", "1", "--fin").failed(t, "conns close (unknown flag)", exitUsage, "flag provided but not defined: -fin")

	// A proxy named "close" is listed after "--".
	if _, err := in.c.CreateProxy(ctx(t), api.ProxySpec{Name: "close", Upstream: in.echo}); err != nil {
		t.Fatal(err)
	}
	out = runCLI(t, []string{envURL + "=" + in.ctl}, "conns", "--", "close").ok(t, "conns -- close")
	if !strings.HasPrefix(out, "ID") || strings.Count(out, "\n") != 1 {
		t.Errorf("conns -- close: got %q, want the header of an empty table", out)
	}
	in.cli(t, nil, "conns", "nope").failed(t, "conns (unknown proxy)", exitError, `no proxy named "nope"`)
	in.p.stop(t)
}

// startGreeter starts a server for the test that writes msg to each
// connection and closes it, and returns its address.
func startGreeter(t *testing.T, msg string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(waitTimeout))
			_, _ = io.WriteString(c, msg)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// readAll connects to addr and returns what it reads up to EOF.
func readAll(t *testing.T, addr string) string {
	t.Helper()
	c := dialWithin(t, addr)
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: got %q, %v", addr, b, err)
	}
	return string(b)
}

func TestProxyUpdateCommand(t *testing.T) {
	in := startInstance(t)
	up2 := startGreeter(t, "hello from up2\n")

	out := in.cli(t, nil, "proxy", "update", "main", "--upstream", up2).ok(t, "proxy update --upstream")
	if want := "proxy main listening on " + in.addr + " -> " + up2 + "\n"; out != want {
		t.Errorf("proxy update --upstream: got %q, want %q", out, want)
	}
	if got := readAll(t, in.addr); got != "hello from up2\n" {
		t.Errorf("through main after the update: got %q, want the new upstream's greeting", got)
	}
	out = in.cli(t, nil, "proxy", "ls").ok(t, "proxy ls")
	if row := tableRow(out, "main"); len(row) < 4 || row[1] != in.addr || row[2] != up2 || row[3] != "dial" {
		t.Errorf("proxy ls after update: row of main: got %q, want main %s %s dial ...", row, in.addr, up2)
	}

	// Only the settings given change: the upstream stays.
	var p api.Proxy
	out = in.cli(t, nil, "proxy", "update", "main", "--mode", "pool", "--pool-size", "2", "--json").ok(t, "proxy update --mode pool --json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Name != "main" || p.Mode != "pool" || p.Pool.Size != 2 || p.Upstream != up2 || p.Listen != in.addr || !p.Enabled {
		t.Errorf("proxy update --mode pool --json: got %q (%v), want main in pool mode, size 2, on %s -> %s", out, err, in.addr, up2)
	}

	out = in.cli(t, nil, "proxy", "update", "main", "--enabled=false").ok(t, "proxy update --enabled=false")
	if want := "proxy main disabled -> " + up2 + "\n"; out != want {
		t.Errorf("proxy update --enabled=false: got %q, want %q", out, want)
	}
	if p, err := in.c.Proxy(ctx(t), "main"); err != nil || p.Enabled || p.Mode != "pool" {
		t.Errorf("main after --enabled=false: got %+v, %v; want it disabled, still in pool mode", p, err)
	}
	out = in.cli(t, nil, "proxy", "update", "main", "--enabled").ok(t, "proxy update --enabled")
	if want := "proxy main listening on " + in.addr + " -> " + up2 + "\n"; out != want {
		t.Errorf("proxy update --enabled: got %q, want %q", out, want)
	}

	in.cli(t, nil, "proxy", "update", "main").failed(t, "proxy update (no flags)", exitUsage, "proxy update: give at least one setting to change")
	in.cli(t, nil, "proxy", "update", "main", "--json").failed(t, "proxy update (only --json)", exitUsage, "proxy update: give at least one setting to change")
	in.cli(t, nil, "proxy", "update", "--upstream", up2).failed(t, "proxy update (no name)", exitUsage, "proxy update: want one NAME")
	in.cli(t, nil, "proxy", "update", "main", "--mode", "bogus").failed(t, "proxy update (bad mode)", exitUsage, `unknown mode: "bogus"`)
	in.cli(t, nil, "proxy", "update", "main", "--bogus").failed(t, "proxy update (unknown flag)", exitUsage, "flag provided but not defined: -bogus")
	in.cli(t, nil, "proxy", "update", "nope", "--upstream", up2).failed(t, "proxy update (unknown proxy)", exitError, `no proxy named "nope" (not_found)`)
	in.cli(t, nil, "proxy", "update", "main", "--mode", "dial", "--pool-size", "2").failed(t, "proxy update (pool settings in dial mode)", exitError, "pool settings are for mode pool (bad_request)")
	if p, err := in.c.Proxy(ctx(t), "main"); err != nil || p.Mode != "pool" || p.Upstream != up2 {
		t.Errorf("main after the failed updates: got %+v, %v; want it unchanged", p, err)
	}
	in.p.stop(t)
}

func TestPoolDrainCommand(t *testing.T) {
	in := startInstance(t)
	out := in.cli(t, nil, "proxy", "add", "pooled", "--upstream", in.echo, "--mode", "pool").ok(t, "proxy add --mode pool")
	m := listeningRE.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		t.Fatalf("proxy add: got %q", out)
	}
	roundTrip(t, m[2], "one pooled connection")
	// The session ends on the client's FIN; then the upstream connection
	// goes back to the pool.
	for deadline := time.Now().Add(waitTimeout); ; {
		st, err := in.c.Pool(ctx(t), "pooled")
		if err != nil {
			t.Fatal(err)
		}
		if st.Idle == 1 && st.Busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool: got %+v, want one idle connection", st.PoolStats)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if out := in.cli(t, nil, "pool", "drain", "pooled").ok(t, "pool drain"); out != "drained 1 idle connection of proxy pooled\n" {
		t.Errorf("pool drain: got %q, want %q", out, "drained 1 idle connection of proxy pooled\n")
	}
	if st, err := in.c.Pool(ctx(t), "pooled"); err != nil || st.Idle != 0 {
		t.Errorf("pool after drain: got %+v, %v; want no idle connection", st.PoolStats, err)
	}
	if out := in.cli(t, nil, "pool", "drain", "pooled").ok(t, "pool drain (empty)"); out != "drained 0 idle connections of proxy pooled\n" {
		t.Errorf("pool drain (empty): got %q", out)
	}

	in.cli(t, nil, "pool", "drain", "main").failed(t, "pool drain (dial mode)", exitError, "proxy main is in dial mode: it has no pool (bad_request)")
	in.cli(t, nil, "pool", "drain", "nope").failed(t, "pool drain (unknown proxy)", exitError, `no proxy named "nope" (not_found)`)
	in.cli(t, nil, "pool", "drain").failed(t, "pool drain (no proxy)", exitUsage, "pool drain: want one PROXY")
	runCLI(t, nil, "pool").failed(t, "pool (no subcommand)", exitUsage, "pool: want a subcommand (drain, stats)")
	in.cli(t, nil, "pool", "flush", "main").failed(t, "pool (unknown subcommand)", exitUsage, `pool: unknown subcommand "flush" (want drain, stats)`)
	in.p.stop(t)
}
