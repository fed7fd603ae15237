package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
)

// TestControlBeyondLoopback: without a token the control API does not
// listen beyond loopback, whether the address comes from --control or
// the config file; the refusal says what to do and exits 2 before
// anything is served.
func TestControlBeyondLoopback(t *testing.T) {
	up := startEcho(t)
	tests := []struct {
		name string
		args func(t *testing.T) []string
		env  []string
	}{
		{"unspecified address", func(*testing.T) []string {
			return []string{"run", "--listen", "127.0.0.1:0", "--upstream", up, "--control", "0.0.0.0:0"}
		}, nil},
		{"empty host", func(*testing.T) []string {
			return []string{"run", "--listen", "127.0.0.1:0", "--upstream", up, "--control", ":0"}
		}, nil},
		{"IPv6 unspecified", func(*testing.T) []string {
			return []string{"run", "--listen", "127.0.0.1:0", "--upstream", up, "--control", "[::]:0"}
		}, nil},
		{"config file", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, "control: 0.0.0.0:0\nproxies: []\n")}
		}, nil},
		{"insecure_control false in the file", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, "control: 0.0.0.0:0\ninsecure_control: false\nproxies: []\n")}
		}, nil},
		{"the flag overrides the file", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, "control: 0.0.0.0:0\ninsecure_control: true\nproxies: []\n"), "--insecure-control=false"}
		}, nil},
		{"demo", func(*testing.T) []string {
			return []string{"demo", "--listen", "127.0.0.1:0", "--control", "0.0.0.0:0"}
		}, nil},
		{"empty token from the environment", func(*testing.T) []string {
			return []string{"run", "--listen", "127.0.0.1:0", "--upstream", up, "--control", "0.0.0.0:0"}
		}, []string{envToken + "="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startEnv(t, tt.env, tt.args(t)...)
			if code := p.wait(t); code != exitUsage {
				t.Errorf("exit code: got %d, want %d", code, exitUsage)
			}
			stderr := p.stderr.String()
			for _, want := range []string{"refusing to serve the control API beyond loopback without a token", "--token", "--insecure-control"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr: got %q, want it to contain %q", stderr, want)
				}
			}
			if out := p.rest(t); strings.Contains(out, "control listening") {
				t.Errorf("stdout: got %q, want no control line", out)
			}
		})
	}
}

// exposedRE matches the line the control server logs when it starts.
var exposedRE = regexp.MustCompile(`(?m)^.*msg="control API exposed[^"]*".*$`)

// TestControlExposedLine: on loopback the server starts without a token
// and logs one line saying what it exposes.
func TestControlExposedLine(t *testing.T) {
	p := start(t, "run", "--listen", "127.0.0.1:0", "--upstream", startEcho(t), "--control", "127.0.0.1:0", "--allow-host", "ci.example")
	ctl := p.control(t)
	p.stop(t)
	lines := exposedRE.FindAllString(p.stderr.String(), -1)
	if len(lines) != 1 {
		t.Fatalf("stderr: got %q, want one line saying what the control API exposes", p.stderr.String())
	}
	for _, want := range []string{"level=INFO", "addr=" + strings.TrimPrefix(ctl, "http://"), "token=none", "loopback", "ci.example"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("exposure line %q: want it to contain %q", lines[0], want)
		}
	}
}

// TestControlInsecureFlag: --insecure-control (or insecure_control: true)
// serves beyond loopback without a token and says so; a token alone is
// enough too. The test binds 0.0.0.0 on a free port and talks to it over
// loopback only.
func TestControlInsecureFlag(t *testing.T) {
	tests := []struct {
		name      string
		args      func(t *testing.T) []string
		env       []string
		token     string
		insecure  bool
		wantLevel string
	}{
		{"flag", func(*testing.T) []string {
			return []string{"run", "--control", "0.0.0.0:0", "--insecure-control", "--config", writeConfig(t, "proxies: []\n")}
		}, nil, "", true, "level=WARN"},
		{"config file", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, "control: 0.0.0.0:0\ninsecure_control: true\nproxies: []\n")}
		}, nil, "", true, "level=WARN"},
		{"token", func(*testing.T) []string {
			return []string{"run", "--control", "0.0.0.0:0", "--config", writeConfig(t, "proxies: []\n")}
		}, []string{envToken + "=s3cret"}, "s3cret", false, "level=INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startEnv(t, tt.env, tt.args(t)...)
			var ctl string
			for ctl == "" {
				// http://0.0.0.0:PORT, or http://[::]:PORT where the
				// wildcard is dual-stack.
				if l, ok := strings.CutPrefix(p.line(t), "control listening on http://"); ok {
					ctl = "http://127.0.0.1:" + l[strings.LastIndex(l, ":")+1:]
				}
			}
			c := client.New(ctl, client.WithToken(tt.token))
			if _, err := c.Proxies(ctx(t)); err != nil {
				t.Errorf("over loopback: %v", err)
			}
			p.stop(t)
			lines := exposedRE.FindAllString(p.stderr.String(), -1)
			if len(lines) != 1 || !strings.Contains(lines[0], tt.wantLevel) || !strings.Contains(lines[0], `reach="the network"`) ||
				strings.Contains(lines[0], "insecure") != tt.insecure {
				t.Errorf("stderr: got %q, want one %s line saying the API is exposed to the network (insecure: %v)", p.stderr.String(), tt.wantLevel, tt.insecure)
			}
		})
	}
}

// TestAllowHost: hosts from --allow-host and allow_hosts are served, with
// the loopback names; other hosts get 403.
func TestAllowHost(t *testing.T) {
	cfg := writeConfig(t, "control: 127.0.0.1:0\nallow_hosts: [from-file.example]\nproxies: []\n")
	p := start(t, "run", "--config", cfg, "--allow-host", "from-flag.example")
	ctl := p.control(t)
	port := ctl[strings.LastIndex(ctl, ":")+1:]
	tests := []struct {
		host string
		want int
	}{
		{"localhost:" + port, http.StatusOK},
		{"from-flag.example:" + port, http.StatusOK},
		{"from-file.example:" + port, http.StatusOK},
		{"evil.example:" + port, http.StatusForbidden},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(ctx(t), "GET", ctl+"/api/v1/proxies", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		req.Header.Set("Origin", "http://"+tt.host)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Host %s: got %d %s, want %d", tt.host, resp.StatusCode, b, tt.want)
		}
		if tt.want == http.StatusForbidden && !strings.Contains(string(b), api.ErrForbiddenHost.Code) {
			t.Errorf("Host %s: body %s, want code %s", tt.host, b, api.ErrForbiddenHost.Code)
		}
	}
	p.stop(t)
}

func TestBadAllowHost(t *testing.T) {
	tests := []struct {
		name string
		args func(t *testing.T) []string
		want string
	}{
		{"flag with a scheme", func(*testing.T) []string {
			return []string{"run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--allow-host", "http://ci.example"}
		}, `--allow-host "http://ci.example": want a host name or address`},
		{"flag with a wildcard", func(*testing.T) []string {
			return []string{"run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--allow-host", "*.example"}
		}, `--allow-host "*.example": want a host name or address`},
		{"config", func(t *testing.T) []string {
			return []string{"run", "--config", writeConfig(t, "allow_hosts: [ok.example, ci.example/x]\nproxies: []\n")}
		}, `:1: invalid config: allow_hosts: "ci.example/x": want a host name or address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.args(t)...)
			if code := p.wait(t); code != exitUsage {
				t.Errorf("exit code: got %d, want %d", code, exitUsage)
			}
			if stderr := p.stderr.String(); !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}
