// Package testkit is a faultline proxy as a test fixture, in the manner of
// net/http/httptest: NewProxy starts a proxy on a free loopback port in front
// of the upstream a test uses, records every event it emits, and is closed
// when the test ends. Faults are injected through handles; assertions are
// made on the recorded events.
//
// Typical use, with a client under test that keeps its own connection pool:
//
//	func TestClientSurvivesStall(t *testing.T) {
//		px := testkit.NewProxy(t, redisAddr) // dial mode; WithPool for pool mode
//		client := redis.NewClient(&redis.Options{Addr: px.Addr(), ReadTimeout: time.Second})
//
//		stall := px.Inject(faults.Stall(false).WithDir(faults.Down))
//		if err := client.Get(ctx, "k").Err(); !isTimeout(err) {
//			t.Fatalf("GET through a stall: got %v, want a timeout", err)
//		}
//		px.Await(proxy.EventHalfClosed, testkit.InDir(proxy.Up)) // the client closed the connection
//		if err := testkit.CheckGaveUpWithin(px.Events(), time.Second, 2*time.Second); err != nil {
//			t.Error(err)
//		}
//		stall.Clear()
//
//		if err := client.Get(ctx, "k").Err(); err != nil {
//			t.Fatalf("GET after the stall: %v", err)
//		}
//		if err := testkit.CheckNoWriteAfterClose(px.Events()); err != nil {
//			t.Error(err)
//		}
//	}
//
// # The event log
//
// Proxy.Events returns the EventLog: every proxy.Event since Start, in Seq
// order. It keeps a cursor: Next, Take and the waits (Wait, WaitFor,
// Proxy.Await) return only events newer than the last one read and move the
// cursor past what they return, so each assertion sees only what is new.
// All and Tail read the whole log. Failure messages quote events with
// FormatEvent.
//
// # Checks
//
// Each check reads a whole EventLog, whatever its cursor, and returns nil or
// an error that wraps a sentinel (errors.Is) and quotes the events that show
// each violation:
//
//   - CheckNoInvalidReuse (ErrInvalidReuse): the proxy's own pool never lent
//     an upstream connection after discarding it, or while its previous
//     session was still running.
//   - CheckInterruptsWithin (ErrSlowInterrupt): every interrupt stopped both
//     copy loops within a bound.
//   - CheckNoWriteAfterClose (ErrWriteAfterClose): the client never wrote on
//     a connection after the proxy relayed a FIN to it, which is what a client
//     pool does that reuses a connection the server closed. Dial mode only:
//     on a log with a pool-mode connection it returns an error wrapping
//     ErrCannotJudge rather than pass.
//   - CheckGaveUpWithin (ErrNoGiveUp): the client gave up on every stalled
//     connection within its deadline plus a bound.
//   - CheckNothingOpen (ErrLeftOpen): every connection closed and no pooled
//     connection is busy; it reads the live Proxy too, and counts one
//     violation per connection left open.
//
// Checks take the log rather than the Proxy so that they also run on a
// recorded run: NewEventLog holds events decoded from the control API. Within
// retries a check until it passes or time runs out.
//
// # Failures and goroutines
//
// Proxy methods take the testing.TB given to NewProxy and work with Ginkgo's
// GinkgoTB(). NewProxy, Start, Inject and Await stop the test with Fatalf and
// must be called from the test's goroutine; everything else reports failures
// with Errorf, which is safe anywhere, and returns them. Close waits for every
// goroutine the proxy started and logs what it still waits on every 5 s.
//
// # When a test fails
//
// If the test has failed by the time the Cleanup that closes a Proxy runs,
// the Cleanup writes the event log (EventLog.WriteJSON: JSON lines in the
// shape of "faultline events" and the HTTP events endpoint, which
// "faultline report" reads) and its report (WriteReport: one HTML page, a
// timeline of every connection with what CheckLog finds marked on it) into
// the test's artifact directory and logs the paths: t.ArtifactDir() when
// the test runs with go test -artifacts (Go 1.26), else a directory named
// after the test under $FAULTLINE_ARTIFACTS, else nowhere. A connected
// Proxy saves the events it saw, named after the remote proxy.
//
// # In-process or against the binary
//
// Connect returns the same *Proxy for a proxy of a running faultline binary,
// driven through its control API (faults over the websocket, whose ok comes
// once a fault is in force; events streamed from the moment Connect
// returns). One test body thus runs in-process in go test and against the
// binary in a CI chaos job:
//
//	var px *testkit.Proxy
//	if url := os.Getenv("FAULTLINE_URL"); url != "" {
//		px = testkit.Connect(t, url, "redis") // token: $FAULTLINE_TOKEN or WithToken
//	} else {
//		px = testkit.NewProxy(t, redisAddr)
//	}
//
// A connected Proxy does not own the remote proxy: Close removes the faults
// injected through it and stops following events; the proxy keeps running.
//
// TestConn runs golang.org/x/net/nettest's conformance suite through a proxy.
// Gomega matchers are in the subpackage gomegakit, so that users of plain go
// test never import gomega.
package testkit
