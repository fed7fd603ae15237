// Package api holds the wire types of faultline's control API: the JSON
// bodies of its HTTP endpoints and websocket messages, and its errors. The
// control server (package control) and the Go client (package
// control/client) both use them.
//
// All endpoints live under /api/v1 (Prefix). Durations are Go duration
// strings ("150ms"). Errors are a JSON body {"error": "...", "code": "...",
// "status": N} with N the HTTP status of the response (see Error). Request bodies (and
// websocket requests) are decoded strictly: an unknown key, a key in the
// wrong case ("KIND" for "kind") and a key given twice are refused with
// 400, as is any value past its bound (docs/limits.md); a proxy holds at
// most proxy.MaxFaults faults (409 too_many_faults beyond).
//
//	GET    /api/v1/version                          Version
//	GET    /api/v1/healthz                          {"status":"ok"} (no token needed)
//	POST   /api/v1/reset                            remove all faults, enable all proxies; 204
//	GET    /api/v1/proxies                          []Proxy
//	POST   /api/v1/proxies                          ProxySpec -> 201 Proxy
//	GET    /api/v1/proxies/{name}                   Proxy
//	PATCH  /api/v1/proxies/{name}                   ProxyUpdate -> Proxy
//	DELETE /api/v1/proxies/{name}                   204
//	GET    /api/v1/proxies/{name}/faults            []faults.Fault
//	POST   /api/v1/proxies/{name}/faults            faults.Fault -> 201 faults.Fault, once in force
//	DELETE /api/v1/proxies/{name}/faults            remove all the proxy's faults; 204
//	GET    /api/v1/proxies/{name}/faults/{fault}    faults.Fault
//	PUT    /api/v1/proxies/{name}/faults/{fault}    faults.Fault -> faults.Fault, once in force
//	DELETE /api/v1/proxies/{name}/faults/{fault}    204, once cleared
//	GET    /api/v1/proxies/{name}/conns             []Conn
//	DELETE /api/v1/proxies/{name}/conns/{id}?how=FIN|RST   204
//	GET    /api/v1/proxies/{name}/pool              Pool
//	POST   /api/v1/proxies/{name}/pool/drain        Drained
//	GET    /api/v1/events?after=ID&timeout=D&proxy=P&kind=K,K&limit=N   Events
//	GET    /api/v1/ws                               websocket: Request in, Reply and Message out
//	GET    /metrics                                 Prometheus metrics
package api

import (
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// Prefix is the path every API endpoint starts with.
const Prefix = "/api/v1"

// DefaultControlAddr is where the control server listens unless told
// otherwise: loopback only.
const DefaultControlAddr = "127.0.0.1:8470"

// Version answers GET /api/v1/version.
type Version struct {
	Version string `json:"version"` // faultline's version
	Go      string `json:"go"`      // the Go version it was built with
}

// PoolSpec is a proxy's pool configuration (see proxy.PoolConfig). Zero
// fields take the proxy's defaults. A negative number means no limit for
// size and the durations, and no idle connection kept for max_idle; it
// reads back as set (not as the 0 the proxy runs it as), so that what GET
// returns means the same when sent back. Durations are at most
// proxy.MaxTimeout, sizes at most proxy.MaxPoolSize.
type PoolSpec struct {
	Size        int             `json:"size,omitempty"`
	MaxIdle     int             `json:"max_idle,omitempty"`
	IdleTimeout faults.Duration `json:"idle_timeout,omitzero"`
	MaxLifetime faults.Duration `json:"max_lifetime,omitzero"`
}

// ProxySpec creates a proxy (POST /api/v1/proxies, and each entry of the
// binary's config file).
type ProxySpec struct {
	Name        string          `json:"name"`                  // required: 1 to 64 letters, digits, '.', '_', '-'; not "." or ".."
	Listen      string          `json:"listen,omitempty"`      // host:port; default "127.0.0.1:0", a free port
	Upstream    string          `json:"upstream"`              // required: host:port
	Mode        string          `json:"mode,omitempty"`        // "dial" (default) or "pool"
	DialTimeout faults.Duration `json:"dial_timeout,omitzero"` // default 5s; negative: no bound (reads back as set); at most 24h
	Pool        PoolSpec        `json:"pool,omitzero"`         // pool mode only
	Seed        uint64          `json:"seed,omitempty"`        // seeds faults that bring no seed
	Disabled    bool            `json:"disabled,omitempty"`    // create it without listening
	Faults      []faults.Fault  `json:"faults,omitempty"`      // faults to start with
}

// ProxyUpdate changes a proxy (PATCH /api/v1/proxies/{name}); absent fields
// are left as they are. Changing anything but Enabled restarts the proxy
// on its new settings: its live connections are closed, its faults kept.
// A proxy that is not enabled keeps its faults and listens nowhere.
type ProxyUpdate struct {
	Listen      *string          `json:"listen,omitempty"`
	Upstream    *string          `json:"upstream,omitempty"`
	Mode        *string          `json:"mode,omitempty"`
	DialTimeout *faults.Duration `json:"dial_timeout,omitempty"`
	Pool        *PoolSpec        `json:"pool,omitempty"`
	Seed        *uint64          `json:"seed,omitempty"`
	Enabled     *bool            `json:"enabled,omitempty"`
}

// Proxy describes a proxy. The settings are those it runs with, defaults
// filled in; a disabled proxy's are those it will run with when enabled,
// and its Listen is the address it will listen on (port 0: a free one).
type Proxy struct {
	Name        string          `json:"name"`
	Listen      string          `json:"listen"` // the real address, port included
	Upstream    string          `json:"upstream"`
	Mode        string          `json:"mode"`
	DialTimeout faults.Duration `json:"dial_timeout"`
	Pool        PoolSpec        `json:"pool,omitzero"` // pool mode only
	Seed        uint64          `json:"seed"`
	Enabled     bool            `json:"enabled"`
	Conns       int             `json:"conns"`  // live connections (one ends here a moment before its "closed" event is logged)
	Faults      int             `json:"faults"` // faults added
}

// Conn describes a live connection of a proxy.
type Conn struct {
	proxy.ConnInfo
	Age faults.Duration `json:"age"` // since it was accepted
}

// Pool answers GET /api/v1/proxies/{name}/pool.
type Pool struct {
	proxy.PoolStats
}

// Drained answers POST /api/v1/proxies/{name}/pool/drain.
type Drained struct {
	Drained int `json:"drained"` // idle connections closed
}

// Event is a proxy's event in the control server's log. ID orders all the
// log's events, of every proxy, from 1; read them with
// GET /api/v1/events?after=ID, or a websocket subscription.
type Event struct {
	ID    uint64      `json:"id"`
	Proxy string      `json:"proxy"`
	Event proxy.Event `json:"event"`
}

// Events answers GET /api/v1/events: the events after the cursor that match
// the query, oldest first, and the cursor to pass next: the ID of the last
// event the server looked at, matching or not, so that the next read starts
// after it (the cursor given if there was none).
type Events struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next"`
}

// Request is a websocket message from the client. ID is echoed in the one
// Reply the request gets. Ops and the fields they read:
//
//	inject       Proxy, Fault: add the fault; ok once it is in force
//	update       Proxy, Fault: replace the fault of that name
//	clear        Proxy, Name: remove the fault
//	clear-all    Proxy: remove every fault of the proxy, or of all proxies if Proxy is empty
//	subscribe    Proxy (empty: all), Kinds (empty: all), After (absent: from now; N: the events after N, 0 the first kept)
//	unsubscribe  Sub
type Request struct {
	ID    string        `json:"id"`
	Op    string        `json:"op"`
	Proxy string        `json:"proxy,omitempty"`
	Fault *faults.Fault `json:"fault,omitempty"`
	Name  string        `json:"name,omitempty"`
	Kinds []string      `json:"kinds,omitempty"`
	After *uint64       `json:"after,omitempty"`
	Sub   string        `json:"sub,omitempty"`
}

// Websocket ops.
const (
	OpInject      = "inject"
	OpUpdate      = "update"
	OpClear       = "clear"
	OpClearAll    = "clear-all"
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
)

// Message is a websocket message from the server: a Reply to a Request
// (Type "ok" or "error") or a subscribed Event (Type "event").
type Message struct {
	Type string `json:"type"` // "ok", "error" or "event"

	// Replies.
	ID    string        `json:"id,omitempty"`    // the Request's
	Fault *faults.Fault `json:"fault,omitempty"` // inject, update: the fault as in force
	Sub   string        `json:"sub,omitempty"`   // subscribe, and each event: the subscription
	Error *Error        `json:"error,omitempty"` // Type "error"

	// Events.
	Event *Event `json:"event,omitempty"`
}

// Message types.
const (
	TypeOK    = "ok"
	TypeError = "error"
	TypeEvent = "event"
)

// WSPingInterval is how often the server pings a websocket client; a
// client that has not answered (pong) within WSPongWait is dropped.
const (
	WSPingInterval = 20 * time.Second
	WSPongWait     = 60 * time.Second
)
