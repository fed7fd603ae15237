package gomegakit_test

// An example Ginkgo suite: a Go HTTP client behind a faultline proxy, with
// gomegakit's matchers and gleak checking that every spec leaves no
// goroutine behind.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
	. "github.com/faultline-proxy/faultline/testkit/gomegakit"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gleak"
)

func TestExampleSuite(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "gomegakit example suite")
}

var _ = Describe("an HTTP client behind faultline", func() {
	var (
		srv    *httptest.Server
		px     *testkit.Proxy
		client *http.Client
	)

	// start serves "ok" behind a proxy configured by opts, with a client
	// whose every connection goes through the proxy.
	start := func(idle time.Duration, opts ...testkit.Option) {
		srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}))
		srv.Config.IdleTimeout = idle
		srv.Start()
		DeferCleanup(srv.Close)
		px = testkit.NewProxy(GinkgoTB(), srv.Listener.Addr().String(), opts...)
		d := &net.Dialer{Timeout: 5 * time.Second}
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", px.Addr())
		}}
		DeferCleanup(tr.CloseIdleConnections)
		client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}

	get := func() error {
		resp, err := client.Get(srv.URL)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}

	BeforeEach(func() {
		// Cleanups run last-in first-out: this one, registered first, runs
		// after the proxy, the transport and the server are closed.
		good := gleak.Goroutines()
		DeferCleanup(func() {
			Eventually(gleak.Goroutines).WithTimeout(5 * time.Second).ShouldNot(gleak.HaveLeaked(good))
		})
	})

	It("reuses one keep-alive connection and leaves nothing open", func() {
		start(time.Minute)
		Expect(get()).To(Succeed())
		Expect(get()).To(Succeed())
		Expect(px.Events().All()).To(ContainElement(HaveField("Kind", proxy.EventAccepted)))
		Expect(px).NotTo(HaveEvent(proxy.EventAccepted, testkit.OnConn(2)))

		client.Transport.(*http.Transport).CloseIdleConnections()
		Eventually(px).WithTimeout(5 * time.Second).Should(HaveEvent(proxy.EventClosed, testkit.OnConn(1), testkit.By(proxy.Client)))
		ExpectClean(px)
	})

	It("drops an idle connection the server closed instead of reusing it", func() {
		start(100 * time.Millisecond)
		Expect(get()).To(Succeed())
		AwaitEvent(px, proxy.EventHalfClosed, testkit.OnConn(1), testkit.InDir(proxy.Down))
		AwaitEvent(px, proxy.EventClosed, testkit.OnConn(1))
		Expect(get()).To(Succeed())
		Expect(px).NotTo(HaveWrittenAfterClose())
	})

	It("gives up on a stalled response within its timeout", func() {
		start(time.Minute)
		client.Timeout = 300 * time.Millisecond
		px.Inject(faults.Stall(false).WithDir(faults.Down))

		err := get()
		var ne net.Error
		Expect(errors.As(err, &ne) && ne.Timeout()).To(BeTrue(), "GET through a stall: %v", err)
		Eventually(px).WithTimeout(5 * time.Second).Should(HaveClientGivenUpWithin(300*time.Millisecond, 2*time.Second))
	})

	It("gets a clean pooled upstream connection after a client aborts", func() {
		start(time.Minute, testkit.WithPool(proxy.PoolConfig{}))
		Expect(get()).To(Succeed())
		px.Inject(faults.Reset(faults.ToClient).WithName("abort"))
		Expect(get()).NotTo(Succeed())
		AwaitEvent(px, proxy.EventDiscarded, testkit.WithReason(proxy.ReasonFault))

		Expect(px.ClearAll()).To(Succeed())
		Expect(get()).To(Succeed())
		Expect(px).NotTo(HaveReusedInvalidConnection())
		Expect(px).NotTo(HaveSlowInterrupts(time.Second))
	})
})
