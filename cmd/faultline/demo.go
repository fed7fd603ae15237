package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/internal/echo"
)

// runDemo starts an echo upstream, a proxy named demo in front of it and the
// control server, and prints what to try.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		pf proxyFlags
		sf serverFlags
	)
	fs := newFlagSet("demo")
	pf.register(fs, "127.0.0.1:7470")
	sf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	if len(pos) > 0 {
		return usageError(fs, stdout, stderr, fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if err := sf.check(fs); err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	pf.name = "demo"
	spec, err := pf.spec()
	if err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	up, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		return failure(stderr, fmt.Errorf("echo upstream: %w", err))
	}
	defer up.Close()
	spec.Upstream = up.Addr().String()

	srv, addr, code := sf.listen(stderr)
	if code != exitOK {
		return code
	}
	defer srv.Close() // before up.Close: the proxy's connections first
	created, code := createProxies(srv, []namedSpec{{spec: spec}}, stderr)
	if code != exitOK {
		return code
	}
	p := created[0]
	fmt.Fprintf(stdout, "echo upstream listening on %s\n", up.Addr())
	printProxy(stdout, p, fmt.Sprintf(" (%s mode)", p.Mode))
	ctl := controlURL(addr)
	fmt.Fprintf(stdout, "control listening on %s\n", ctl)
	printDemoHints(stdout, p, ctl, sf.token != "", selfCommand())
	<-ctx.Done()
	return exitOK
}

// selfCommand is how to run this binary from another terminal: "faultline"
// when that name on PATH is this executable, else the executable's absolute
// path (make run starts bin/faultline, which is not on PATH).
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "faultline" // the name the docs use
	}
	if onPath, err := exec.LookPath("faultline"); err == nil {
		if a, err := os.Stat(onPath); err == nil {
			if b, err := os.Stat(exe); err == nil && os.SameFile(a, b) {
				return "faultline"
			}
		}
	}
	return exe
}

// printDemoHints prints what to try; self is the command that runs this
// binary.
func printDemoHints(w io.Writer, p api.Proxy, ctl string, token bool, self string) {
	host, port := splitAddr(p.Listen)
	auth, cliFlags := "", ""
	if token {
		auth = ` -H "Authorization: Bearer $` + envToken + `"`
	}
	if ctl != "http://"+api.DefaultControlAddr {
		cliFlags = " --control " + ctl
	}
	faults := ctl + api.Prefix + "/proxies/" + p.Name + "/faults"
	fmt.Fprintf(w, "\nTry it in another terminal:\n")
	fmt.Fprintf(w, "  nc %s %s\n", host, port)
	fmt.Fprintf(w, "      type a line: the echo comes back through the proxy\n")
	fmt.Fprintf(w, "  curl -X POST%s %s -d '{\"kind\":\"latency\",\"delay\":\"500ms\"}'\n", auth, faults)
	fmt.Fprintf(w, "      now every echo comes back a second late: 500ms each way (a fault acts both ways unless it names a \"dir\")\n")
	fmt.Fprintf(w, "  %s events%s\n", self, cliFlags)
	fmt.Fprintf(w, "      follows what happens, one JSON event per line\n")
	fmt.Fprintf(w, "  %s fault ls %s%s\n", self, p.Name, cliFlags)
	fmt.Fprintf(w, "  %s fault add %s --kind reset%s\n", self, p.Name, cliFlags)
	fmt.Fprintf(w, "      resets your nc connection (and new ones, until removed)\n")
	fmt.Fprintf(w, "  curl -X DELETE%s %s\n", auth, faults)
	fmt.Fprintf(w, "      removes every fault\n")
	fmt.Fprintf(w, "Or open %s/ in a browser: the dashboard shows and drives all of it.\n", ctl)
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}
