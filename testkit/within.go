package testkit

import "time"

// Within calls check until it returns nil or timeout passes (
// DefaultWaitTimeout if zero), and returns check's last error. It calls
// check at once, then about every 10 ms. Use it for checks that hold only
// once the proxy caught up, such as CheckNothingOpen after the client
// closed its connections.
func Within(timeout time.Duration, check func() error) error {
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
