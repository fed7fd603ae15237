package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNoConn is returned by CloseConn for a connection ID that is not live.
var ErrNoConn = errors.New("proxy: no such connection")

// ConnInfo describes a live downstream connection.
type ConnInfo struct {
	ID       uint64    `json:"id"`                 // the downstream connection's ID
	Upstream uint64    `json:"upstream,omitempty"` // its upstream connection's ID; 0 until there is one
	Client   string    `json:"client"`             // the client's address
	Started  time.Time `json:"started"`            // when it was accepted
	Pooled   bool      `json:"pooled"`             // the upstream connection belongs to the pool (ModePool)
	Reused   bool      `json:"reused"`             // the upstream connection came idle from the pool

	// BytesUp and BytesDown are the bytes received from the client and
	// from the upstream so far. They are the kernel's counts (tcp_info), so
	// they move while bytes are being spliced.
	BytesUp   int64    `json:"bytes_up"`
	BytesDown int64    `json:"bytes_down"`
	Faults    []string `json:"faults,omitempty"` // names of the faults in force on either direction
}

// Conns returns the live downstream connections in ID order.
func (p *Proxy) Conns() []ConnInfo {
	live := p.liveSessions()
	slices.SortFunc(live, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	out := make([]ConnInfo, 0, len(live))
	p.faults.mu.Lock()
	names := make([][]string, len(live))
	for i, s := range live {
		// Each list holds a fault once; a fault on both is named once,
		// looked up in a set so that the cost grows with the faults, not
		// their square.
		up, down := s.up.active, s.down.active
		names[i] = make([]string, 0, len(up)+len(down))
		var onUp map[*activeFault]struct{}
		if len(up) > 0 && len(down) > 0 {
			onUp = make(map[*activeFault]struct{}, len(up))
		}
		for _, af := range up {
			names[i] = append(names[i], af.f.Name)
			if onUp != nil {
				onUp[af] = struct{}{}
			}
		}
		for _, af := range down {
			if _, ok := onUp[af]; !ok {
				names[i] = append(names[i], af.f.Name)
			}
		}
		if len(names[i]) == 0 {
			names[i] = nil
		}
	}
	p.faults.mu.Unlock()
	for i, s := range live {
		ci := ConnInfo{ID: s.id, Client: s.client.RemoteAddr().String(), Started: s.started, Pooled: p.pool != nil, Faults: names[i]}
		s.mu.Lock()
		if s.uc != nil {
			ci.Upstream = s.uc.id
			ci.Reused = s.reusedUC
		}
		s.mu.Unlock()
		ci.BytesUp, ci.BytesDown = s.liveBytes()
		out = append(out, ci)
	}
	return out
}

// liveBytes returns the bytes received so far from the client and from
// the upstream: the kernel's counts while the sockets are open (splice
// moves bytes without the loops counting them until it returns), else the
// loops' counts.
func (s *session) liveBytes() (up, down int64) {
	return s.liveUp(), s.liveDown()
}

func (s *session) liveUp() int64 {
	up := s.up.n.Load()
	if n, err := recvBytes(s.client); err == nil {
		up = max(up, int64(n))
	}
	return up
}

func (s *session) liveDown() int64 {
	down := s.down.n.Load()
	s.mu.Lock()
	uc, base := s.uc, s.downBase
	s.mu.Unlock()
	if uc != nil {
		if n, err := recvBytes(uc.c); err == nil {
			down = max(down, int64(n)-int64(base))
		}
	}
	return down
}

// Bytes returns the bytes relayed from clients (up) and from the upstream
// (down) since the proxy started, live connections included.
func (p *Proxy) Bytes() (up, down int64) {
	up, down = p.doneUp.Load(), p.doneDown.Load()
	for _, s := range p.liveSessions() {
		u, d := s.liveBytes()
		up += u
		down += d
	}
	return up, down
}

// CloseConn ends the live downstream connection id as the proxy ends any
// session (the copy loops are interrupted; in ModePool the upstream
// connection is judged and may be reused), closing the client's connection
// with how: FIN, an orderly close, or RST, an abortive one.
func (p *Proxy) CloseConn(id uint64, how CloseHow) error {
	if how != FIN && how != RST {
		return fmt.Errorf("%w: close how %d", ErrBadConfig, how)
	}
	for _, s := range p.liveSessions() {
		if s.id == id {
			s.closeBy(how, fmt.Errorf("closed by request (%s)", how))
			return nil
		}
	}
	return fmt.Errorf("%w: %d", ErrNoConn, id)
}

// closeBy ends the session from the proxy's side, closing the client with
// how (FIN or RST).
func (s *session) closeBy(how CloseHow, cause error) bool {
	s.mu.Lock()
	if s.stopped || s.aborted {
		s.mu.Unlock()
		return false
	}
	s.closeClientHow = how
	s.mu.Unlock()
	s.noteEnd(ByProxy, how, cause)
	s.interrupt()
	return true
}

// DrainPool closes every idle pooled connection and returns how many it
// closed; busy ones are untouched. It is a no-op in ModeDial.
func (p *Proxy) DrainPool() int {
	if p.pool == nil {
		return 0
	}
	return p.pool.drain()
}
