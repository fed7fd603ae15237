// Command faultline runs faultline proxies and drives them.
//
//	faultline run [--name NAME] --listen ADDR --upstream ADDR [--mode dial|pool] [pool flags]
//	              [--config FILE] [--control ADDR] [--token TOKEN] [--allow-origin URL]...
//	              [--allow-host HOST]... [--insecure-control] [--toxiproxy ADDR]
//	faultline demo [--listen ADDR] [--control ADDR]
//	faultline toxiproxy-server [-host HOST] [-port PORT] [-config FILE] [-seed N]
//	faultline proxy ls|get|add|update|rm ...
//	faultline fault ls|get|add|update|rm PROXY ...
//	faultline conns PROXY
//	faultline conns close PROXY ID [--rst]
//	faultline pool drain|stats PROXY
//	faultline events [--proxy P] [--kind K,...]
//	faultline reset
//	faultline apply FILE
//	faultline version
//
// run starts the proxy its flags define and every proxy of its --config
// file (YAML), each with the faults it lists, and the control server
// (HTTP API and websocket, on 127.0.0.1:8470 unless --control says
// otherwise; port 0 picks a free one). It prints
// "proxy NAME listening on HOST:PORT -> UPSTREAM" for each proxy, then
// "control listening on http://HOST:PORT", and serves until SIGINT or
// SIGTERM. demo does the same with a built-in echo upstream and prints what
// to try. Both log one line to stderr saying what the control API exposes,
// and refuse (exit 2) to serve it beyond loopback without a token unless
// --insecure-control; it answers only to requests whose Host is a loopback
// name or address, its own address or an --allow-host (see
// docs/security.md).
//
// toxiproxy-server answers toxiproxy's HTTP API (and faultline's own) on
// one port, with toxiproxy-server's flags and defaults (localhost:8474), so
// that toxiproxy's clients work unchanged; run --toxiproxy ADDR serves
// toxiproxy's API beside a run (see docs/toxiproxy.md).
//
// The other commands are clients of a running faultline, through package
// control/client: --control URL (env FAULTLINE_URL, default
// http://127.0.0.1:8470) and --token (env FAULTLINE_TOKEN) say which and
// how, after the command or before it (faultline --control URL proxy ls).
// They print tables, or JSON with --json; events prints one JSON event per
// line until interrupted. apply FILE makes the proxies and faults of a
// config file so, creating, updating or leaving each (applied twice, the
// second time changes nothing); it removes nothing.
//
// version (or --version) prints the version the build recorded: the module
// version (go install ...@v1.2.3, or a pseudo-version with the VCS revision),
// else the VCS revision, else "dev"; -ldflags "-X main.version=V" overrides it.
//
// Every command and subcommand takes -h: its synopsis and flags on stdout,
// exit status 0. Bad usage prints the problem and a hint ("see 'faultline
// fault add -h'") on stderr, not the whole usage.
//
// Exit status: 0 on success (and after SIGINT or SIGTERM), 1 when something
// failed (a port in use, an error from the server), 2 for bad usage (flags,
// a bad config file, a control address beyond loopback without a token).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
