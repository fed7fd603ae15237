package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

// defaultProcs is how many Go processors (GOMAXPROCS) the binary's proxies
// run on unless --procs or $GOMAXPROCS says otherwise. One: the copy loops
// of a test's connections then hand work to each other on one thread
// instead of waking a second one for every message, which on the 2-CPU
// machine of docs/benchmarks.md relays 50 connections of small round trips
// 1.2x to 1.3x faster than Go's default and churns 1.1x to 1.2x more pooled
// connections a second, at less CPU per request, with bulk unchanged. A
// test proxy shares its machine with the code under test; a relay that
// must carry heavy parallel load on many cores wants --procs 0.
const defaultProcs = 1

// maxProcs bounds --procs.
const maxProcs = 4096

// registerProcs registers --procs on fs.
func registerProcs(fs *flag.FlagSet, n *int, dash string) {
	fs.IntVar(n, "procs", defaultProcs, "Go processors (GOMAXPROCS) the proxies run on: 1 relays a test's small messages cheapest, 0 is Go's default (one per CPU); $GOMAXPROCS wins unless "+dash+"procs is given")
}

// applyProcs sets GOMAXPROCS to n (0: Go's default), unless the flag was
// not given and $GOMAXPROCS is set: then the environment's choice stands.
func applyProcs(fs *flag.FlagSet, n int, dash string) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "procs" })
	switch {
	case n < 0 || n > maxProcs:
		return fmt.Errorf("%sprocs %d: want 0 (Go's default, one per CPU) or 1 to %d", dash, n, maxProcs)
	case !given && os.Getenv("GOMAXPROCS") != "":
	case n == 0:
		runtime.SetDefaultGOMAXPROCS()
	default:
		runtime.GOMAXPROCS(n)
	}
	return nil
}
