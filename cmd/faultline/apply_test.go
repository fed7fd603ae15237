package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// TestApplyCommand checks that apply makes the proxies and faults of a
// config file so, and that applying it again changes nothing.
func TestApplyCommand(t *testing.T) {
	in := startInstance(t)
	ctx := context.Background()
	up2 := startEcho(t)
	// main exists with another upstream and a fault the file changes; db
	// does not exist.
	if _, err := in.c.AddFault(ctx, "main", faults.Fault{Name: "slow", Kind: faults.KindLatency, Delay: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.c.AddFault(ctx, "main", faults.Fault{Name: "kept", Kind: faults.KindStall}); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `control: 127.0.0.1:0   # for run: apply ignores it
proxies:
  - name: main
    upstream: `+up2+`
    faults:
      - {name: slow, kind: latency, delay: 150ms, dir: down}
      - {kind: corrupt, prob: 0.5}
  - name: db
    upstream: `+in.echo+`
    mode: pool
    pool: {size: 4}
    faults:
      - {name: refuse, kind: refuse, target: {which: new, every: 2}}
`)
	out := in.cli(t, nil, "apply", path).ok(t, "apply")
	for _, want := range []string{
		"proxy main: updated (upstream)",
		"fault main/slow: updated",
		"fault main/corrupt-",
		"proxy db: created",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply: got %q, want it to say %q", out, want)
		}
	}
	p, err := in.c.Proxy(ctx, "main")
	if err != nil || p.Upstream != up2 || p.Listen != in.addr {
		t.Errorf("main after apply: got %+v, %v; want upstream %s, still on %s", p, err, up2, in.addr)
	}
	if f, err := in.c.Fault(ctx, "main", "slow"); err != nil || f.Delay != 150e6 || f.Dir != faults.Down {
		t.Errorf("main's slow after apply: got %+v, %v; want 150ms down", f, err)
	}
	if _, err := in.c.Fault(ctx, "main", "kept"); err != nil {
		t.Errorf("main's kept after apply: %v; want it kept (apply removes nothing)", err)
	}
	db, err := in.c.Proxy(ctx, "db")
	if err != nil || db.Mode != "pool" || db.Pool.Size != 4 || db.Faults != 1 {
		t.Errorf("db after apply: got %+v, %v; want pool mode, size 4, one fault", db, err)
	}
	before := faultCounts(t, in)

	// Again: nothing to do.
	out = in.cli(t, nil, "apply", path).ok(t, "apply again")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(l, ": unchanged") {
			t.Errorf("apply again: got the line %q, want every line to end \": unchanged\"; all:\n%s", l, out)
		}
	}
	if after := faultCounts(t, in); after != before {
		t.Errorf("faults after applying twice: got %v, want %v", after, before)
	}

	// A disabled proxy is enabled again; a changed pool setting updates.
	in.cli(t, nil, "proxy", "update", "db", "--enabled=false").ok(t, "proxy update db --enabled=false")
	out = in.cli(t, nil, "apply", path).ok(t, "apply after disabling db")
	if !strings.Contains(out, "proxy db: updated (enabled)") {
		t.Errorf("apply after disabling db: got %q, want db updated (enabled)", out)
	}

	in.cli(t, nil, "apply").failed(t, "apply without FILE", exitUsage, "apply: want one FILE")
	in.cli(t, nil, "apply", "testdata/nope.yaml").failed(t, "apply of a missing file", exitUsage, "no such file")
	in.p.stop(t)
}

// faultCounts says how many faults each proxy has.
func faultCounts(t *testing.T, in *instance) string {
	t.Helper()
	ps, err := in.c.Proxies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, p := range ps {
		m[p.Name] = p.Faults
	}
	return fmt.Sprint(m)
}
