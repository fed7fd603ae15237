// Package control is faultline's control plane: a server that owns named
// proxies and serves an HTTP JSON API and a websocket endpoint to manage
// them, their faults, connections and pools, and to read their events.
// Package api lists the endpoints and wire types; package client is the Go
// client.
//
// The faultline binary runs one; a Go program can run its own:
//
//	srv := control.New(control.Options{Token: os.Getenv("FAULTLINE_TOKEN")})
//	defer srv.Close()
//	if _, err := srv.CreateProxy(api.ProxySpec{Name: "redis", Upstream: "127.0.0.1:6379"}); err != nil {
//		log.Fatal(err)
//	}
//	addr, err := srv.Listen("127.0.0.1:8470")
//
// # Events
//
// Every event of every proxy goes into one log with IDs counted from 1.
// GET /api/v1/events?after=ID returns the events after a cursor and the
// next cursor, waiting up to ?timeout for one to arrive; websocket
// subscriptions stream the same log. The log keeps Options.EventLog events:
// a reader whose cursor points at events already overwritten gets 410
// (cursor_expired) over HTTP, and a websocket subscriber is dropped with a
// close frame (1008) that says it fell behind, so no reader ever misses an
// event without being told. Proxies never wait for readers.
//
// # Security
//
// The server trusts its network: the binary listens on loopback unless told
// otherwise. With Options.Token every request but /api/v1/healthz needs
// "Authorization: Bearer TOKEN". Requests from browsers carry an Origin
// header; one that is neither the server's own host nor in
// Options.AllowOrigins is refused (403), on HTTP and on the websocket
// handshake alike. Request bodies and websocket messages are limited to
// Options.MaxBody bytes.
package control
