package proxy

// Request/response exchanges, for faults that act on some of them only
// (faults.Fault.FromExchange, EveryExchange). An exchange begins with a
// write up that follows a write down (or is the first write up once
// exchanges are counted); the bytes down after it are its reply. The
// loops count them only once a fault that needs them applies to the
// session (session.exchOn): until then a write costs one atomic load more.
//
// copyDown marks session.downSince before each write, not after: a client
// may read the reply and send its next request before copyDown's write
// call has returned, and that request must begin a new exchange.

// noteExchange is called by a loop before each write: copyDown marks
// that a reply is coming down; copyUp counts an exchange if its write
// follows one.
func (s *session) noteExchange(l *loop) {
	if !s.exchOn.Load() {
		return
	}
	if l.dir == Down {
		if !s.downSince.Load() {
			s.downSince.Store(true)
		}
		return
	}
	if s.downSince.Load() && s.downSince.CompareAndSwap(true, false) {
		s.exch.Add(1)
	}
}

// exchangeAt returns the exchange that the next bytes l writes belong to,
// if chain c has a fault that acts only on some (else 0): for copyUp the
// exchange its next write would begin or continue, for copyDown the last
// one begun (bytes down before any request are exchange 0).
func (s *session) exchangeAt(l *loop, c *chain) int64 {
	if c == nil || !c.exch {
		return 0
	}
	k := s.exch.Load()
	if l.dir == Up && s.downSince.Load() {
		k++
	}
	return k
}

// exchangeMoved reports whether the bytes l just found queued belong to
// another exchange than the one its faults acting now were taken for (see
// loop.effective), so that the loop must take them again (errRechain)
// before it moves a byte: an exchange began while it waited.
func (s *session) exchangeMoved(l *loop, pub *chain) bool {
	return pub != nil && pub.exch && s.exchangeAt(l, pub) != l.exchSeen
}
