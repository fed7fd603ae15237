package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
)

// cleanEnv is the test's environment without faultline's variables, so
// that a developer's FAULTLINE_TOKEN does not change what is tested.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		// $GOMAXPROCS would override the binary's --procs default
		// (TestProcs sets it where it means to).
		if !strings.HasPrefix(kv, "FAULTLINE_") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	return env
}

// ctx returns a context bounded by waitTimeout, cancelled when the test ends.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		mode string
		msg  string
	}{
		{name: "dial", mode: "dial", msg: "hello through the dial proxy"},
		{name: "pool", mode: "pool", msg: "hello through the pool proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startEcho(t)
			p := start(t, "run", "--listen", "127.0.0.1:0", "--upstream", up, "--mode", tt.mode, "--control", "127.0.0.1:0")
			line := p.line(t)
			m := listeningRE.FindStringSubmatch(line)
			if m == nil || m[0] != line || m[1] != "main" {
				t.Fatalf("first line: got %q, want %q", line, "proxy main listening on 127.0.0.1:PORT -> "+up)
			}
			if m[3] != up {
				t.Errorf("upstream in %q: got %s, want %s", line, m[3], up)
			}
			line = p.line(t)
			cm := controlRE.FindStringSubmatch(line)
			if cm == nil {
				t.Fatalf("second line: got %q, want %q", line, "control listening on http://127.0.0.1:PORT")
			}
			roundTrip(t, m[2], tt.msg)
			c := client.New(cm[1])
			if err := c.Healthz(ctx(t)); err != nil {
				t.Errorf("control healthz: %v", err)
			}
			got, err := c.Proxy(ctx(t), "main")
			if err != nil || got.Listen != m[2] || got.Mode != tt.mode {
				t.Errorf("proxy main through control: got %+v, %v; want listen %s, mode %s", got, err, m[2], tt.mode)
			}
			p.stop(t)
			if rest := p.rest(t); rest != "" {
				t.Errorf("stdout after the listening lines: got %q, want nothing", rest)
			}
		})
	}
}

func TestRunName(t *testing.T) {
	up := startEcho(t)
	p := start(t, "run", "--name", "redis", "--listen", "127.0.0.1:0", "--upstream", up, "--control", "127.0.0.1:0")
	if name, _, _ := p.listening(t); name != "redis" {
		t.Errorf("proxy name: got %q, want redis", name)
	}
	p.control(t)
	p.stop(t)
}

func TestRunSIGINT(t *testing.T) {
	p := start(t, "run", "--listen", "127.0.0.1:0", "--upstream", startEcho(t), "--control", "127.0.0.1:0")
	p.control(t)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != exitOK {
		t.Errorf("exit code after SIGINT: got %d, want %d; stderr:\n%s", code, exitOK, &p.stderr)
	}
}

func TestDemo(t *testing.T) {
	p := start(t, "demo", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")
	text, addr, ctl := demoHints(t, p)
	host, port := splitAddr(addr)
	// The test's binary is not on PATH: the hints name it by its path,
	// which works from any terminal.
	for _, want := range []string{
		"nc " + host + " " + port,
		`curl -X POST ` + ctl + `/api/v1/proxies/demo/faults -d '{"kind":"latency","delay":"500ms"}'`,
		"  " + binary + " events --control " + ctl,
		"  " + binary + " fault ls demo --control " + ctl,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("hints: got\n%s\nwant them to contain %q", text, want)
		}
	}
	roundTrip(t, addr, "hello through the demo proxy")

	// The curl hint's fault, through the client: the echo comes back late
	// by the delay each way, as the hint says (a fault with no dir acts
	// both ways).
	c := client.New(ctl)
	if _, err := c.AddFault(ctx(t), "demo", faults.Latency(200*time.Millisecond, 0)); err != nil {
		t.Fatalf("add the hint's fault: %v", err)
	}
	began := time.Now()
	roundTrip(t, addr, "late")
	if took := time.Since(began); took < 400*time.Millisecond {
		t.Errorf("echo under 200ms latency each way took %s, want at least 400ms", took)
	}
	p.stop(t)
}

// TestDemoOnPath checks that with the binary on PATH the demo's hints call
// it faultline.
func TestDemoOnPath(t *testing.T) {
	path := "PATH=" + filepath.Dir(binary) + string(filepath.ListSeparator) + os.Getenv("PATH")
	p := startEnv(t, []string{path}, "demo", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")
	text, _, ctl := demoHints(t, p)
	if want := "\n  faultline events --control " + ctl + "\n"; !strings.Contains(text, want) || strings.Contains(text, binary) {
		t.Errorf("hints: got\n%s\nwant them to contain %q and not the binary's path", text, want)
	}
	p.stop(t)
}

// demoHints reads the demo's output up to its last hint and returns the
// hints, the proxy's address and the control URL.
func demoHints(t *testing.T, p *process) (hints, addr, ctl string) {
	t.Helper()
	line := p.line(t)
	echoAddr, ok := strings.CutPrefix(line, "echo upstream listening on ")
	if !ok {
		t.Fatalf("first line: got %q, want %q", line, "echo upstream listening on 127.0.0.1:PORT")
	}
	name, addr, upstream := p.listening(t)
	if name != "demo" || upstream != echoAddr {
		t.Errorf("proxy: got %s -> %s, want demo -> the echo server's %s", name, upstream, echoAddr)
	}
	ctl = p.control(t)
	var lines []string
	for {
		l := p.line(t)
		lines = append(lines, l)
		if strings.HasPrefix(l, "Press Ctrl-C") {
			break
		}
	}
	return strings.Join(lines, "\n"), addr, ctl
}

// sampleConfig is a config file like the README's sample.
const sampleConfig = "testdata/faultline.yaml"

func TestConfigSample(t *testing.T) {
	p := start(t, "run", "--config", sampleConfig)
	got := map[string]string{} // name -> upstream
	for range 2 {
		name, _, upstream := p.listening(t)
		got[name] = upstream
	}
	if got["db"] != "127.0.0.1:5432" || got["cache"] != "127.0.0.1:6379" {
		t.Errorf("proxies: got %v, want db -> 127.0.0.1:5432 and cache -> 127.0.0.1:6379", got)
	}
	c := client.New(p.control(t))
	db, err := c.Proxy(ctx(t), "db")
	if err != nil || db.Mode != "dial" {
		t.Errorf("db: got %+v, %v; want dial mode", db, err)
	}
	cache, err := c.Proxy(ctx(t), "cache")
	if err != nil || cache.Mode != "pool" || cache.Pool.Size != 16 || time.Duration(cache.Pool.IdleTimeout) != 30*time.Second {
		t.Errorf("cache: got %+v, %v; want pool mode, size 16, idle timeout 30s", cache, err)
	}
	fs, err := c.Faults(ctx(t), "db")
	if err != nil || len(fs) != 1 {
		t.Fatalf("faults of db: got %+v, %v; want one", fs, err)
	}
	if f := fs[0]; f.Name != "slow-replies" || f.Kind != faults.KindLatency || f.Dir != faults.Down ||
		f.Delay != 150*time.Millisecond || f.Jitter != 20*time.Millisecond {
		t.Errorf("fault of db: got %+v, want slow-replies: latency down 150ms jitter 20ms", f)
	}
	fs, err = c.Faults(ctx(t), "cache")
	want := faults.Target{Which: faults.New, Every: 10}
	if err != nil || len(fs) != 1 || fs[0].Kind != faults.KindReset || fs[0].Side != faults.ToClient || fs[0].Target.Which != want.Which || fs[0].Target.Every != want.Every {
		t.Errorf("faults of cache: got %+v, %v; want one reset to client, target %+v", fs, err, want)
	}
	p.stop(t)
}

func TestConfigWithFlags(t *testing.T) {
	up := startEcho(t)
	cfg := writeConfig(t, `
control: 127.0.0.1:1   # overridden by --control
proxies:
  - name: echo
    upstream: `+up+`
    faults:
      - {name: lag, kind: latency, delay: 1ms}
`)
	p := start(t, "run", "--config", cfg, "--listen", "127.0.0.1:0", "--upstream", up, "--control", "127.0.0.1:0")
	names := map[string]string{}
	for range 2 {
		name, addr, _ := p.listening(t)
		names[name] = addr
	}
	if names["echo"] == "" || names["main"] == "" {
		t.Fatalf("proxies: got %v, want echo (from the file) and main (from the flags)", names)
	}
	c := client.New(p.control(t))
	roundTrip(t, names["echo"], "through the configured proxy")
	if fs, err := c.Faults(ctx(t), "echo"); err != nil || len(fs) != 1 || fs[0].Name != "lag" {
		t.Errorf("faults of echo: got %+v, %v; want lag", fs, err)
	}
	p.stop(t)
}

func TestConfigToken(t *testing.T) {
	cfg := writeConfig(t, "control: 127.0.0.1:0\ntoken: from-file\nproxies: []\n")
	p := start(t, "run", "--config", cfg)
	ctl := p.control(t)
	if _, err := client.New(ctl).Proxies(ctx(t)); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("without the file's token: got %v, want unauthorized", err)
	}
	if _, err := client.New(ctl, client.WithToken("from-file")).Proxies(ctx(t)); err != nil {
		t.Errorf("with the file's token: %v", err)
	}
	p.stop(t)
}

// writeConfig writes a config file for the test and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "faultline.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadConfig(t *testing.T) {
	busy := startEcho(t) // an address in use
	tests := []struct {
		name     string
		config   string
		wantCode int
		want     string // on stderr, after the file's name
	}{
		{"yaml syntax", "proxies: [\n", exitUsage, ":"},
		{"not a mapping", "- a\n", exitUsage, ":1: invalid config: want a mapping"},
		{"unknown top field", "contrl: x\n", exitUsage, `:1: invalid config: unknown field "contrl"`},
		{"proxies not a list", "proxies: {}\n", exitUsage, ":1: invalid config: proxies: want a list"},
		{"unknown proxy field", "proxies:\n  - name: a\n    upstream: x:1\n    lisen: x\n", exitUsage, `:2: invalid config: proxy 1 ("a"): unknown field "lisen"`},
		{"no name", "proxies:\n  - upstream: x:1\n", exitUsage, ":2: invalid config: proxy 1: name is required"},
		{"duplicate name", "proxies:\n  - {name: a, upstream: x:1}\n  - {name: a, upstream: x:2}\n", exitUsage, `:3: invalid config: proxy 2 ("a"): name used twice (first on line 2)`},
		{"duration without unit", "proxies:\n  - {name: a, upstream: x:1, faults: [{kind: latency, delay: 150}]}\n", exitUsage, `:2: invalid config: proxy 1 ("a"): fault 1 (line 2): faults: invalid fault: want a duration string such as "150ms", got 150`},
		{"unknown fault field", "proxies:\n  - name: a\n    upstream: x:1\n    faults:\n      - kind: latency\n        dealy: 1s\n", exitUsage, `:2: invalid config: proxy 1 ("a"): fault 1 (line 5): faults: invalid fault: json: unknown field "dealy"`},
		{"not a finite number", "proxies:\n  - name: a\n    upstream: x:1\n    faults:\n      - kind: corrupt\n        prob: .nan\n", exitUsage, `:2: invalid config: proxy 1 ("a"): fault 1 (line 5): NaN: want a finite number`},
		{"unknown fault kind", "proxies:\n  - name: a\n    upstream: x:1\n    faults:\n      - kind: bogus\n", exitUsage, `:2: invalid config: proxy 1 ("a"): fault 1 (line 5): faults: unknown kind "bogus"`},
		{"no upstream", "proxies:\n  - name: a\n", exitUsage, `:2: proxy "a": `},
		{"port in use", "proxies:\n  - name: a\n    listen: " + busy + "\n    upstream: x:1\n", exitError, `:2: proxy "a": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.config)
			p := start(t, "run", "--config", path, "--control", "127.0.0.1:0")
			if code := p.wait(t); code != tt.wantCode {
				t.Errorf("exit code: got %d, want %d", code, tt.wantCode)
			}
			if stderr := p.stderr.String(); !strings.Contains(stderr, path+tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, path+tt.want)
			}
			if out := p.rest(t); out != "" {
				t.Errorf("stdout: got %q, want nothing", out)
			}
		})
	}
}

func TestControlPortInUse(t *testing.T) {
	busy := startEcho(t)
	p := start(t, "run", "--listen", "127.0.0.1:0", "--upstream", busy, "--control", busy)
	if code := p.wait(t); code != exitError {
		t.Errorf("exit code: got %d, want %d", code, exitError)
	}
	if stderr := p.stderr.String(); !strings.Contains(stderr, "address already in use") {
		t.Errorf("stderr: got %q, want it to say the address is in use", stderr)
	}
}

// TestStartupErrorText checks that a proxy that cannot start is named once
// and its error said without the API's internal code.
func TestStartupErrorText(t *testing.T) {
	busy := startEcho(t)
	path := writeConfig(t, "proxies:\n  - name: a\n    listen: "+busy+"\n    upstream: x:1\n")
	tests := []struct {
		name string
		args []string
		want string // a line of stderr
	}{
		{"flags", []string{"run", "--listen", busy, "--upstream", "127.0.0.1:1", "--control", "127.0.0.1:0"},
			`faultline: proxy "main": listen on ` + busy + `: address in use`},
		{"config", []string{"run", "--config", path, "--control", "127.0.0.1:0"},
			`faultline: ` + path + `:2: proxy "a": listen on ` + busy + `: address in use`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.args...)
			if code := p.wait(t); code != exitError {
				t.Errorf("exit code: got %d, want %d", code, exitError)
			}
			if stderr := p.stderr.String(); !strings.Contains(stderr, "\n"+tt.want+"\n") {
				t.Errorf("stderr: got %q, want the line %q", stderr, tt.want)
			}
		})
	}
}
