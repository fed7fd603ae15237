package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
)

// The CI chaos example (examples/ci-chaos, docs/ci-chaos.md) runs here as
// a CI job would run it, so that it cannot rot.
var _ = Describe("the CI chaos example", Label("matrix"), func() {
	var script, bin string

	BeforeEach(func() {
		for _, tool := range []string{"psql", "redis-cli", "curl"} {
			if _, err := exec.LookPath(tool); err != nil {
				skipOrFail(tool + " not found in PATH (Debian: postgresql-client, redis-tools, curl)")
			}
		}
		if !serverAnswers(postgresAddr) {
			skipOrFail("PostgreSQL does not answer on " + postgresAddr + ": start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), or run .ci/servers")
		}
		_, file, _, _ := runtime.Caller(0)
		script = filepath.Join(filepath.Dir(file), "..", "examples", "ci-chaos", "run.sh")
		var err error
		bin, err = gexec.Build("github.com/faultline-proxy/faultline/cmd/faultline")
		Expect(err).NotTo(HaveOccurred())
	})

	run := func(env ...string) *gexec.Session {
		cmd := exec.Command(script)
		cmd.Env = append(os.Environ(), append([]string{"FAULTLINE=" + bin, "REDIS_ADDR=" + redisAddr}, env...)...)
		s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s).WithTimeout(60 * time.Second).Should(gexec.Exit())
		return s
	}

	It("passes against the real servers", func() {
		s := run()
		Expect(s.ExitCode()).To(Equal(0), "run.sh failed:\n%s", s.Out.Contents())
		Expect(string(s.Out.Contents())).To(HaveSuffix("PASS\n"))
	})

	It("fails the job when a check does not hold", func() {
		s := run("EXPECT_RESETS=2")
		Expect(s.ExitCode()).To(Equal(1))
		Expect(string(s.Out.Contents())).To(ContainSubstring("FAIL: the reset fired 1 times, want 2"))
	})
})

// skipOrFail skips the spec with msg, or fails it when
// FAULTLINE_E2E_REQUIRE=1 (CI) says the servers must be there.
func skipOrFail(msg string) {
	if os.Getenv("FAULTLINE_E2E_REQUIRE") == "1" {
		Fail(msg + " (FAULTLINE_E2E_REQUIRE=1)")
	}
	Skip(msg)
}
