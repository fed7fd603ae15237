package proxy

import (
	"math"
	"time"
)

// paceBurst is the most credit a bandwidth-limited direction banks while
// it is idle. A loop paces against a start time and the bytes sent since
// (loop.paceStart, loop.paceSent): its bytes are due paceSent/rate after
// paceStart. When that lies more than paceBurst in the past (the direction
// was idle), the count starts again from paceBurst ago, so a reply after a
// pause is paced like any other instead of going out at once on the credit
// of the pause, while the few milliseconds a timer overshoots are still
// made up.
const paceBurst = 100 * time.Millisecond

// capCredit returns start and sent for pacing at rate from now on: as
// given, or restarted from paceBurst before now if the bytes sent were due
// longer ago than that.
func capCredit(start time.Time, sent, rate int64, now time.Time) (time.Time, int64) {
	if floor := now.Add(-paceBurst); start.Add(rateTime(sent, rate)).Before(floor) {
		return floor, 0
	}
	return start, sent
}

// rateTime is how long n bytes take at rate bytes per second (rate > 0),
// at most math.MaxInt64 nanoseconds.
func rateTime(n, rate int64) time.Duration {
	d := float64(n) / float64(rate) * float64(time.Second)
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}
