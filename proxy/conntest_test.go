package proxy

import (
	"net"
	"testing"

	"golang.org/x/net/nettest"
)

// TestConnConformance runs x/net/nettest's net.Conn conformance suite on a
// connection relayed by the proxy: c1 is the client's connection to the
// proxy and c2 the upstream's accepted connection, so every byte, FIN and
// close in the suite crosses both copy loops.
func TestConnConformance(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "dial", cfg: Config{Mode: ModeDial}},
		// In pool mode a clean upstream connection goes back to the pool when
		// the client closes, so c2 would never see EOF and BasicIO (which
		// closes c1 and reads c2 to EOF) would hang. MaxIdle -1 keeps no idle
		// connection: the upstream is closed when the session ends, which is
		// what a net.Conn pair promises.
		{name: "pool", cfg: Config{Mode: ModePool, Pool: PoolConfig{MaxIdle: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				return makeRelayedPipe(tt.cfg)
			})
		})
	}
}

// makeRelayedPipe starts an upstream listener and a proxy in front of it,
// and returns the client side and the upstream side of one relayed
// connection. stop closes both, the proxy and the listener, and waits for
// the proxy's goroutines.
func makeRelayedPipe(cfg Config) (c1, c2 net.Conn, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Upstream = ln.Addr().String()
	p, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		_ = ln.Close()
		return nil, nil, nil, err
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	c1, err = net.DialTimeout("tcp", p.Addr().String(), waitTimeout)
	if err != nil {
		_ = ln.Close() // ends the Accept
		<-acc
		_ = p.Close()
		return nil, nil, nil, err
	}
	a := <-acc // the proxy dials the upstream as soon as it accepts c1
	if a.err != nil {
		_ = c1.Close()
		_ = ln.Close()
		_ = p.Close()
		return nil, nil, nil, a.err
	}
	stop = func() {
		_ = c1.Close()
		_ = a.c.Close()
		_ = ln.Close()
		_ = p.Close()
	}
	return c1, a.c, stop, nil
}
