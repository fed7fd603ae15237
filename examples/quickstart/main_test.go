// Package quickstart holds the complete test shown in the README's
// "Testing in Go": net/http's client through a faultline proxy to a server
// the test starts, a stall injected and cleared, and the testkit's checks.
// make test runs it; copy it and put your own client in.
package quickstart_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the
// proxy's, the server's or the client's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
