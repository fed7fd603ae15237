package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

// nodeDir holds the Node.js test of toxiproxy-node-client (test.js) and
// its pinned dependency (package.json, package-lock.json): .ci/run installs
// it with npm ci.
const nodeDir = "toxiproxy-node"

// A second toxiproxy client, in another language, against the binary:
// toxiproxy-node-client from npm runs its calls and checks each toxic's
// effect on its own sockets (toxiproxy-node/test.js).
var _ = Describe("toxiproxy-node-client against faultline toxiproxy-server", func() {
	It("works unchanged", func() {
		node := requireNode()
		bin, err := gexec.Build("github.com/faultline-proxy/faultline/cmd/faultline")
		Expect(err).NotTo(HaveOccurred())
		port := freePort()
		srv, err := gexec.Start(exec.Command(bin, "toxiproxy-server", "-host", "127.0.0.1", "-port", strconv.Itoa(port)), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			srv.Terminate()
			Eventually(srv).WithTimeout(10 * time.Second).Should(gexec.Exit(0))
		})
		Eventually(srv.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(`toxiproxy API listening on http://127\.0\.0\.1:%d`, port))

		cmd := exec.Command(node, "test.js")
		cmd.Dir = nodeDir
		cmd.Env = append(os.Environ(), fmt.Sprintf("TOXIPROXY_URL=http://127.0.0.1:%d", port))
		run, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(run).WithTimeout(2*time.Minute).Should(gexec.Exit(0), "node test.js failed (its output is above)")
		Expect(run.Out).To(gbytes.Say("ok"))
	})
})

// requireNode returns the node binary, or skips (fails, with
// FAULTLINE_E2E_REQUIRE=1) when node 18 or later or the installed client
// is missing.
func requireNode() string {
	missing := func(why string) string {
		if os.Getenv("FAULTLINE_E2E_REQUIRE") == "1" {
			Fail(why + " and FAULTLINE_E2E_REQUIRE=1")
		}
		Skip(why)
		return ""
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return missing("node not found in PATH: install Node.js 18 or later to run the toxiproxy-node-client test")
	}
	out, err := exec.Command(node, "--version").Output()
	m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(out)
	if err != nil || m == nil {
		return missing(fmt.Sprintf("node --version: %q, %v", strings.TrimSpace(string(out)), err))
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 18 {
		return missing(fmt.Sprintf("node %s is too old: toxiproxy-node-client needs 18 or later", strings.TrimSpace(string(out))))
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "toxiproxy-node-client", "package.json")); err != nil {
		return missing("toxiproxy-node-client is not installed: run npm ci in e2e/" + nodeDir)
	}
	return node
}
