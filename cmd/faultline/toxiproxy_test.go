package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// toxiproxyRE matches the line toxiproxy-server and run --toxiproxy print
// once toxiproxy's API listens.
var toxiproxyRE = regexp.MustCompile(`^toxiproxy API listening on http://(127\.0\.0\.1:[1-9][0-9]*)`)

// toxiproxyAddr reads stdout up to the toxiproxy API's line and returns its
// address.
func (p *process) toxiproxyAddr(t *testing.T) string {
	t.Helper()
	for {
		if m := toxiproxyRE.FindStringSubmatch(p.line(t)); m != nil {
			return m[1]
		}
	}
}

func TestToxiproxyServerVersion(t *testing.T) {
	p := start(t, "toxiproxy-server", "-version")
	if l := p.line(t); !strings.HasPrefix(l, "toxiproxy-server version 2.12.0 (faultline ") {
		t.Fatalf("-version printed %q", l)
	}
	if code := p.wait(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
}

func TestToxiproxyServer(t *testing.T) {
	up := startEcho(t)
	cfg := filepath.Join(t.TempDir(), "toxiproxy.json")
	if err := os.WriteFile(cfg, []byte(`[{"name":"redis","listen":"127.0.0.1:0","upstream":"`+up+`",
		"toxics":[{"type":"latency","attributes":{"latency":100}}]},
		{"name":"redis:6379","listen":"127.0.0.1:0","upstream":"`+up+`","enabled":false}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "toxiproxy-server", "-host", "127.0.0.1", "-port", "0", "-config", cfg, "-seed", "5")
	name, addr, _ := p.listening(t)
	if name != "redis" {
		t.Fatalf("proxy %q", name)
	}
	if l := p.line(t); !strings.HasPrefix(l, "proxy redis:6379 disabled -> ") {
		t.Fatalf("second proxy: %q", l)
	}
	api := p.toxiproxyAddr(t)
	c := toxiclient.NewClient(api)
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	redis, err := c.Proxy("redis")
	if err != nil || redis.Listen != addr || len(redis.ActiveToxics) != 1 || redis.ActiveToxics[0].Name != "latency_downstream" {
		t.Fatalf("the config's proxy: %+v, %v", redis, err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("round trip %v through the config's 100ms latency", d)
	}
	// faultline's own API on the same port.
	resp, err := http.Get("http://" + api + "/api/v1/proxies/redis")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"seed":5`) {
		t.Fatalf("/api/v1/proxies/redis: %d %s", resp.StatusCode, b)
	}
	if err := c.ResetState(); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
}

func TestToxiproxyServerBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "toxiproxy.json")
	for _, body := range []string{`{"name":"x"}`, `[{"name":"x"}]`, `[{"name":"x","upstream":"a:1","toxics":[{"type":"jam"}]}]`} {
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		p := start(t, "toxiproxy-server", "-port", "0", "-config", cfg)
		if code := p.wait(t); code != exitUsage {
			t.Errorf("config %s: exit %d, want %d; stderr:\n%s", body, code, exitUsage, &p.stderr)
		}
	}
	p := start(t, "toxiproxy-server", "-port", "0", "-config", filepath.Join(t.TempDir(), "missing.json"))
	if code := p.wait(t); code != exitUsage {
		t.Errorf("missing config: exit %d", code)
	}
}

func TestRunToxiproxyFlag(t *testing.T) {
	up := startEcho(t)
	p := start(t, "run", "--listen", "127.0.0.1:0", "--upstream", up, "--control", "127.0.0.1:0", "--toxiproxy", "127.0.0.1:0")
	_, addr, _ := p.listening(t)
	api := p.toxiproxyAddr(t)
	p.control(t)
	c := toxiclient.NewClient(api)
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	mp, err := c.Proxy("main")
	if err != nil || mp.Listen != addr {
		t.Fatalf("the run's proxy through toxiproxy's API: %+v, %v", mp, err)
	}
	if _, err := mp.AddToxic("", "reset_peer", "", 1, nil); err != nil {
		t.Fatal(err)
	}
	p.stop(t)

	p = start(t, "run", "--listen", "127.0.0.1:0", "--upstream", up, "--control", "127.0.0.1:0", "--toxiproxy", "0.0.0.0:0")
	if code := p.wait(t); code != exitUsage {
		t.Fatalf("--toxiproxy beyond loopback: exit %d; stderr:\n%s", code, &p.stderr)
	}
}

// -host 0.0.0.0, as toxiproxy's Docker image runs: served without a token,
// as toxiproxy is, with a warning.
func TestToxiproxyServerAllInterfaces(t *testing.T) {
	p := start(t, "toxiproxy-server", "-host", "0.0.0.0", "-port", "0")
	var port string
	for port == "" {
		if m := regexp.MustCompile(`^toxiproxy API listening on http://(?:0\.0\.0\.0|\[::\]):([1-9][0-9]*)`).FindStringSubmatch(p.line(t)); m != nil {
			port = m[1]
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /version: %d", resp.StatusCode)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "without a token (insecure)") {
		t.Fatalf("no warning on stderr:\n%s", &p.stderr)
	}
}
