package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

// The dashboard under load: 1,000 live connections and about 1,000 events
// a second (connections opened and closed), measured in headless chromium.
// It is a measurement, not a check of speed: it runs only with
// FAULTLINE_DASHBOARD_LOAD=1 and prints its figures (docs/pictures.md
// keeps them), failing only if the page stops following.
var _ = Describe("the dashboard under load", func() {
	It("follows 1,000 live connections and 1,000 events/s", func() {
		if os.Getenv("FAULTLINE_DASHBOARD_LOAD") != "1" {
			Skip("a measurement: run with FAULTLINE_DASHBOARD_LOAD=1")
		}
		bctx := browser()
		bin, err := gexec.Build("github.com/faultline-proxy/faultline/cmd/faultline")
		Expect(err).NotTo(HaveOccurred())
		srv, err := gexec.Start(exec.Command(bin, "demo", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			srv.Terminate()
			Eventually(srv).WithTimeout(20 * time.Second).Should(gexec.Exit(0))
		})
		Eventually(srv.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(`control listening on http://\S+`))
		out := string(srv.Out.Contents())
		url := regexp.MustCompile(`control listening on (http://\S+)`).FindStringSubmatch(out)[1]
		addr := regexp.MustCompile(`proxy demo listening on (\S+) -> `).FindStringSubmatch(out)[1]

		stop := make(chan struct{})
		var wg sync.WaitGroup
		defer func() { close(stop); wg.Wait() }()
		// 1,000 live connections, each echoing a line every 2 s.
		const live = 1000
		for i := range live {
			c, err := net.Dial("tcp", addr)
			Expect(err).NotTo(HaveOccurred())
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 16)
				tick := time.NewTicker(2 * time.Second)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := fmt.Fprintf(c, "%d\n", i); err != nil {
						return
					}
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
		// Churn: a short connection every 4 ms (accepted, dialed,
		// half-closed both ways, closed: about 1,000 events a second).
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(4 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					continue
				}
				_, _ = c.Write([]byte("x"))
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}
		}()

		Expect(run(bctx, chromedp.Navigate(url+"/"), chromedp.WaitReady(`#proxies tr[data-proxy="demo"]`))).To(Succeed())
		time.Sleep(3 * time.Second) // let it catch up
		Expect(run(bctx, chromedp.Evaluate(`(function(s){for (var k in s) s[k]=0})(window.faultlineDashboard.stats)`, nil))).To(Succeed())
		const window = 15 * time.Second
		time.Sleep(window)
		var st struct {
			Renders      float64 `json:"renders"`
			RenderMsTot  float64 `json:"renderMsTotal"`
			RenderMsMax  float64 `json:"renderMsMax"`
			LagMsMax     float64 `json:"lagMsMax"`
			LagMsTotal   float64 `json:"lagMsTotal"`
			LagSamples   float64 `json:"lagSamples"`
			EventsFollow float64 `json:"events"`
		}
		Expect(run(bctx, chromedp.Evaluate(`window.faultlineDashboard.stats`, &st))).To(Succeed())
		conns := text(bctx, "#conns-count")
		// A filter change, timed from the click to the redrawn stream.
		var filterMs float64
		Expect(run(bctx, chromedp.Evaluate(`(function(){var t=performance.now();var s=document.getElementById("f-kind");s.value="closed";
			s.dispatchEvent(new Event("input"));return performance.now()-t})()`, &filterMs))).To(Succeed())
		onlyClosed := text(bctx, "#stream li:not([data-kind=closed])") == ""
		screenshot(bctx, "dashboard-load.png")
		AddReportEntry("dashboard load", fmt.Sprintf("live %s; %.0f events/s followed over %s; %d renders, %.1f ms mean, %.1f ms max; timer lag %.1f ms mean, %.1f ms max; filter change %.1f ms",
			conns, st.EventsFollow/window.Seconds(), window, int(st.Renders), st.RenderMsTot/max(1, st.Renders), st.RenderMsMax,
			st.LagMsTotal/max(1, st.LagSamples), st.LagMsMax, filterMs))
		GinkgoWriter.Printf("dashboard load: %+v conns %s filter %.1f ms\n", st, conns, filterMs)
		Expect(st.EventsFollow).To(BeNumerically(">", 0), "the page followed no event")
		Expect(conns).To(ContainSubstring("of 10"), "the page does not show the live connections")
		Expect(onlyClosed).To(BeTrue())
	})
})
