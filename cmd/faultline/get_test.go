package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
)

func TestProxyGetCommand(t *testing.T) {
	in := startInstance(t)
	out := in.cli(t, nil, "proxy", "get", "main").ok(t, "proxy get")
	for _, want := range []string{"name: main", "listen: " + in.addr, "upstream: " + in.echo, "mode: dial", "enabled: true"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("proxy get: got %q, want the line %q", out, want)
		}
	}
	var p api.Proxy
	out = in.cli(t, nil, "proxy", "get", "main", "--json").ok(t, "proxy get --json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Name != "main" || p.Listen != in.addr {
		t.Errorf("proxy get --json: got %q (%v), want main on %s", out, err, in.addr)
	}
	in.cli(t, nil, "proxy", "get", "nope").failed(t, "proxy get nope", exitError, `no proxy named "nope"`)
	in.cli(t, nil, "proxy", "get").failed(t, "proxy get without NAME", exitUsage, "proxy get: want one NAME")
	in.p.stop(t)
}

func TestPoolStatsCommand(t *testing.T) {
	in := startInstance(t)
	in.cli(t, nil, "proxy", "add", "pooled", "--upstream", in.echo, "--mode", "pool").ok(t, "proxy add pooled")
	ps, err := in.c.Proxy(context.Background(), "pooled")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ps.Listen, "hello")
	out := in.cli(t, nil, "pool", "stats", "pooled").ok(t, "pool stats")
	for _, want := range []string{"idle:", "busy:", "dialed: 1", "reused:", "retried:", "discarded:"} {
		if !strings.Contains(out, want) {
			t.Errorf("pool stats: got %q, want it to contain %q", out, want)
		}
	}
	var p api.Pool
	out = in.cli(t, nil, "pool", "stats", "pooled", "--json").ok(t, "pool stats --json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Dialed != 1 {
		t.Errorf("pool stats --json: got %q (%v), want dialed 1", out, err)
	}
	in.p.stop(t)
}

func TestFaultGetAndUpdateCommands(t *testing.T) {
	in := startInstance(t)
	in.cli(t, nil, "fault", "add", "main", "--kind", "latency", "--delay", "150ms", "--dir", "down", "--name", "slow").ok(t, "fault add")

	out := in.cli(t, nil, "fault", "get", "main", "slow").ok(t, "fault get")
	if row := tableRow(out, "slow"); len(row) < 3 || row[1] != "latency" || row[2] != "down" || !strings.Contains(out, "delay=150ms") {
		t.Errorf("fault get: got %q, want slow latency down delay=150ms", out)
	}
	// Flags change only what they name: the direction stays down.
	in.cli(t, nil, "fault", "update", "main", "slow", "--delay", "300ms").ok(t, "fault update --delay")
	f, err := in.c.Fault(context.Background(), "main", "slow")
	if err != nil || f.Delay != 300e6 || f.Dir != faults.Down {
		t.Errorf("after fault update --delay 300ms: got %+v, %v; want delay 300ms, dir down", f, err)
	}
	// JSON replaces the fault: the direction is back to both.
	in.cli(t, nil, "fault", "update", "main", "slow", `{"kind":"latency","delay":"50ms"}`).ok(t, "fault update JSON")
	out = in.cli(t, nil, "fault", "get", "main", "slow", "--json").ok(t, "fault get --json")
	if err := json.Unmarshal([]byte(out), &f); err != nil || f.Delay != 50e6 || f.Dir != faults.Both || f.Name != "slow" {
		t.Errorf("fault get --json after update: got %q (%v), want slow, 50ms both ways", out, err)
	}
	in.cli(t, nil, "fault", "get", "main", "nope").failed(t, "fault get nope", exitError, "(not_found)")
	in.cli(t, nil, "fault", "update", "main", "nope", "--delay", "1s").failed(t, "fault update nope", exitError, "(not_found)")
	in.cli(t, nil, "fault", "update", "main", "slow").failed(t, "fault update without a change", exitUsage, "fault update: give the settings to change")
	in.cli(t, nil, "fault", "update", "main", "slow", "--delay", "5").failed(t, "fault update --delay 5", exitUsage, "add a unit")
	in.p.stop(t)
}

func TestResetCommand(t *testing.T) {
	in := startInstance(t)
	in.cli(t, nil, "fault", "add", "main", "--kind", "stall").ok(t, "fault add")
	in.cli(t, nil, "proxy", "update", "main", "--enabled=false").ok(t, "proxy update --enabled=false")
	out := in.cli(t, nil, "reset").ok(t, "reset")
	if !strings.Contains(out, "removed every fault") {
		t.Errorf("reset: got %q, want it to say what it did", out)
	}
	p, err := in.c.Proxy(context.Background(), "main")
	if err != nil || p.Faults != 0 || !p.Enabled {
		t.Errorf("after reset: got %+v, %v; want no faults, enabled", p, err)
	}
	in.cli(t, nil, "reset", "x").failed(t, "reset x", exitUsage, `unexpected argument "x"`)
	in.p.stop(t)
}
