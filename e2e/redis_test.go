package e2e

import (
	"context"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gleak"
	"github.com/redis/go-redis/v9"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
	. "github.com/faultline-proxy/faultline/testkit/gomegakit"
)

var _ = Describe("go-redis through the faultline binary", func() {
	var px *testkit.Proxy

	// connect follows the named proxy of the binary through the control
	// API and returns a go-redis client that dials it.
	connect := func(name string, opts redis.Options) *redis.Client {
		px = testkit.Connect(GinkgoTB(), controlURL, name)
		opts.Addr = px.Addr()
		opts.DisableIdentity = true
		c := redis.NewClient(&opts)
		DeferCleanup(func() { _ = c.Close() })
		return c
	}

	BeforeEach(func() {
		good := gleak.Goroutines()
		DeferCleanup(func() {
			Eventually(gleak.Goroutines).WithTimeout(5 * time.Second).ShouldNot(gleak.HaveLeaked(good))
		})
	})

	It("relays commands, and the metrics count the bytes", func() {
		c := connect("redis", redis.Options{})
		Expect(c.Set(ctx(), "k", "v", 0).Err()).To(Succeed())
		Expect(c.Get(ctx(), "k").Val()).To(Equal("v"))
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Get(controlURL + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(body)).To(MatchRegexp(`faultline_bytes_total\{dir="up",proxy="redis"\} [1-9]`))
	})

	It("notices connections redis closed while idle, and never writes on one", func() {
		admin := redis.NewClient(&redis.Options{Addr: redisAddr, DisableIdentity: true})
		DeferCleanup(admin.Close)
		c := connect("redis", redis.Options{PoolSize: 2, MaxRetries: -1})
		Expect(c.Ping(ctx()).Err()).To(Succeed())
		// The server's idle timeout closes the pooled connection: its FIN
		// is relayed to go-redis, which must not write on it again.
		Expect(admin.ConfigSet(ctx(), "timeout", "1").Err()).To(Succeed())
		DeferCleanup(func() { admin.ConfigSet(context.Background(), "timeout", "0") })
		Eventually(px).WithTimeout(10 * time.Second).Should(HaveEvent(proxy.EventHalfClosed, testkit.InDir(proxy.Down)))
		Expect(admin.ConfigSet(ctx(), "timeout", "0").Err()).To(Succeed())
		Expect(c.Ping(ctx()).Err()).To(Succeed())
		Expect(px).NotTo(HaveWrittenAfterClose())
	})

	It("drops a connection reset while idle in its pool, and the next command succeeds", func() {
		c := connect("redis", redis.Options{PoolSize: 1, MaxRetries: -1})
		Expect(c.Ping(ctx()).Err()).To(Succeed())
		first := px.Conns()
		Expect(first).To(HaveLen(1))
		f := px.Inject(faults.Reset(faults.ToClient).WithTarget(faults.Target{Which: faults.Existing}))
		DeferCleanup(f.Clear)
		Eventually(px).Should(HaveEvent(proxy.EventFaultFired, testkit.OfFault(f.Name())))
		// go-redis checks an idle connection before it reuses it: the RST
		// is noticed there, and the command goes out on a new connection.
		Expect(c.Ping(ctx()).Err()).To(Succeed())
		Expect(px.Conns()).To(ConsistOf(HaveField("ID", Not(Equal(first[0].ID)))))
		Expect(px).NotTo(HaveWrittenAfterClose())
	})

	It("gives up on a stalled connection within its read timeout", func() {
		const timeout = 200 * time.Millisecond
		c := connect("redis", redis.Options{ReadTimeout: timeout, MaxRetries: -1, PoolSize: 1})
		Expect(c.Ping(ctx()).Err()).To(Succeed())
		f := px.Inject(faults.Stall(false).WithDir(faults.Down))
		start := time.Now()
		err := c.Ping(ctx()).Err()
		Expect(err).To(HaveOccurred())
		Expect(time.Since(start)).To(BeNumerically("<", timeout+2*time.Second))
		Eventually(px).WithTimeout(5 * time.Second).Should(HaveClientGivenUpWithin(timeout, 2*time.Second))
		Expect(f.Clear()).To(Succeed())
		Expect(c.Ping(ctx()).Err()).To(Succeed())
	})

	Context("in pool mode", func() {
		// warm leaves idle upstream connections in the proxy's pool: go-redis
		// keeps its own connections open, so its client is closed.
		warm := func() {
			c := connect("redis-pool", redis.Options{PoolSize: 4, MaxRetries: -1})
			for range 20 {
				Expect(c.Ping(ctx()).Err()).To(Succeed())
			}
			Expect(c.Close()).To(Succeed())
			Eventually(px.Pool).WithTimeout(5 * time.Second).Should(HaveField("Busy", 0))
		}
		newClient := func(retries int) *redis.Client {
			c := redis.NewClient(&redis.Options{Addr: px.Addr(), PoolSize: 4, MaxRetries: retries, DisableIdentity: true})
			DeferCleanup(func() { _ = c.Close() })
			return c
		}

		It("catches idle connections gone stale with its probe: the client never sees one", func() {
			warm()
			f := px.Inject(faults.Stale(faults.StaleEOF).WithTarget(faults.Target{Which: faults.Existing}))
			DeferCleanup(f.Clear)
			for i := range 100 {
				c := newClient(-1) // a new client connection: a new session on a pooled upstream
				Expect(c.Set(ctx(), "k", i, 0).Err()).To(Succeed())
				Expect(c.Close()).To(Succeed())
			}
			Expect(px).NotTo(HaveReusedInvalidConnection())
			Expect(px.Pool().Discarded).To(HaveKey(proxy.ReasonStale)) // caught by the probe, recorded as stale
		})

		It("hands a stale connection to the next session; go-redis retries, and it is never reused", func() {
			warm()
			f := px.Inject(faults.Stale(faults.StaleReset).WithTarget(faults.Target{Which: faults.New, Count: 1}))
			DeferCleanup(f.Clear)
			c := newClient(1)
			Expect(c.Set(ctx(), "k", "v", 0).Err()).To(Succeed())
			Eventually(px).Should(HaveEvent(proxy.EventDiscarded, testkit.WithReason(proxy.ReasonStale)))
			for range 50 {
				Expect(c.Get(ctx(), "k").Err()).To(Succeed())
			}
			Expect(px).NotTo(HaveReusedInvalidConnection())
		})

		It("never hands a late reply to the next client: a BLPOP whose client gave up is not the next command's answer", func() {
			admin := redis.NewClient(&redis.Options{Addr: redisAddr, DisableIdentity: true})
			DeferCleanup(admin.Close)
			const key, list = "faultline-e2e:crosstalk:k", "faultline-e2e:crosstalk:empty"
			Expect(admin.Set(ctx(), key, "mine", 0).Err()).To(Succeed())
			DeferCleanup(func() { admin.Del(context.Background(), key, list) })
			px = testkit.Connect(GinkgoTB(), controlURL, "redis-pool")
			c := redis.NewClient(&redis.Options{Addr: px.Addr(), PoolSize: 1, MaxRetries: -1,
				DisableIdentity: true, ContextTimeoutEnabled: true})
			DeferCleanup(func() { _ = c.Close() })
			for range 5 {
				// The client gives up on BLPOP after 300 ms and drops the
				// connection; redis answers (nil) at 500 ms to whoever
				// holds the upstream connection then.
				short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				err := c.BLPop(short, 500*time.Millisecond, list).Err()
				cancel()
				Expect(err).To(HaveOccurred())
				// The next command goes out on a new client connection,
				// which the proxy serves from its pool: its answer must be
				// its own.
				Expect(c.Get(ctx(), key).Result()).To(Equal("mine"))
			}
			Eventually(px).Should(HaveEvent(proxy.EventDiscarded, testkit.WithReason(proxy.ReasonReplyPending)))
			Expect(px).NotTo(HaveReusedInvalidConnection())
		})
	})
})
