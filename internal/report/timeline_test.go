package report

import (
	"os"
	"os/exec"
	"testing"
)

// TestTimelineModel runs the timeline model's unit tests
// (testdata/timeline_test.js) with node; it skips without node unless
// FAULTLINE_E2E_REQUIRE is set, as in CI.
func TestTimelineModel(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("FAULTLINE_E2E_REQUIRE") != "" {
			t.Fatal("node is needed for the timeline's tests")
		}
		t.Skip("no node")
	}
	out, err := exec.Command(node, "testdata/timeline_test.js").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
