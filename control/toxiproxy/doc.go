// Package toxiproxy answers toxiproxy's HTTP API (v2.12.0) over a faultline
// control server, so that toxiproxy's clients (its Go client and CLI, the
// Ruby gem, toxiproxy-java and Testcontainers, toxiproxy-node-client) drive
// faultline unchanged.
//
// It is a translation layer, not a second proxy: a toxiproxy proxy is a
// proxy of the control server, and a toxic is one or two faults on it
// (latency, bandwidth, stall, slow-close, blackhole and idle-close, reset,
// slice, limit). A proxy made through either API is seen and driven through
// both, and everything it does goes to the control server's one event log,
// websocket and metrics.
//
//	srv := control.New(control.Options{})
//	tp := toxiproxy.New(srv, toxiproxy.Options{Seed: 42})
//	srv.Mount(tp) // toxiproxy's paths and /api/v1 on one port
//	addr, err := srv.Listen("localhost:8474")
//
// How each toxic maps to faults, and every way this API deliberately
// differs from toxiproxy's, is in docs/toxiproxy.md.
package toxiproxy
