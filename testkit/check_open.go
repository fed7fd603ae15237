package testkit

import (
	"errors"
	"fmt"

	"github.com/faultline-proxy/faultline/proxy"
)

// ErrLeftOpen is wrapped by CheckNothingOpen's error.
var ErrLeftOpen = errors.New("testkit: connections left open")

// CheckNothingOpen checks that nothing is left open on p: every accepted
// connection has its EventClosed, the proxy lists no live connection, and
// no pooled upstream connection is busy (idle ones may stay pooled). Run it
// once the client is done; closing takes the proxy a moment after the
// client closes, so wait for it, for example with Within. It returns an
// error wrapping ErrLeftOpen that quotes each open connection's accepted
// event and the live connections.
func CheckNothingOpen(p *Proxy) error {
	v := violations{sentinel: ErrLeftOpen}
	open := make(map[uint64]proxy.Event)
	var order []uint64
	for _, e := range p.Events().All() {
		switch e.Kind {
		case proxy.EventAccepted:
			open[e.Conn] = e
			order = append(order, e.Conn)
		case proxy.EventClosed:
			delete(open, e.Conn)
		}
	}
	for _, c := range order {
		if e, ok := open[c]; ok {
			v.add(fmt.Sprintf("conn %d was accepted and has not closed", c), e)
		}
	}
	if be, err := p.backend(); err == nil {
		cs, err := be.conns()
		if err != nil {
			return fmt.Errorf("%w: cannot list connections: %w", ErrLeftOpen, err)
		}
		for _, c := range cs {
			v.add("live: " + formatConn(c))
		}
		st, err := be.pool()
		if err != nil {
			return fmt.Errorf("%w: cannot read the pool: %w", ErrLeftOpen, err)
		}
		if st.Busy > 0 {
			v.add(fmt.Sprintf("the pool has %d busy upstream connections", st.Busy))
		}
	}
	return v.err()
}
