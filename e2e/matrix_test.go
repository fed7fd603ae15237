package e2e

// The client matrix: for each client library people test with, through a
// faultline binary of its own, each fault in dial mode and, where the
// client pools its connections, pool mode. Each cell records what the
// client saw, whether it recovered and how soon, and which testkit checks
// held; docs/clients.md is the table of a run. The suite fails when a run's
// verdicts (not its timings) differ from the checked-in table; `make
// matrix` (FAULTLINE_MATRIX_WRITE=1) rewrites it instead.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	"github.com/onsi/gomega/gleak"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
)

// subject is one client of one server, opened through a proxy.
type subject interface {
	// call makes one request/response call and checks its answer.
	call(ctx context.Context) error
	close()
}

// matrixClient is one client library against one server.
type matrixClient struct {
	name     string // the library, as people know it
	server   string // what it talks to
	upstream string // the server's address (set in BeforeAll for nginx)
	howStart string // how to start the server, for the skip message
	// pools: the client pools its connections, and its protocol carries
	// no session from a handshake, so that the proxy's pool mode, which
	// reuses upstream connections at the TCP level, suits it: it also
	// gets pool-mode rows (see docs/clients.md on PostgreSQL and MariaDB).
	pools bool
	// ownDeadline: the client times out a call by itself (a read
	// timeout set to matrixDeadline), so the faulted call's context
	// allows twice that, and the client's own timer decides.
	ownDeadline bool
	// exchanges is how many request/response exchanges one call makes
	// on the wire (see docs/exchanges.md).
	exchanges int
	// prepare readies the server (own schema, keys), direct, and returns
	// what undoes it.
	prepare func(ctx context.Context, upstream string) (cleanup func(), err error)
	// open opens a client through the proxy at addr; the client's own
	// deadline for one call is matrixDeadline, its pool at most one
	// connection where it has a pool.
	open func(addr string) (subject, error)
}

// matrixDeadline is each client's own timeout for one call, where it has
// one (its read timeout, else the call's context): what a stall must run
// into. Calls other than the faulted one get callSlack, as connecting
// (a PostgreSQL backend's fork) can take longer on a loaded machine.
const (
	matrixDeadline = time.Second
	callSlack      = 5 * time.Second
)

// matrixBound is how much later than its deadline a client may give up,
// and how long the proxy's interrupts may take, in the checks.
const matrixBound = time.Second

// recoverWithin bounds how long a client has to make a call succeed after
// the fault was cleared.
const recoverWithin = 5 * time.Second

// cell is one result of the matrix.
type cell struct {
	client, mode, fault string
	saw                 string        // what the faulted call returned (error kind, or ok), and whether it retried
	took                time.Duration // how long the faulted call took
	recovered           string        // yes, or no
	recovery            time.Duration // from the fault to the first successful call after it
	checks              string        // ok, or the testkit checks that failed
}

func (c cell) key() string { return c.client + " | " + c.mode + " | " + c.fault }

// verdict is what the checked-in table must agree with: not timings.
func (c cell) verdict() string { return c.saw + " | " + c.recovered + " | " + c.checks }

var (
	cellsMu sync.Mutex // guards cells
	cells   []cell
)

func record(c cell) {
	cellsMu.Lock()
	defer cellsMu.Unlock()
	cells = append(cells, c)
}

// matrixFault is one row: a fault and how it is applied to a client that
// has made one call and holds an idle connection.
type matrixFault struct {
	name     string
	poolOnly bool // only in pool mode (it acts on the proxy's pool)
	run      func(r *runner) cell
}

// runner runs one cell.
type runner struct {
	px   *testkit.Proxy
	mc   matrixClient
	addr string
	sub  subject
	key  string // the cell's, for the log
}

// callTimed makes one call within d and returns how long it took and
// its error.
func (r *runner) callTimed(d time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := r.sub.call(ctx)
	return time.Since(start), err
}

// lastAccepted returns the highest ID of a connection the proxy is known
// to have accepted: of its live connections, asked of the proxy, and of
// the accepted events in the log. The proxy numbers connections in the
// order it accepts them. The events come over the event stream, after the
// fact: counting them alone took a connection whose accepted event was
// still on its way when the call began (the first call's) for a new one.
func (r *runner) lastAccepted() uint64 {
	var last uint64
	for _, ci := range r.px.Conns() {
		last = max(last, ci.ID)
	}
	for _, e := range r.px.Events().All() {
		if e.Kind == proxy.EventAccepted {
			last = max(last, e.Conn)
		}
	}
	return last
}

// faulted makes the call the fault meets and fills in what the client saw
// and how long it took; a new connection the client opened meanwhile is a
// retry (or a reconnect).
func (r *runner) faulted(c *cell) {
	before := r.lastAccepted()
	d := matrixDeadline
	if r.mc.ownDeadline {
		d *= 2
	}
	took, err := r.callTimed(d)
	time.Sleep(100 * time.Millisecond) // let the accept events of a retry that has closed arrive
	c.saw, c.took = errorKind(err), took
	if r.lastAccepted() > before && err == nil {
		c.saw += ", on a new connection"
	}
}

// recover clears the faults and makes calls until one succeeds, within
// recoverWithin; from is when the fault began to act.
func (r *runner) recover(c *cell, from time.Time) {
	Expect(r.px.ClearAll()).To(Succeed())
	if c.saw == "ok" || strings.HasPrefix(c.saw, "ok,") {
		c.recovered, c.recovery = "yes", c.took
		return
	}
	deadline := time.Now().Add(recoverWithin)
	for {
		_, err := r.callTimed(callSlack)
		if err == nil {
			c.recovered, c.recovery = "yes", time.Since(from)
			return
		}
		if time.Now().After(deadline) {
			c.recovered = "no: " + errorKind(err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check runs the testkit checks on the cell's events.
func (r *runner) check(c *cell, extra ...func(*testkit.EventLog) error) {
	time.Sleep(200 * time.Millisecond) // the last events
	l := r.px.Events()
	var failed []string
	for _, ch := range append([]func(*testkit.EventLog) error{
		testkit.CheckNoInvalidReuse,
		func(l *testkit.EventLog) error { return testkit.CheckInterruptsWithin(l, matrixBound) },
		testkit.CheckNoWriteAfterClose,
	}, extra...) {
		if err := ch(l); err != nil && !errors.Is(err, testkit.ErrCannotJudge) { // CheckNoWriteAfterClose in pool mode
			failed = append(failed, checkName(err))
		}
	}
	c.checks = "ok"
	if len(failed) > 0 {
		c.checks = strings.Join(failed, ", ")
		GinkgoWriter.Printf("%s: checks failed:\n%s\n", r.key, l)
	}
}

// checkName names a failed check in the table.
func checkName(err error) string {
	switch {
	case errors.Is(err, testkit.ErrInvalidReuse):
		return "invalid reuse"
	case errors.Is(err, testkit.ErrSlowInterrupt):
		return "slow interrupt"
	case errors.Is(err, testkit.ErrWriteAfterClose):
		return "wrote after close"
	case errors.Is(err, testkit.ErrNoGiveUp):
		return "did not give up"
	}
	return err.Error()
}

// await waits for the fault to fire on some connection.
func (r *runner) await(f *testkit.Fault) time.Time {
	e, err := r.px.Events().WaitFor(5*time.Second, proxy.EventFaultFired, testkit.OfFault(f.Name()))
	Expect(err).NotTo(HaveOccurred(), "fault %s did not fire", f.Name())
	return e.Time
}

// settle is how long an idle connection's fault is left to act before
// the next call: time for a client that reads in the background (NATS,
// MQTT, AMQP) to notice and reconnect, and for a server to answer a FIN,
// so that the cell does not depend on a race.
//
// An idle connection's whole idle time stays well under a second, after
// which pgx pings a connection before reusing it: the rows show what a
// client does with a connection it does not check.
const settle = 500 * time.Millisecond

// existing targets the connections live now: the client's idle one.
var existing = faults.Target{Which: faults.Existing}

var matrixFaults = []matrixFault{
	{name: "reset mid-query", run: func(r *runner) cell {
		// The reply to the next request is held; once it is, the
		// connection is reset toward the client.
		c := cell{}
		hold := r.px.Inject(faults.Stall(false).WithDir(faults.Down).WithExchange(1, 0).WithTarget(existing))
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			r.faulted(&c)
		}()
		start := r.await(hold)
		r.px.Inject(faults.Reset(faults.ToClient).WithTarget(existing))
		Eventually(done).WithTimeout(10 * time.Second).Should(BeClosed())
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "reset while idle", run: func(r *runner) cell {
		c := cell{}
		start := r.await(r.px.Inject(faults.Reset(faults.ToClient).WithTarget(existing)))
		time.Sleep(settle)
		r.faulted(&c)
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "stall past the deadline", run: func(r *runner) cell {
		// Only the connection the next request goes out on stalls: an
		// idle one the client does not wait on need not be given up.
		c := cell{}
		r.px.Inject(faults.Stall(false).WithDir(faults.Down).WithExchange(1, 0).WithTarget(existing))
		r.faulted(&c)
		start := time.Now().Add(-c.took)
		// Judge the give-up before the stall is cleared (a cleared stall
		// is not judged): wait until it is decided either way.
		time.Sleep(time.Until(start.Add(matrixDeadline + matrixBound + 200*time.Millisecond)))
		gaveUp := testkit.CheckGaveUpWithin(r.px.Events(), matrixDeadline, matrixBound)
		r.recover(&c, time.Now()) // from the stall's end
		r.check(&c, func(*testkit.EventLog) error { return gaveUp })
		return c
	}},
	{name: "half-close up", run: func(r *runner) cell {
		c := cell{}
		start := r.await(r.px.Inject(faults.HalfClose(faults.Up).WithTarget(existing)))
		time.Sleep(settle)
		r.faulted(&c)
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "half-close down", run: func(r *runner) cell {
		c := cell{}
		start := r.await(r.px.Inject(faults.HalfClose(faults.Down).WithTarget(existing)))
		time.Sleep(settle)
		r.faulted(&c)
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "idle close by the proxy", run: func(r *runner) cell {
		c := cell{}
		// 100ms idle, noticed within 25ms, then 300ms: the connection is
		// idle about as long as in the other idle rows, well under the
		// second after which pgx pings an idle connection.
		start := r.await(r.px.Inject(faults.IdleClose(100*time.Millisecond, false).WithTarget(existing)))
		time.Sleep(300 * time.Millisecond)
		r.faulted(&c)
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "latency 150ms", run: func(r *runner) cell {
		c := cell{}
		r.px.Inject(faults.Latency(150*time.Millisecond, 0).WithDir(faults.Down))
		start := time.Now()
		r.faulted(&c)
		if c.took < 150*time.Millisecond && c.saw == "ok" {
			c.saw = "ok, not delayed"
		}
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "close on the 2nd call", run: func(r *runner) cell {
		// Exchanges count from now: the next call's first request is the
		// 1st; the 2nd call's first request closes the connection.
		c := cell{}
		r.px.Inject(faults.Limit(0).WithDir(faults.Up).WithExchange(r.mc.exchanges+1, 0).WithTarget(existing))
		if _, err := r.callTimed(callSlack); err != nil {
			c.saw = "1st request failed: " + errorKind(err)
			c.recovered, c.checks = "-", "-"
			return c
		}
		// A request without a reply at the end of the 1st call (MySQL's
		// COM_STMT_CLOSE) begins the next exchange: let it act before
		// the 2nd call, so that the cell does not depend on a race.
		time.Sleep(settle)
		start := time.Now()
		r.faulted(&c)
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "stale pooled upstream (idle)", poolOnly: true, run: func(r *runner) cell {
		// The proxy's idle upstream connections go stale; its probe must
		// catch them before a new session gets one.
		c := cell{}
		r.sub.close()
		Eventually(r.px.Pool).WithTimeout(5 * time.Second).Should(HaveField("Busy", 0))
		idle := r.px.Pool().Idle
		f := r.px.Inject(faults.Stale(faults.StaleEOF))
		start := time.Now()
		if idle > 0 {
			start = r.await(f)
		}
		sub, err := r.mc.open(r.addr)
		Expect(err).NotTo(HaveOccurred())
		r.sub = sub
		r.faulted(&c)
		if idle == 0 {
			// The client said goodbye to the server when it closed (a
			// Terminate, a QUIT), so the server closed the upstream
			// connection and nothing was left idle to go stale.
			c.saw += " (nothing was idle: the client's goodbye ended the upstream)"
		}
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
	{name: "stale pooled upstream (handed out)", poolOnly: true, run: func(r *runner) cell {
		// The next session gets an upstream connection that goes stale
		// (reset) after the probe passed it.
		c := cell{}
		r.sub.close()
		Eventually(r.px.Pool).WithTimeout(5 * time.Second).Should(HaveField("Busy", 0))
		r.px.Inject(faults.Stale(faults.StaleReset).WithTarget(faults.Target{Which: faults.New, Count: 1}))
		sub, err := r.mc.open(r.addr)
		Expect(err).NotTo(HaveOccurred())
		r.sub = sub
		start := time.Now()
		r.faulted(&c)
		r.recover(&c, start)
		r.check(&c)
		return c
	}},
}

// The matrix's own faultline binary and nginx.
var (
	matrixControl string
	matrixProxies = map[string]string{} // proxy name -> listen address
)

// proxyName names the binary's proxy for a server in a mode.
func proxyName(server, mode string) string {
	return strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(server, "")) + "-" + mode
}

// serverAnswers reports whether something accepts connections at addr.
func serverAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

var _ = Describe("the client matrix", Ordered, ContinueOnFailure, Label("matrix"), func() {
	var proc *gexec.Session

	BeforeAll(func() {
		startNginx()
		bin, err := gexec.Build("github.com/faultline-proxy/faultline/cmd/faultline")
		Expect(err).NotTo(HaveOccurred())
		var cfg strings.Builder
		cfg.WriteString("proxies:\n")
		seen := map[string]bool{}
		for _, mc := range matrixClients() {
			if seen[mc.server] || mc.upstream == "" {
				// No address: a server the suite starts itself is not
				// installed (nginx); its rows skip, or fail when required.
				continue
			}
			seen[mc.server] = true
			for _, mode := range []string{"dial", "pool"} {
				fmt.Fprintf(&cfg, "  - name: %s\n    upstream: %s\n    mode: %s\n", proxyName(mc.server, mode), mc.upstream, mode)
			}
		}
		path := filepath.Join(GinkgoT().TempDir(), "matrix.yaml")
		Expect(os.WriteFile(path, []byte(cfg.String()), 0o600)).To(Succeed())
		proc, err = gexec.Start(exec.Command(bin, "run", "--config", path, "--control", "127.0.0.1:0"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(proc.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(`control listening on (http://\S+)`))
		out := string(proc.Out.Contents())
		matrixControl = regexp.MustCompile(`control listening on (http://\S+)`).FindStringSubmatch(out)[1]
		for _, m := range regexp.MustCompile(`proxy (\S+) listening on (\S+) -> `).FindAllStringSubmatch(out, -1) {
			matrixProxies[m[1]] = m[2]
		}
	})

	AfterAll(func() {
		if proc != nil {
			proc.Terminate()
			Eventually(proc).WithTimeout(10 * time.Second).Should(gexec.Exit(0))
		}
		stopNginx()
		compareOrWrite()
	})

	for _, mc := range matrixClients() {
		for _, mode := range []string{"dial", "pool"} {
			if mode == "pool" && !mc.pools {
				continue
			}
			Context(fmt.Sprintf("%s (%s), %s mode", mc.name, mc.server, mode), func() {
				var cleanup func()
				BeforeAll(func() {
					mc := lookupClient(mc.name)
					if !serverAnswers(mc.upstream) {
						skipOrFail(fmt.Sprintf("%s does not answer on %s: start it (%s), or run .ci/servers", mc.server, mc.upstream, mc.howStart))
					}
					var err error
					cleanup, err = mc.prepare(context.Background(), mc.upstream)
					Expect(err).NotTo(HaveOccurred(), "prepare %s", mc.server)
				})
				AfterAll(func() {
					if cleanup != nil {
						cleanup()
					}
				})
				for _, mf := range matrixFaults {
					if mf.poolOnly && mode != "pool" {
						continue
					}
					It(mf.name, func() {
						mc := lookupClient(mc.name)
						good := gleak.Goroutines()
						px := testkit.Connect(GinkgoTB(), matrixControl, proxyName(mc.server, mode))
						sub, err := mc.open(px.Addr())
						Expect(err).NotTo(HaveOccurred())
						r := &runner{px: px, mc: mc, addr: px.Addr(), sub: sub, key: mc.name + " | " + mode + " | " + mf.name}
						// One call first: the client holds an idle connection.
						_, err = r.callTimed(callSlack)
						Expect(err).NotTo(HaveOccurred(), "the first call, before any fault")
						c := mf.run(r)
						r.sub.close()
						c.client, c.mode, c.fault = mc.name, mode, mf.name
						record(c)
						GinkgoWriter.Printf("%s: saw %s in %v; recovered %s in %v; checks %s\n", c.key(), c.saw, c.took, c.recovered, c.recovery, c.checks)
						Expect(px.Close()).To(Succeed())
						Eventually(gleak.Goroutines).WithTimeout(10 * time.Second).ShouldNot(gleak.HaveLeaked(good))
					})
				}
			})
		}
	}
})

// lookupClient returns the client named name, with addresses resolved at
// run time (nginx's port).
func lookupClient(name string) matrixClient {
	for _, mc := range matrixClients() {
		if mc.name == name {
			return mc
		}
	}
	panic("no client " + name)
}
