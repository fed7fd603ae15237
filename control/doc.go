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
// # Other APIs over the same proxies
//
// Package control/toxiproxy answers toxiproxy's API by calling the
// server's methods (Proxy, UpdateProxy, AddFault, Conns, ...). Mount serves
// such a handler on the server's own port, behind the same checks (paths
// outside /api/ and /metrics go to it); ListenExtra serves it on an address
// of its own, with the Host and Origin checks but no token (its clients
// send none), so only on loopback unless Options.Insecure.
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
// # The dashboard
//
// GET / (unless Mount gave / to another API) and GET /dashboard/ serve a
// page, embedded in the binary, that shows and drives the proxies, faults,
// live connections, a timeline and the event stream through this same HTTP
// API (a long poll of /api/v1/events for the stream), asking for the token
// if there is one. Its files hold no data and need no token; the API calls
// they make do. docs/pictures.md describes it.
//
// # Security
//
// Every request, the websocket handshake included, passes three checks
// (docs/security.md explains them):
//
//   - Host: it must be localhost or a name under .localhost, a loopback
//     address (127.0.0.0/8, ::1), the address the request came in on, the
//     name Listen was given, or one of Options.AllowHosts; anything else is
//     403 (forbidden_host), GET included. This is what stops DNS rebinding:
//     a page whose name rebinds to 127.0.0.1 still sends its own name.
//   - Origin: browsers send one; it must be http or https on the request's
//     own host and port, or listed in Options.AllowOrigins, else 403
//     (forbidden_origin). Programs send none.
//   - Token: with Options.Token every request but /api/v1/healthz and the
//     dashboard's static files needs "Authorization: Bearer TOKEN" (the
//     scheme in any case), else 401.
//
// Listen refuses an address beyond loopback without a Token unless
// Options.Insecure (ErrInsecureListen), and logs one line saying what it
// exposes. Request bodies and websocket messages are limited to
// Options.MaxBody bytes.
package control
