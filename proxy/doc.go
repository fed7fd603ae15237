// Package proxy is faultline's data plane: a TCP relay from one listener to
// one upstream address that gets the socket-level details right and reports
// what happened to every connection as events.
//
// Typical use in a test:
//
//	p, err := proxy.Listen("127.0.0.1:0", proxy.Config{Upstream: redisAddr})
//	if err != nil {
//		t.Fatal(err)
//	}
//	defer p.Close()
//	cancel := p.Subscribe(func(e proxy.Event) { t.Log(e) })
//	defer cancel()
//	client := redis.NewClient(&redis.Options{Addr: p.Addr().String()})
//
// # Dial mode
//
// In ModeDial (the default) every client connection gets its own upstream
// connection, and the two directions are relayed independently by two
// named copy loops, copyUp and copyDown. A FIN is relayed as a FIN
// (CloseWrite) and the other direction keeps flowing, so half-close works
// both ways; the session ends when both directions are done. An RST, or any
// other error, is relayed as an RST to the other side (SO_LINGER 0), never as
// a clean EOF. When the upstream cannot be dialed, the client connection is
// reset.
//
// With no fault active, each copy loop waits until its source is readable,
// notes how many bytes are queued, and calls (*net.TCPConn).ReadFrom on the
// other *net.TCPConn with an *io.LimitedReader of exactly those bytes over
// the source, which Go implements with splice(2) as it does for the bare
// connection: bytes move from socket to socket through a kernel pipe and
// never enter user space. Noting the bytes under the session's lock is what
// lets a fault be put in force without waking the loop (see AddFault).
//
// # Pool mode
//
// In ModePool upstream connections are borrowed from a pool and, when the
// client's connection ends, returned to it if they are clean. The session
// ends when either side ends: a client FIN ends it too (the upstream
// connection is kept for the next client), so protocols that depend on
// half-close need ModeDial.
//
// At the end of a session both copy loops are interrupted with a read and
// write deadline in the past, set after a flag so that the loops know the
// timeout is the proxy's own. Once both have returned the deadline is
// cleared and the connection judged. It goes back to the pool only if none
// of these holds, each of which is recorded as the Reason of an
// EventDiscarded: the upstream sent FIN (ReasonUpstreamEOF) or RST
// (ReasonUpstreamReset), or a stale fault made it stale (ReasonStale,
// whether the probe caught it idle or a session met it); a copy loop
// failed with any error other than the proxy's interrupt, a timeout
// included (ReasonError); bytes were read from
// one socket but not written to the other, counted exactly from the
// kernel's tcp_info (ReasonStranded); bytes wait unread in the upstream
// socket (ReasonUnread); the proxy half-closed it (ReasonHalfClosed); the
// client reset its connection after a byte moved (ReasonClientReset); the
// client's last bytes went up after the last bytes came down, so the
// upstream may still answer a request whose client has left
// (ReasonReplyPending); it is older than PoolConfig.MaxLifetime
// (ReasonMaxLifetime).
//
// Borrowing takes the most recently returned idle connection, checks its
// idle time and lifetime and probes it without blocking (a one-byte
// MSG_PEEK|MSG_DONTWAIT read): EOF, RST or unexpected bytes discard it and
// the next one is tried; when none is left a new one is dialed. A reused
// connection is probed once more when the client's first bytes arrive, just
// before any of them is written to it; if it died in between it is replaced,
// once, by a fresh connection (EventRetried), so the client never sees a
// stale connection the proxy could have avoided.
//
// Pooling at the TCP level is only as safe as the protocol allows: the
// proxy cannot see message boundaries, so a connection is reused only when
// both directions are quiescent at the moment the client leaves, and the
// last bytes to move were the upstream's. The loops order their writes
// (each takes a number just before it writes), so a request sent by a client
// that then left without its reply (a client with a read timeout) always
// discards the connection as ReasonReplyPending. What TCP cannot show, and
// so remains:
//
//   - A reply that comes in parts with a pause between them, when the client
//     leaves during the pause: the proxy has seen bytes come down last. If
//     the rest arrives while the connection is idle, or before the next
//     client's first bytes are written to it, the borrow's probe or the
//     recheck finds it and discards the connection (EventRetried or
//     EventDiscarded with ReasonUnread). Only a rest that arrives after the
//     next client's request went up reaches that client.
//   - Pipelined requests, and upstreams that send without being asked
//     (pushes, pub/sub): bytes moving both ways at once do not say which
//     reply answers which request. Use ModeDial for such protocols.
//   - Two streams at once both ways (not request/response): the connection
//     is discarded as ReasonReplyPending when the client's last write began
//     after the upstream's, which costs a dial, never a wrong byte.
//
// # Faults and bounds
//
// A proxy holds at most MaxFaults (1000) faults; AddFault refuses more
// with ErrTooManyFaults. Each fault is checked by faults.Normalized, which
// bounds every field (see package faults), and the data plane's arithmetic
// on them saturates, so no value can panic or wrap. A new connection looks
// only at the faults that may target it (which all or new, which ids
// naming its ID, which existing added while it was live), so faults for
// other connections cost it nothing. Config values are bounded too
// (MaxTimeout, MaxPoolSize): WithDefaults refuses beyond them with
// ErrBadConfig.
//
// # Events
//
// Every downstream and upstream connection has an ID, counted from 1 per
// Proxy. Subscribe receives every Event in Seq order; with no subscriber,
// emitting an event costs one atomic load. Who ended a connection, and
// how, is attributed to the socket where the end was observed, not to the
// copy loop that noticed it (see Event).
//
// # Goroutines
//
// A session relays on two goroutines, one per direction. In ModePool they
// are goroutines that earlier sessions left parked, when there are any (at
// most 64 stay parked), so that a pooled connection does not pay for
// growing two fresh 2 KiB stacks; in ModeDial they are new, so that an idle
// connection holds two small stacks.
//
// # Panics
//
// A panic in a goroutine that serves one connection does not take the
// process down: the session recovers it, resets that connection both ways
// (a pooled upstream connection is discarded with ReasonPanic), records an
// EventClosed by ByProxy, How RST, with an Err wrapping ErrPanic, and logs
// the panic and its stack to Config.Logger. Other connections go on.
//
// # Closing
//
// Close stops accepting, ends every session, closes the pool's connections,
// ends the parked goroutines and returns only when every goroutine the proxy
// started has exited.
package proxy
