package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (api.Version, error) {
	var v api.Version
	err := c.do(ctx, http.MethodGet, c.endpoint(nil, "version"), nil, &v)
	return v, err
}

// Healthz returns nil if the server answers its health check.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, c.endpoint(nil, "healthz"), nil, nil)
}

// Reset removes every fault of every proxy and enables every proxy.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, c.endpoint(nil, "reset"), nil, nil)
}

// Proxies returns every proxy.
func (c *Client) Proxies(ctx context.Context) ([]api.Proxy, error) {
	var ps []api.Proxy
	err := c.do(ctx, http.MethodGet, c.endpoint(nil, "proxies"), nil, &ps)
	return ps, err
}

// CreateProxy creates a proxy and returns it, with the address it really
// listens on.
func (c *Client) CreateProxy(ctx context.Context, spec api.ProxySpec) (api.Proxy, error) {
	var p api.Proxy
	err := c.do(ctx, http.MethodPost, c.endpoint(nil, "proxies"), spec, &p)
	return p, err
}

// Proxy returns the proxy named name.
func (c *Client) Proxy(ctx context.Context, name string) (api.Proxy, error) {
	var p api.Proxy
	err := c.do(ctx, http.MethodGet, c.endpoint(nil, "proxies", name), nil, &p)
	return p, err
}

// UpdateProxy changes the proxy named name (see api.ProxyUpdate) and
// returns it as it is now.
func (c *Client) UpdateProxy(ctx context.Context, name string, u api.ProxyUpdate) (api.Proxy, error) {
	var p api.Proxy
	err := c.do(ctx, http.MethodPatch, c.endpoint(nil, "proxies", name), u, &p)
	return p, err
}

// DeleteProxy closes and removes the proxy named name.
func (c *Client) DeleteProxy(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, c.endpoint(nil, "proxies", name), nil, nil)
}

// Faults returns the faults of the proxy named proxyName, in the order they
// were added.
func (c *Client) Faults(ctx context.Context, proxyName string) ([]faults.Fault, error) {
	var fs []faults.Fault
	err := c.do(ctx, http.MethodGet, c.endpoint(nil, "proxies", proxyName, "faults"), nil, &fs)
	return fs, err
}

// AddFault adds f to the proxy named proxyName and returns it with its
// defaults (and its name, if it had none) filled in. It returns once the
// fault is in force.
func (c *Client) AddFault(ctx context.Context, proxyName string, f faults.Fault) (faults.Fault, error) {
	var out faults.Fault
	err := c.do(ctx, http.MethodPost, c.endpoint(nil, "proxies", proxyName, "faults"), f, &out)
	return out, err
}

// Fault returns the fault named name of the proxy named proxyName.
func (c *Client) Fault(ctx context.Context, proxyName, name string) (faults.Fault, error) {
	var out faults.Fault
	err := c.do(ctx, http.MethodGet, c.endpoint(nil, "proxies", proxyName, "faults", name), nil, &out)
	return out, err
}

// UpdateFault replaces the fault named f.Name of the proxy named proxyName
// with f and returns it as in force, once it is.
func (c *Client) UpdateFault(ctx context.Context, proxyName string, f faults.Fault) (faults.Fault, error) {
	var out faults.Fault
	err := c.do(ctx, http.MethodPut, c.endpoint(nil, "proxies", proxyName, "faults", f.Name), f, &out)
	return out, err
}

// RemoveFault removes the fault named name from the proxy named proxyName,
// returning once it acts on no connection.
func (c *Client) RemoveFault(ctx context.Context, proxyName, name string) error {
	return c.do(ctx, http.MethodDelete, c.endpoint(nil, "proxies", proxyName, "faults", name), nil, nil)
}

// ClearFaults removes every fault of the proxy named proxyName.
func (c *Client) ClearFaults(ctx context.Context, proxyName string) error {
	return c.do(ctx, http.MethodDelete, c.endpoint(nil, "proxies", proxyName, "faults"), nil, nil)
}

// Conns returns the live connections of the proxy named proxyName.
func (c *Client) Conns(ctx context.Context, proxyName string) ([]api.Conn, error) {
	var cs []api.Conn
	err := c.do(ctx, http.MethodGet, c.endpoint(nil, "proxies", proxyName, "conns"), nil, &cs)
	return cs, err
}

// CloseConn closes the live connection id of the proxy named proxyName,
// toward the client with how (proxy.FIN or proxy.RST; zero: the server's
// default).
func (c *Client) CloseConn(ctx context.Context, proxyName string, id uint64, how proxy.CloseHow) error {
	var q url.Values
	if how != 0 {
		q = url.Values{"how": {how.String()}}
	}
	return c.do(ctx, http.MethodDelete, c.endpoint(q, "proxies", proxyName, "conns", strconv.FormatUint(id, 10)), nil, nil)
}

// Pool returns the pool counters of the proxy named proxyName.
func (c *Client) Pool(ctx context.Context, proxyName string) (api.Pool, error) {
	var p api.Pool
	err := c.do(ctx, http.MethodGet, c.endpoint(nil, "proxies", proxyName, "pool"), nil, &p)
	return p, err
}

// DrainPool closes the idle pooled connections of the proxy named proxyName
// and returns how many it closed.
func (c *Client) DrainPool(ctx context.Context, proxyName string) (int, error) {
	var d api.Drained
	err := c.do(ctx, http.MethodPost, c.endpoint(nil, "proxies", proxyName, "pool", "drain"), nil, &d)
	return d.Drained, err
}

// EventsQuery selects the events Events returns.
type EventsQuery struct {
	// After is the cursor: events with a greater ID are returned. Pass the
	// Next of the previous answer to read on without gaps or repeats.
	After uint64
	// Timeout, if positive, makes the server wait up to this long for an
	// event when there is none after the cursor (a long poll). If zero, it
	// answers at once.
	Timeout time.Duration
	// Proxy, if set, selects the events of that proxy only.
	Proxy string
	// Kinds, if set, selects events of these kinds ("accepted",
	// "fault-applied", ...) only.
	Kinds []string
	// Limit, if positive, is the most events returned; if zero, the
	// server's default.
	Limit int
}

func (q EventsQuery) values() url.Values {
	v := url.Values{}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Timeout > 0 {
		v.Set("timeout", q.Timeout.String())
	}
	if q.Proxy != "" {
		v.Set("proxy", q.Proxy)
	}
	if len(q.Kinds) > 0 {
		v.Set("kind", strings.Join(q.Kinds, ","))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Events reads the events after q.After, waiting up to q.Timeout for one
// if there is none yet. An empty answer's Next is the cursor given. If the
// events after the cursor are no longer kept, the error matches
// api.ErrCursorExpired.
func (c *Client) Events(ctx context.Context, q EventsQuery) (api.Events, error) {
	var evs api.Events
	err := c.do(ctx, http.MethodGet, c.endpoint(q.values(), "events"), nil, &evs)
	return evs, err
}
