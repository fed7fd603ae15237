package proxy

import "errors"

var (
	// ErrBadConfig is returned by Listen for an invalid Config.
	ErrBadConfig = errors.New("proxy: invalid config")
	// ErrBadMode is returned for a mode other than dial or pool.
	ErrBadMode = errors.New("proxy: unknown mode")
	// ErrProxyClosed is returned by operations on a closed Proxy.
	ErrProxyClosed = errors.New("proxy: closed")
	// ErrPoolExhausted is recorded when a session waited Config.DialTimeout
	// for a pool slot and got none.
	ErrPoolExhausted = errors.New("proxy: pool exhausted")
	// ErrNotTCP is returned when a listener yields connections that are not
	// *net.TCPConn (the relay needs TCP sockets on both sides).
	ErrNotTCP = errors.New("proxy: not a TCP connection")
)
