package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSoak is the short chaos soak that make test runs: the real binary,
// both modes, a few thousand connections each, about 20 seconds. make soak
// runs the same harness at full size.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak builds and runs the binary; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := buildFaultline(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(ctx, []string{"-faultline", bin, "-conns", "2000", "-concurrency", "100",
		"-max-duration", "16s", "-settle", "10s", "-progress", "0"}, &out)
	t.Logf("soak output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
}
