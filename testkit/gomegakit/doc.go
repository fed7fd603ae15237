// Package gomegakit adapts the testkit to Gomega and Ginkgo: matchers over a
// *testkit.Proxy or its *testkit.EventLog, so that plain go test users of
// testkit never import gomega.
//
//	px := testkit.NewProxy(GinkgoTB(), redisAddr)
//	...
//	Eventually(px).WithTimeout(5 * time.Second).Should(HaveEvent(proxy.EventClosed, testkit.OnConn(1)))
//	Expect(px).NotTo(HaveReusedInvalidConnection())
//	Expect(px).NotTo(HaveWrittenAfterClose())
//	Eventually(px).ShouldNot(HaveOpenConnections())
//
// HaveEvent reads the log through its cursor: a match moves the cursor
// past the matched event, so the next HaveEvent sees only what came after.
// The check matchers read the whole log, as the testkit's checks do. Every
// matcher tells Eventually and Consistently to stop polling once the proxy
// is closed, since nothing can change then.
//
// The helpers that make assertions themselves (AwaitEvent, ExpectClean) use
// the global Gomega; NewWithGomega gives the same helpers bound to another
// one, such as gomega.NewWithT(t) in a plain test or the g of
// Eventually(func(g Gomega) {...}).
package gomegakit
