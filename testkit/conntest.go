package testkit

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
	"golang.org/x/net/nettest"
)

// TestConn runs golang.org/x/net/nettest's net.Conn conformance suite on
// connections relayed by a proxy configured by opts: in each pipe, c1 is a
// client's connection to the proxy and c2 the upstream's accepted one, so
// every byte, deadline, FIN and close of the suite crosses both copy loops.
// Each pipe gets its own proxy and upstream listener. Once a pipe is
// stopped, its proxy's events are checked: every connection closed
// (CheckNothingOpen), CheckNoInvalidReuse, and CheckInterruptsWithin one
// second; TestConn reports a failed check with t.Errorf.
//
// In pool mode with PoolConfig.MaxIdle left zero, TestConn sets it to -1:
// a clean upstream connection would otherwise go back to the pool when c1
// closes, and c2 would never see the EOF that a net.Conn pair promises.
func TestConn(t *testing.T, opts ...Option) {
	t.Helper()
	var (
		mu   sync.Mutex // guards errs
		errs []error
		n    int // pipes made; guarded by mu
	)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		mu.Lock()
		n++
		id := n
		mu.Unlock()
		c1, c2, px, err := relayedPipe(t, opts)
		if err != nil {
			return nil, nil, nil, err
		}
		stop = func() {
			_ = c1.Close()
			_ = c2.Close()
			err := Within(DefaultWaitTimeout, func() error { return CheckNothingOpen(px) })
			_ = px.Close()
			err = errors.Join(err, CheckNoInvalidReuse(px.Events()), CheckInterruptsWithin(px.Events(), time.Second))
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("pipe %d: %w", id, err))
				mu.Unlock()
			}
		}
		return c1, c2, stop, nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, err := range errs {
		t.Errorf("testkit.TestConn: %v", err)
	}
}

// relayedPipe starts an upstream listener and a proxy in front of it, and
// returns the two ends of one relayed connection and the proxy. The
// listener is closed before it returns: the proxy dials the upstream as it
// accepts c1, and no other connection is wanted. The proxy is not tied to
// tb.Cleanup; the caller closes it.
func relayedPipe(tb testing.TB, opts []Option) (c1, c2 net.Conn, px *Proxy, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer ln.Close()
	px = NewUnstartedProxy(tb, ln.Addr().String(), opts...)
	if px.Config.Mode == proxy.ModePool && px.Config.Pool.MaxIdle == 0 {
		px.Config.Pool.MaxIdle = -1
	}
	be, err := listenLocal(px.Config)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := px.attach(be); err != nil {
		_ = be.close()
		return nil, nil, nil, err
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() { // owned here: ends with an accepted connection or with ln closed, and is waited for below
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	c1, err = net.DialTimeout("tcp", px.Addr(), DefaultWaitTimeout)
	if err != nil {
		_ = ln.Close()
		<-acc
		_ = px.Close()
		return nil, nil, nil, err
	}
	var a accepted
	select {
	case a = <-acc:
	case <-time.After(DefaultWaitTimeout):
		_ = ln.Close()
		a = <-acc
		if a.err == nil {
			_ = a.c.Close()
			a.err = fmt.Errorf("testkit: upstream accepted no connection in %s", DefaultWaitTimeout)
		}
	}
	if a.err != nil {
		_ = c1.Close()
		_ = px.Close()
		return nil, nil, nil, a.err
	}
	return c1, a.c, px, nil
}
