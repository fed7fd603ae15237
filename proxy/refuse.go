package proxy

import (
	"context"
	"fmt"
	"net"
)

// refuse closes the listener, so that new clients get connection refused
// (and any not yet accepted an RST), while live connections go on.
func (p *Proxy) refuse() {
	p.mu.Lock()
	if p.refusing || p.closing {
		p.mu.Unlock()
		return
	}
	p.refusing = true
	p.resume = make(chan struct{})
	ln := p.ln
	p.mu.Unlock()
	_ = ln.Close()
}

// unrefuse listens again on the proxy's address.
func (p *Proxy) unrefuse() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.refusing || p.closing {
		return nil
	}
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", p.addr.String())
	if err != nil {
		return fmt.Errorf("proxy: listen again on %s: %w", p.addr, err)
	}
	p.ln = ln.(*net.TCPListener)
	p.refusing = false
	close(p.resume)
	return nil
}

// waitResume is called by the accept loop when its listener is closed: it
// waits while a refuse fault holds the listener closed and reports whether
// to accept again (false: the proxy is closing).
func (p *Proxy) waitResume() bool {
	p.mu.Lock()
	refusing, resume := p.refusing, p.resume
	p.mu.Unlock()
	if !refusing {
		return false
	}
	select {
	case <-resume:
		return true
	case <-p.stopAcc:
		return false
	}
}
