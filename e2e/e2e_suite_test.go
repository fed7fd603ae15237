// Package e2e runs the faultline binary as a real process in front of a
// real redis-server and drives it with a real client (go-redis) through the
// control API and the testkit. It needs redis-server in PATH (.ci/run
// installs it); without one the suite is skipped, unless
// FAULTLINE_E2E_REQUIRE=1, as in CI, makes that a failure. The client
// matrix (matrix_*_test.go, docs/clients.md) and the CI chaos example
// also need the servers .ci/servers starts; a row whose server does not
// answer skips, saying how to start it (fails with FAULTLINE_E2E_REQUIRE=1).
package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "faultline end to end")
}

// The processes the suite shares, started once.
var (
	redisAddr  string                // redis-server, direct
	proxyAddr  = map[string]string{} // faultline's proxies by name
	controlURL string
	faultline  *gexec.Session
	redisProc  *gexec.Session
)

// freePort returns a loopback port nobody listens on right now.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var _ = BeforeSuite(func() {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("FAULTLINE_E2E_REQUIRE") == "1" {
			Fail("redis-server not found in PATH and FAULTLINE_E2E_REQUIRE=1 (apt-get install redis-server)")
		}
		Skip("redis-server not found in PATH: install it (Debian: apt-get install redis-server) to run the end-to-end suite")
	}
	port := freePort()
	redisAddr = fmt.Sprintf("127.0.0.1:%d", port)
	redisProc, err = gexec.Start(exec.Command(redisBin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no"), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() error {
		c, err := net.Dial("tcp", redisAddr)
		if err == nil {
			c.Close()
		}
		return err
	}).WithTimeout(10 * time.Second).Should(Succeed())

	bin, err := gexec.Build("github.com/faultline-proxy/faultline/cmd/faultline")
	Expect(err).NotTo(HaveOccurred())
	cfg := filepath.Join(GinkgoT().TempDir(), "faultline.yaml")
	Expect(os.WriteFile(cfg, []byte(fmt.Sprintf(`proxies:
  - name: redis
    upstream: %[1]s
  - name: redis-pool
    upstream: %[1]s
    mode: pool
    pool:
      size: 8
`, redisAddr)), 0o600)).To(Succeed())
	faultline, err = gexec.Start(exec.Command(bin, "run", "--config", cfg, "--control", "127.0.0.1:0"), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	line := regexp.MustCompile(`proxy (\S+) listening on (\S+) -> `)
	for range 2 {
		Eventually(faultline.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(line.String()))
	}
	for _, m := range line.FindAllStringSubmatch(string(faultline.Out.Contents()), -1) {
		proxyAddr[m[1]] = m[2]
	}
	Eventually(faultline.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(`control listening on (http://\S+)`))
	controlURL = regexp.MustCompile(`control listening on (http://\S+)`).FindStringSubmatch(string(faultline.Out.Contents()))[1]
	Expect(proxyAddr).To(HaveKey("redis"))
	Expect(proxyAddr).To(HaveKey("redis-pool"))
})

var _ = AfterSuite(func() {
	if faultline != nil {
		// SIGTERM: a clean stop, exit status 0.
		faultline.Terminate()
		Eventually(faultline).WithTimeout(10 * time.Second).Should(gexec.Exit(0))
	}
	if redisProc != nil {
		redisProc.Kill()
		Eventually(redisProc).WithTimeout(10 * time.Second).Should(gexec.Exit())
	}
	gexec.CleanupBuildArtifacts()
})

// ctx bounds one client call.
func ctx() context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	DeferCleanup(cancel)
	return c
}
