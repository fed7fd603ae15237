package gomegakit

import (
	"fmt"

	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
)

// EventMatcher is the matcher HaveEvent returns.
type EventMatcher struct {
	pattern testkit.Pattern
	into    *proxy.Event
	got     proxy.Event // the matched event, after a match
	log     *testkit.EventLog
}

// HaveEvent succeeds when the proxy's log holds an unread event of kind
// (0 for any kind) meeting every cond; it moves the log's cursor past that
// event. The actual value is a *testkit.Proxy or a *testkit.EventLog. On
// failure it prints the pattern and the log's tail. Use it with Eventually
// to wait for an event, minding that Eventually's default timeout is one
// second (AwaitEvent waits testkit.DefaultWaitTimeout):
//
//	Eventually(px).WithTimeout(5 * time.Second).Should(HaveEvent(proxy.EventBorrowed, testkit.IsReused(true)))
func HaveEvent(kind proxy.EventKind, conds ...testkit.Cond) *EventMatcher {
	return &EventMatcher{pattern: testkit.Match(kind, conds...)}
}

// Into makes the matcher store the matched event in *e.
func (m *EventMatcher) Into(e *proxy.Event) *EventMatcher {
	m.into = e
	return m
}

// Match implements types.GomegaMatcher.
func (m *EventMatcher) Match(actual any) (bool, error) {
	l, err := logOf(actual, "HaveEvent")
	if err != nil {
		return false, err
	}
	m.log = l
	e, ok := l.Take(m.pattern.Match)
	if !ok {
		return false, nil
	}
	m.got = e
	if m.into != nil {
		*m.into = e
	}
	return true, nil
}

// FailureMessage implements types.GomegaMatcher.
func (m *EventMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("Waiting for event: %s\nafter the log's cursor (#%d)%s\n%s",
		m.pattern, m.log.Cursor(), closedNote(m.log), tail(m.log))
}

// NegatedFailureMessage implements types.GomegaMatcher.
func (m *EventMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("Expected no event: %s\nbut got:\n    %s\n%s", m.pattern, testkit.FormatEvent(m.got), tail(m.log))
}

// MatchMayChangeInTheFuture implements gomega's OracleMatcher: once the
// proxy is closed, no event will come.
func (m *EventMatcher) MatchMayChangeInTheFuture(actual any) bool {
	l, err := logOf(actual, "HaveEvent")
	return err == nil && !l.Closed()
}

// logOf returns the event log of a *testkit.Proxy or *testkit.EventLog.
func logOf(actual any, matcher string) (*testkit.EventLog, error) {
	switch a := actual.(type) {
	case *testkit.Proxy:
		if a != nil {
			return a.Events(), nil
		}
	case *testkit.EventLog:
		if a != nil {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%s expects a *testkit.Proxy or a *testkit.EventLog, got %T", matcher, actual)
}

func closedNote(l *testkit.EventLog) string {
	if l.Closed() {
		return "; the proxy is closed, so none will come"
	}
	return ""
}

// tail quotes the log's last events.
func tail(l *testkit.EventLog) string {
	t := l.Tail(testkit.DefaultTail)
	if len(t) == 0 {
		return "The log is empty."
	}
	return fmt.Sprintf("The last %d of %d events:\n%s", len(t), l.Len(), testkit.FormatEvents(t))
}
