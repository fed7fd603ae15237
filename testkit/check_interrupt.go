package testkit

import (
	"errors"
	"fmt"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
)

// ErrSlowInterrupt is wrapped by CheckInterruptsWithin's error.
var ErrSlowInterrupt = errors.New("testkit: copy loops slow to stop")

// CheckInterruptsWithin checks that every interrupt of a pool-mode session
// stopped both copy loops within bound: every EventInterrupted's Took is at
// most bound. It reads the whole log and returns an error wrapping
// ErrSlowInterrupt that quotes each slower interrupt.
func CheckInterruptsWithin(l *EventLog, bound time.Duration) error {
	v := violations{sentinel: ErrSlowInterrupt}
	for _, e := range l.All() {
		if e.Kind == proxy.EventInterrupted && e.Took > bound {
			v.add(fmt.Sprintf("conn %d: copy loops took %s to stop, over %s", e.Conn, e.Took, bound), e)
		}
	}
	return v.err()
}
