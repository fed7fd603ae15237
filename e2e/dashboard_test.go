package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

// The dashboard and the report in a real browser: Debian's chromium,
// headless, driven with chromedp (which starts the system chromium; it
// downloads nothing). .ci/run installs chromium; without it these specs
// skip, unless FAULTLINE_E2E_REQUIRE=1. Screenshots go to the spec's
// artifact directory ($FAULTLINE_ARTIFACTS/<spec> if set) and, with
// FAULTLINE_SCREENSHOTS=DIR, to DIR/dashboard.png and DIR/report.png (how
// docs/ got them).

// requireChromium returns the path of chromium, or skips (fails in CI).
func requireChromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FAULTLINE_E2E_REQUIRE") == "1" {
		Fail("chromium not found in PATH and FAULTLINE_E2E_REQUIRE=1 (apt-get install chromium)")
	}
	Skip("chromium not found in PATH: install it (Debian: apt-get install chromium) to test the dashboard")
	return ""
}

// browser starts a headless chromium with a fresh profile and returns a
// chromedp context on its first tab; both end when the spec does.
func browser() context.Context {
	exe := requireChromium()
	// A fresh profile, removed once chromium is gone (its helpers may
	// still write to it for a moment after the browser exits).
	profile, err := os.MkdirTemp("", "faultline-chromium-")
	Expect(err).NotTo(HaveOccurred())
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1300, 1500),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	DeferCleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process
		Eventually(func() error { return os.RemoveAll(profile) }).WithTimeout(10 * time.Second).Should(Succeed())
	})
	Expect(chromedp.Run(bctx)).To(Succeed()) // start it now, so a missing library fails here
	return bctx
}

// run runs browser actions with a generous bound.
func run(bctx context.Context, actions ...chromedp.Action) error {
	c, cancel := context.WithTimeout(bctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(c, actions...)
}

// text returns the text of the first element sel matches, "" if none.
func text(bctx context.Context, sel string) string {
	var s string
	_ = run(bctx, chromedp.Evaluate(fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent:""})()`, sel), &s))
	return s
}

// exists reports whether sel matches an element.
func exists(bctx context.Context, sel string) bool {
	var ok bool
	_ = run(bctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q)!==null`, sel), &ok))
	return ok
}

// screenshot saves the page as name in the spec's artifact directory, and
// in $FAULTLINE_SCREENSHOTS if set.
func screenshot(bctx context.Context, name string) {
	var png []byte
	Expect(run(bctx, chromedp.FullScreenshot(&png, 100))).To(Succeed())
	dir := GinkgoT().TempDir()
	if root := os.Getenv("FAULTLINE_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, "e2e-dashboard")
		Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	}
	path := filepath.Join(dir, name)
	Expect(os.WriteFile(path, png, 0o644)).To(Succeed())
	GinkgoWriter.Printf("screenshot: %s\n", path)
	if docs := os.Getenv("FAULTLINE_SCREENSHOTS"); docs != "" {
		Expect(os.WriteFile(filepath.Join(docs, name), png, 0o644)).To(Succeed())
	}
}

var _ = Describe("the dashboard in a browser", func() {
	It("shows the proxy, adds a fault through its form, follows a connection and closes it", func() {
		bctx := browser()
		bin, err := gexec.Build("github.com/faultline-proxy/faultline/cmd/faultline")
		Expect(err).NotTo(HaveOccurred())
		srv, err := gexec.Start(exec.Command(bin, "demo", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--token", "s3cret"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			srv.Terminate()
			Eventually(srv).WithTimeout(10 * time.Second).Should(gexec.Exit(0))
		})
		Eventually(srv.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(`control listening on http://\S+`))
		out := string(srv.Out.Contents())
		url := regexp.MustCompile(`control listening on (http://\S+)`).FindStringSubmatch(out)[1]
		proxyAddr := regexp.MustCompile(`proxy demo listening on (\S+) -> `).FindStringSubmatch(out)[1]

		By("asking for the token once, then showing the proxy")
		Expect(run(bctx, chromedp.Navigate(url+"/"), chromedp.WaitVisible("#token-form"))).To(Succeed())
		Expect(run(bctx,
			chromedp.SendKeys("#token", "s3cret"),
			chromedp.Click(`#token-form button[type="submit"]`),
			chromedp.WaitReady(`#proxies tr[data-proxy="demo"]`),
		)).To(Succeed())
		Expect(text(bctx, `#proxies tr[data-proxy="demo"]`)).To(ContainSubstring("dial"))

		By("showing the API's validation message for a bad fault")
		Expect(run(bctx,
			chromedp.SetValue("#fault-kind", "latency"),
			chromedp.Evaluate(`document.getElementById("fault-kind").dispatchEvent(new Event("change"))`, nil),
			chromedp.SendKeys(`#kind-fields input[name="delay"]`, "-5s"),
			chromedp.Click("#fault-submit"),
		)).To(Succeed())
		Eventually(func() string { return text(bctx, "#fault-err") }).WithTimeout(10 * time.Second).Should(Equal("faults: invalid fault: latency: negative delay"))

		By("adding a latency fault through the form and listing it")
		Expect(run(bctx,
			chromedp.SetValue(`#kind-fields input[name="delay"]`, "20ms"),
			chromedp.SetValue(`#fault-form input[name="name"]`, "lat"),
			chromedp.Click("#fault-submit"),
			chromedp.WaitReady(`#faults tr[data-fault="lat"]`),
		)).To(Succeed())
		Expect(text(bctx, `#faults tr[data-fault="lat"]`)).To(And(ContainSubstring("latency"), ContainSubstring("20ms")))

		By("following a live connection: its lane and its bytes moving")
		conn, err := net.Dial("tcp", proxyAddr)
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the client: a line every 100 ms, echoed back
			defer wg.Done()
			buf := make([]byte, 64)
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte("ping\n")); err != nil {
					return
				}
				if _, err := conn.Read(buf); err != nil {
					return
				}
			}
		}()
		defer func() { close(stop); _ = conn.Close(); wg.Wait() }()
		row := `#conns tr[data-conn="demo/1"]`
		Eventually(func() bool { return exists(bctx, row) }).WithTimeout(10 * time.Second).Should(BeTrue())
		Eventually(func() bool { return exists(bctx, `#timeline [data-lane="demo/c1"]`) }).WithTimeout(10 * time.Second).Should(BeTrue())
		first := text(bctx, row+" .bytes-up")
		Eventually(func() string { return text(bctx, row+" .bytes-up") }).WithTimeout(10*time.Second).ShouldNot(Equal(first), "bytes up stay at %s", first)
		Expect(text(bctx, row)).To(ContainSubstring("lat"))
		Eventually(func() bool { return exists(bctx, `#timeline [data-lane="demo/c1"] .tl-fault`) }).WithTimeout(10 * time.Second).Should(BeTrue())
		screenshot(bctx, "dashboard.png")

		By("closing it from the page and seeing the closed event")
		Expect(run(bctx, chromedp.Click(row+` button[data-how="FIN"]`))).To(Succeed())
		Eventually(func() string { return text(bctx, `#stream li[data-kind="closed"]`) }).WithTimeout(10 * time.Second).Should(ContainSubstring("conn=1"))
		Eventually(func() bool { return exists(bctx, row) }).WithTimeout(10 * time.Second).Should(BeFalse())

		By("updating the fault, removing it, and clearing all")
		Expect(run(bctx,
			chromedp.Click(`#faults tr[data-fault="lat"] button`), // Update
			chromedp.WaitReady(`#fault-cancel:not([hidden])`),
			chromedp.SetValue(`#kind-fields input[name="delay"]`, "35ms"),
			chromedp.Click("#fault-submit"),
		)).To(Succeed())
		Eventually(func() string { return text(bctx, `#faults tr[data-fault="lat"]`) }).WithTimeout(10 * time.Second).Should(ContainSubstring("delay=35ms"))
		Expect(run(bctx, chromedp.Click(`#faults tr[data-fault="lat"] button + button`))).To(Succeed()) // Remove
		Eventually(func() bool { return exists(bctx, `#faults tr[data-fault="lat"]`) }).WithTimeout(10 * time.Second).Should(BeFalse())
		for _, name := range []string{"a", "b"} {
			Expect(run(bctx, chromedp.SetValue(`#fault-form input[name="name"]`, name), chromedp.Click("#fault-submit"))).To(Succeed())
			Eventually(func() bool { return exists(bctx, fmt.Sprintf(`#faults tr[data-fault=%q]`, name)) }).WithTimeout(10 * time.Second).Should(BeTrue())
		}
		Expect(run(bctx, chromedp.Click("#clear-all"))).To(Succeed())
		Eventually(func() bool { return exists(bctx, `#faults tr`) }).WithTimeout(10 * time.Second).Should(BeFalse())
	})

	It("opens the report of a failing testkit run with its violation marked", func() {
		bctx := browser()
		goBin, err := exec.LookPath("go")
		Expect(err).NotTo(HaveOccurred())
		dir := GinkgoT().TempDir()
		cmd := exec.Command(goBin, "test", "-count=1", "-run", "TestClientWritesAfterClose", "./testdata/failing")
		cmd.Env = append(os.Environ(), "FAULTLINE_E2E_FAILING=1", "FAULTLINE_ARTIFACTS="+dir)
		out, err := cmd.CombinedOutput()
		Expect(err).To(HaveOccurred(), "the failing test passed:\n%s", out)
		Expect(string(out)).To(ContainSubstring("client wrote after the connection was closed"))
		m := regexp.MustCompile(`\S+\.report\.html`).FindString(string(out))
		Expect(m).NotTo(BeEmpty(), "the test logged no report path:\n%s", out)
		Expect(m).To(HavePrefix(dir))

		Expect(run(bctx, chromedp.Navigate("file://"+m), chromedp.WaitReady(".tl-violation"))).To(Succeed())
		Expect(text(bctx, ".violations li")).To(ContainSubstring("CheckNoWriteAfterClose: conn 1: the client wrote 5 bytes after"))
		Expect(exists(bctx, `.tl-bad[data-lane="/c1"] .tl-violation`)).To(BeTrue())
		Expect(run(bctx, chromedp.Evaluate(`document.querySelector(".violations li").click()`, nil), chromedp.WaitReady("#detail .violation-text"))).To(Succeed())
		screenshot(bctx, "report.png")
	})
})
