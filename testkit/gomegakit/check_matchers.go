package gomegakit

import (
	"errors"
	"fmt"
	"time"

	"github.com/faultline-proxy/faultline/testkit"
	"github.com/onsi/gomega/types"
)

// checkMatcher matches when a testkit check finds what it looks for (or,
// with passWhenClean, when it finds nothing).
type checkMatcher struct {
	name          string // the matcher's name, for errors
	finding       string // what the check finding something means
	check         func(actual any) error
	passWhenClean bool
	err           error // the last check's result
}

// Match implements types.GomegaMatcher.
func (m *checkMatcher) Match(actual any) (bool, error) {
	m.err = m.check(actual)
	if ue, ok := m.err.(usageError); ok {
		return false, ue.error
	}
	return (m.err == nil) == m.passWhenClean, nil
}

// FailureMessage implements types.GomegaMatcher.
func (m *checkMatcher) FailureMessage(actual any) string {
	if m.passWhenClean {
		return fmt.Sprintf("Expected the proxy's events to show no %s, but:\n%v", m.finding, m.err)
	}
	return fmt.Sprintf("Expected the proxy's events to show %s; the check found none", m.finding)
}

// NegatedFailureMessage implements types.GomegaMatcher.
func (m *checkMatcher) NegatedFailureMessage(actual any) string {
	if m.passWhenClean {
		return fmt.Sprintf("Expected the proxy's events to show %s; the check found none", m.finding)
	}
	return fmt.Sprintf("Expected the proxy's events to show no %s, but:\n%v", m.finding, m.err)
}

// MatchMayChangeInTheFuture implements gomega's OracleMatcher.
func (m *checkMatcher) MatchMayChangeInTheFuture(actual any) bool {
	l, err := logOf(actual, m.name)
	return err == nil && !l.Closed()
}

// usageError marks an error in how a matcher was used, not a finding.
type usageError struct{ error }

// onLog adapts a check over an event log to an actual value. A check that
// cannot judge the log (testkit.ErrCannotJudge) fails the assertion with
// its reason rather than pass or match.
func onLog(name string, check func(*testkit.EventLog) error) func(any) error {
	return func(actual any) error {
		l, err := logOf(actual, name)
		if err != nil {
			return usageError{err}
		}
		err = check(l)
		if errors.Is(err, testkit.ErrCannotJudge) {
			return usageError{fmt.Errorf("%s: %w", name, err)}
		}
		return err
	}
}

// HaveReusedInvalidConnection succeeds when the proxy's own pool lent an
// upstream connection it must not have (testkit.CheckNoInvalidReuse). Use
// it negated; the failure quotes the events:
//
//	Expect(px).NotTo(HaveReusedInvalidConnection())
func HaveReusedInvalidConnection() types.GomegaMatcher {
	return &checkMatcher{name: "HaveReusedInvalidConnection", finding: "reuse of an invalid or busy upstream connection",
		check: onLog("HaveReusedInvalidConnection", testkit.CheckNoInvalidReuse)}
}

// HaveSlowInterrupts succeeds when some interrupt took longer than bound to
// stop both copy loops (testkit.CheckInterruptsWithin). Use it negated.
func HaveSlowInterrupts(bound time.Duration) types.GomegaMatcher {
	return &checkMatcher{name: "HaveSlowInterrupts", finding: "interrupt slower than " + bound.String(),
		check: onLog("HaveSlowInterrupts", func(l *testkit.EventLog) error { return testkit.CheckInterruptsWithin(l, bound) })}
}

// HaveWrittenAfterClose succeeds when the client wrote on a connection
// after the proxy relayed a FIN to it (testkit.CheckNoWriteAfterClose;
// dial mode: on a pool-mode proxy the assertion fails with
// testkit.ErrCannotJudge). Use it negated.
func HaveWrittenAfterClose() types.GomegaMatcher {
	return &checkMatcher{name: "HaveWrittenAfterClose", finding: "client write after the connection was closed toward it",
		check: onLog("HaveWrittenAfterClose", testkit.CheckNoWriteAfterClose)}
}

// HaveClientGivenUpWithin succeeds when the client gave up on every stalled
// connection within deadline plus bound (testkit.CheckGaveUpWithin). A
// stall still undecided fails it, so wait with Eventually:
//
//	Eventually(px).WithTimeout(5 * time.Second).Should(HaveClientGivenUpWithin(time.Second, time.Second))
func HaveClientGivenUpWithin(deadline, bound time.Duration) types.GomegaMatcher {
	return &checkMatcher{name: "HaveClientGivenUpWithin", finding: "stalled connection the client did not give up on in time",
		passWhenClean: true,
		check: onLog("HaveClientGivenUpWithin", func(l *testkit.EventLog) error {
			return testkit.CheckGaveUpWithin(l, deadline, bound)
		})}
}

// HaveOpenConnections succeeds when something is left open on the proxy
// (testkit.CheckNothingOpen); the actual value must be a *testkit.Proxy.
// The proxy closes a connection a moment after the client does, so wait:
//
//	Eventually(px).ShouldNot(HaveOpenConnections())
func HaveOpenConnections() types.GomegaMatcher {
	return &checkMatcher{name: "HaveOpenConnections", finding: "connection left open",
		check: func(actual any) error {
			px, ok := actual.(*testkit.Proxy)
			if !ok || px == nil {
				return usageError{fmt.Errorf("HaveOpenConnections expects a *testkit.Proxy, got %T", actual)}
			}
			return testkit.CheckNothingOpen(px)
		}}
}
