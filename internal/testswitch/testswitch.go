// Package testswitch holds switches that break faultline on purpose, so that
// tests can show their checks catch the bug. Library code never sets them.
package testswitch

import "sync/atomic"

// BreakPoolRelease, while true, makes every pool-mode proxy in the process
// commit the classic pooling bug: an upstream connection judged invalid is
// still recorded as discarded (an EventDiscarded with its reason), but it is
// put back in the pool anyway, so a later session may borrow it.
var BreakPoolRelease atomic.Bool
