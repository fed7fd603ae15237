package control

import (
	"net/http"
	"strings"
	"testing"
)

// TestRuntimeMetrics: /metrics has Go runtime and process metrics, so a
// long run can be watched for goroutines, fds and memory; each server has
// its own registry, so two in one process do not collide.
func TestRuntimeMetrics(t *testing.T) {
	for _, fx := range []*fixture{newFixture(t, Options{}), newFixture(t, Options{})} {
		status, b := fx.do(t, "GET", "/metrics", nil)
		if status != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", status, b)
		}
		for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_open_fds", "process_resident_memory_bytes", "faultline_events_logged_total"} {
			if !strings.Contains(string(b), "\n"+name+" ") {
				t.Errorf("GET /metrics: no sample of %s in\n%s", name, b)
			}
		}
	}
}
