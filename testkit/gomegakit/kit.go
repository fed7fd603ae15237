package gomegakit

import (
	"errors"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
	"github.com/onsi/gomega"
)

// Kit holds the helpers that make assertions, bound to one Gomega.
type Kit struct {
	g gomega.Gomega // nil: gomega.Default, read at each call
}

// NewWithGomega returns the helpers bound to g, for use with a non-global
// Gomega: gomega.NewWithT(t) in a plain test, or the g of
// Eventually(func(g Gomega) {...}).
func NewWithGomega(g gomega.Gomega) *Kit { return &Kit{g: g} }

func (k *Kit) gomega() gomega.Gomega {
	if k.g == nil {
		return gomega.Default
	}
	return k.g
}

var global = &Kit{}

// AwaitEvent waits up to testkit.DefaultWaitTimeout for an unread event of
// kind meeting every cond on actual (a *testkit.Proxy or
// *testkit.EventLog), moves the cursor past it and returns it; it fails
// through the global Gomega, printing the log's tail, if none comes.
func AwaitEvent(actual any, kind proxy.EventKind, conds ...testkit.Cond) proxy.Event {
	return global.awaitEvent(2, actual, kind, conds)
}

// AwaitEvent is the package's AwaitEvent through k's Gomega.
func (k *Kit) AwaitEvent(actual any, kind proxy.EventKind, conds ...testkit.Cond) proxy.Event {
	return k.awaitEvent(2, actual, kind, conds)
}

func (k *Kit) awaitEvent(offset int, actual any, kind proxy.EventKind, conds []testkit.Cond) proxy.Event {
	var e proxy.Event
	k.gomega().Eventually(actual).WithOffset(offset).WithTimeout(testkit.DefaultWaitTimeout).
		Should(HaveEvent(kind, conds...).Into(&e))
	return e
}

// ExpectClean asserts through the global Gomega that px's log shows no
// reuse of an invalid upstream connection, no client write after close
// (judged in dial mode only: in pool mode that check cannot judge, and
// ExpectClean leaves it out), and, within testkit.DefaultWaitTimeout,
// nothing left open.
func ExpectClean(px *testkit.Proxy) { global.expectClean(2, px) }

// ExpectClean is the package's ExpectClean through k's Gomega.
func (k *Kit) ExpectClean(px *testkit.Proxy) { k.expectClean(2, px) }

func (k *Kit) expectClean(offset int, px *testkit.Proxy) {
	g := k.gomega()
	g.Expect(px).WithOffset(offset).NotTo(HaveReusedInvalidConnection())
	if err := testkit.CheckNoWriteAfterClose(px.Events()); !errors.Is(err, testkit.ErrCannotJudge) {
		g.Expect(px).WithOffset(offset).NotTo(HaveWrittenAfterClose())
	}
	g.Eventually(px).WithOffset(offset).WithTimeout(testkit.DefaultWaitTimeout).ShouldNot(HaveOpenConnections())
}
