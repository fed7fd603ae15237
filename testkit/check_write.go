package testkit

import (
	"errors"
	"fmt"
	"slices"

	"github.com/faultline-proxy/faultline/proxy"
)

// ErrWriteAfterClose is wrapped by CheckNoWriteAfterClose's error.
var ErrWriteAfterClose = errors.New("testkit: client wrote after the connection was closed toward it")

// ErrCannotJudge is wrapped by the error of a check that cannot judge the
// log it was given (CheckNoWriteAfterClose on a pool-mode log): neither a
// pass nor a violation.
var ErrCannotJudge = errors.New("testkit: the check cannot judge this log")

// CheckNoWriteAfterClose checks the client's own connection pool: the
// client never wrote on a connection after the proxy had relayed a FIN to
// it. Such a write is what a pool does that hands out a connection the
// server closed while it sat idle; the request then fails, or worse, is
// retried on a connection the server never answers.
//
// The check compares, for each downstream connection, the bytes taken from
// the client when the proxy half-closed it toward the client (the first
// EventHalfClosed with Dir proxy.Down) with the bytes in its EventClosed:
// more bytes at the end mean the client wrote after the FIN. This is
// observable in dial mode, where the proxy relays the upstream's FIN and
// keeps the other direction open. In pool mode an upstream FIN ends the
// session (the client's connection is closed, not half-closed), so a later
// write is refused by the kernel and never counted: on a log with a
// pool-mode connection (one with an EventBorrowed) and no violation, the
// check returns an error wrapping ErrCannotJudge, not nil. Protocols in
// which the server legitimately half-closes first and the client keeps
// sending are not for this check.
//
// It reads the whole log; a connection not yet closed is not judged. It
// returns an error wrapping ErrWriteAfterClose that quotes, for each such
// connection, the half-close and the close.
func CheckNoWriteAfterClose(l *EventLog) error {
	v := violations{sentinel: ErrWriteAfterClose}
	fin := make(map[uint64]proxy.Event) // conn -> first FIN toward the client
	var pooled []uint64                 // pool-mode conns, in order
	for _, e := range l.All() {
		switch {
		case e.Kind == proxy.EventBorrowed:
			if !slices.Contains(pooled, e.Conn) {
				pooled = append(pooled, e.Conn)
			}
		case e.Kind == proxy.EventHalfClosed && e.Dir == proxy.Down:
			if _, ok := fin[e.Conn]; !ok {
				fin[e.Conn] = e
			}
		case e.Kind == proxy.EventClosed:
			hc, ok := fin[e.Conn]
			if ok && e.BytesUp > hc.BytesUp {
				v.add(fmt.Sprintf("conn %d: the client wrote %d bytes after the proxy relayed the upstream's FIN to it (%d bytes before, %d at close)",
					e.Conn, e.BytesUp-hc.BytesUp, hc.BytesUp, e.BytesUp), hc, e)
			}
		}
	}
	if err := v.err(); err != nil || len(pooled) == 0 {
		return err
	}
	return fmt.Errorf("%w: CheckNoWriteAfterClose: conn %d is in pool mode%s, where an upstream FIN ends the session and a later write is never seen (the check is for dial mode)",
		ErrCannotJudge, pooled[0], andMore(len(pooled)-1))
}

// andMore writes " (and n more)" for n > 0.
func andMore(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d more)", n)
}
