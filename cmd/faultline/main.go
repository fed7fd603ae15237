// Command faultline runs faultline proxies.
//
//	faultline run --listen 127.0.0.1:0 --upstream 127.0.0.1:6379 [--mode dial|pool] [pool flags]
//	faultline demo [--listen 127.0.0.1:7470]
//
// run relays every connection to --upstream until SIGINT or SIGTERM. demo
// starts a built-in echo server and a proxy in front of it, and prints how to
// try it. Both print "proxy listening on HOST:PORT -> UPSTREAM" once they
// listen, so --listen with port 0 works.
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
