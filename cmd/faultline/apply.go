package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
)

// runApply is "faultline apply FILE": it makes the proxies and faults of a
// config file so on a running faultline, creating, updating or leaving
// each, so that applying a file twice changes nothing the second time. It
// removes nothing: proxies and faults the file does not name are left. A
// fault without a name in the file counts as there when the proxy has a
// fault equal to it. The file's control settings (control, token, ...)
// are for run, and ignored.
func runApply(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cf clientFlags
	fs := newFlagSet("apply")
	cf.register(fs, false)
	pos, code, done := parseN(fs, args, 1, "apply: want one FILE", stdout, stderr)
	if done {
		return code
	}
	cfg, err := loadConfig(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "faultline: %v\n", err)
		return exitUsage
	}
	c := cf.client()
	for _, ns := range cfg.Proxies {
		if err := applyProxy(ctx, c, ns.spec, stdout); err != nil {
			fmt.Fprintf(stderr, "faultline: %s: proxy %q: %s\n", ns.where, ns.spec.Name, errText(err))
			if unreachable(err) {
				cf.hint(stderr)
			}
			return exitError
		}
	}
	return exitOK
}

// applyProxy makes the proxy spec so, then each of its faults.
func applyProxy(ctx context.Context, c *client.Client, spec api.ProxySpec, stdout io.Writer) error {
	p, err := c.Proxy(ctx, spec.Name)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.ErrNotFound.Code {
		if _, err := c.CreateProxy(ctx, spec); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "proxy %s: created\n", spec.Name)
		for _, f := range spec.Faults {
			fmt.Fprintf(stdout, "fault %s/%s: added\n", spec.Name, faultLabel(f))
		}
		return nil
	}
	if err != nil {
		return err
	}
	u, changed := proxyChange(spec, p)
	if len(changed) > 0 {
		if _, err := c.UpdateProxy(ctx, spec.Name, u); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "proxy %s: updated (%s)\n", spec.Name, strings.Join(changed, ", "))
	} else {
		fmt.Fprintf(stdout, "proxy %s: unchanged\n", spec.Name)
	}
	have, err := c.Faults(ctx, spec.Name)
	if err != nil {
		return err
	}
	for _, f := range spec.Faults {
		what, err := applyFault(ctx, c, spec.Name, f, have)
		if err != nil {
			return fmt.Errorf("fault %s: %w", faultLabel(f), err)
		}
		fmt.Fprintf(stdout, "fault %s/%s: %s\n", spec.Name, what.name, what.did)
	}
	return nil
}

// faultLabel names f in apply's output: its name, or its kind when it has
// none.
func faultLabel(f faults.Fault) string {
	if f.Name != "" {
		return f.Name
	}
	return string(f.Kind) + " (unnamed)"
}

// applied is what applyFault did to a fault.
type applied struct{ name, did string }

// applyFault makes fault f of proxy so, given the proxy's faults have.
func applyFault(ctx context.Context, c *client.Client, proxyName string, f faults.Fault, have []faults.Fault) (applied, error) {
	want, err := f.Normalized()
	if err != nil {
		return applied{}, err
	}
	if f.Name == "" {
		for _, h := range have {
			if sameFault(want, h) {
				return applied{h.Name, "unchanged"}, nil
			}
		}
		got, err := c.AddFault(ctx, proxyName, f)
		return applied{got.Name, "added"}, err
	}
	i := slices.IndexFunc(have, func(h faults.Fault) bool { return h.Name == f.Name })
	switch {
	case i < 0:
		_, err := c.AddFault(ctx, proxyName, f)
		return applied{f.Name, "added"}, err
	case sameFault(want, have[i]):
		return applied{f.Name, "unchanged"}, nil
	case have[i].Kind != f.Kind: // a fault cannot change kind
		if err := c.RemoveFault(ctx, proxyName, f.Name); err != nil {
			return applied{}, err
		}
		_, err := c.AddFault(ctx, proxyName, f)
		return applied{f.Name, "replaced"}, err
	}
	_, err = c.UpdateFault(ctx, proxyName, f)
	return applied{f.Name, "updated"}, err
}

// sameFault reports whether the faults a and b (both normalized) act the
// same, whatever their names.
func sameFault(a, b faults.Fault) bool {
	a.Name, b.Name = "", ""
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

// proxyChange returns the change that makes proxy p as spec says, and the
// names of the settings it changes. A setting spec leaves at its zero
// value is not compared, but for the mode (dial) and the enabled state
// (spec's Disabled false: enabled); a listen address with port 0 matches
// any port, and one with a host name (not an address) any host.
func proxyChange(spec api.ProxySpec, p api.Proxy) (api.ProxyUpdate, []string) {
	var (
		u       api.ProxyUpdate
		changed []string
	)
	if spec.Listen != "" && !sameListen(spec.Listen, p.Listen) {
		u.Listen = &spec.Listen
		changed = append(changed, "listen")
	}
	if spec.Upstream != p.Upstream {
		u.Upstream = &spec.Upstream
		changed = append(changed, "upstream")
	}
	mode := spec.Mode
	if mode == "" {
		mode = "dial"
	}
	if mode != p.Mode {
		u.Mode = &mode
		changed = append(changed, "mode")
	}
	if spec.DialTimeout != 0 && spec.DialTimeout != p.DialTimeout {
		u.DialTimeout = &spec.DialTimeout
		changed = append(changed, "dial_timeout")
	}
	if mode == "pool" && !samePool(spec.Pool, p.Pool) {
		u.Pool = &spec.Pool
		changed = append(changed, "pool")
	}
	if spec.Seed != 0 && spec.Seed != p.Seed {
		u.Seed = &spec.Seed
		changed = append(changed, "seed")
	}
	if enabled := !spec.Disabled; enabled != p.Enabled {
		u.Enabled = &enabled
		changed = append(changed, "enabled")
	}
	return u, changed
}

// samePool reports whether the pool settings have match those want gives
// (its zero fields: any).
func samePool(want, have api.PoolSpec) bool {
	return (want.Size == 0 || want.Size == have.Size) &&
		(want.MaxIdle == 0 || want.MaxIdle == have.MaxIdle) &&
		(want.IdleTimeout == 0 || want.IdleTimeout == have.IdleTimeout) &&
		(want.MaxLifetime == 0 || want.MaxLifetime == have.MaxLifetime)
}

// sameListen reports whether a proxy listening on have listens where want
// asks: the same port unless want's is 0, the same address unless want
// names a host.
func sameListen(want, have string) bool {
	wh, wp, err := net.SplitHostPort(want)
	if err != nil {
		return false
	}
	hh, hp, err := net.SplitHostPort(have)
	if err != nil {
		return false
	}
	if wp != "0" && wp != hp {
		return false
	}
	wa, werr := netip.ParseAddr(wh)
	ha, herr := netip.ParseAddr(hh)
	if werr != nil || herr != nil {
		return true // a name: whatever it resolved to
	}
	return wa.Unmap() == ha.Unmap()
}
