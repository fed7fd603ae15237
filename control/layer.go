package control

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// The operations of the HTTP API as methods, for layers that translate
// another API onto this server's proxies and faults (package
// control/toxiproxy). Each returns an *api.Error on failure, as the HTTP
// API would answer it.

// Proxy describes the named proxy.
func (s *Server) Proxy(name string) (api.Proxy, error) {
	e, err := s.entry(name)
	if err != nil {
		return api.Proxy{}, err
	}
	return e.info(), nil
}

// UpdateProxy applies u to the named proxy, as PATCH /api/v1/proxies/{name}.
func (s *Server) UpdateProxy(name string, u api.ProxyUpdate) (api.Proxy, error) {
	return s.updateProxy(name, u)
}

// DeleteProxy closes and forgets the named proxy.
func (s *Server) DeleteProxy(name string) error { return s.deleteProxy(name) }

// Reset removes every fault and enables every proxy, as POST /api/v1/reset.
func (s *Server) Reset() error { return s.reset() }

// Faults returns the named proxy's faults in the order they were added.
func (s *Server) Faults(name string) ([]faults.Fault, error) {
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	return e.faults(), nil
}

// AddFault adds f to the named proxy and returns it as in force, once in
// force on every live connection it targets.
func (s *Server) AddFault(name string, f faults.Fault) (faults.Fault, error) {
	return s.injectFault(name, f)
}

// UpdateFault replaces the fault named f.Name on the named proxy.
func (s *Server) UpdateFault(name string, f faults.Fault) (faults.Fault, error) {
	return s.updateFault(name, f)
}

// RemoveFault removes the named fault from the named proxy, returning once
// it acts on no connection.
func (s *Server) RemoveFault(name, fault string) error { return s.removeFault(name, fault) }

// Conns returns the named proxy's live connections (none while it is
// disabled).
func (s *Server) Conns(name string) ([]proxy.ConnInfo, error) {
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	p := e.p
	e.mu.Unlock()
	if p == nil {
		return nil, nil
	}
	return p.Conns(), nil
}

// CloseConn closes the named proxy's live connection id.
func (s *Server) CloseConn(name string, id uint64, how proxy.CloseHow) error {
	p, err := s.liveProxy(name)
	if err != nil {
		return err
	}
	if err := p.CloseConn(id, how); err != nil {
		return api.Errorf(api.ErrNotFound, "proxy %s has no live connection %d", name, id)
	}
	return nil
}

// Mount serves h, behind the same Host and Origin checks, body limit and
// panic recovery as the API, for every request whose path is neither under
// /api/ nor /metrics: another API answered on the same port (package
// control/toxiproxy). The token, if any, is not asked of these requests;
// see ListenExtra for why. Call Mount before Listen.
func (s *Server) Mount(h http.Handler) { s.extra.Store(&h) }

// withExtra sends requests outside faultline's own paths to the handler
// Mount gave, if any.
func (s *Server) withExtra(own http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := s.extra.Load(); h != nil && !ownPath(r.URL.Path) {
			(*h).ServeHTTP(w, r)
			return
		}
		own.ServeHTTP(w, r)
	})
}

func ownPath(p string) bool {
	return p == api.Prefix || strings.HasPrefix(p, api.Prefix+"/") || strings.HasPrefix(p, "/api/") || p == "/metrics"
}

// ListenExtra serves h on a second address until Close, behind the same
// Host and Origin checks, body limit and panic recovery as the API (the
// token is not asked: the clients of another API, such as toxiproxy's,
// send none). Since nothing authenticates it, addr must be loopback unless
// Options.Insecure, whatever the Token; otherwise ListenExtra fails with
// ErrInsecureListen.
func (s *Server) ListenExtra(addr string, h http.Handler) (net.Addr, error) {
	if err := s.checkOpenExposure(addr, nil); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := s.checkOpenExposure(addr, ln.Addr()); err != nil {
		_ = ln.Close()
		return nil, err
	}
	hs := &http.Server{Handler: s.guardOpen(s.recoverHTTP(h)), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil, errors.New("control: server closed")
	}
	s.extraSrvs = append(s.extraSrvs, hs)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("control: extra listener stopped", "err", err)
		}
	}()
	return ln.Addr(), nil
}

// checkOpenExposure is checkExposure for a listener that asks no token:
// beyond loopback only with Options.Insecure.
func (s *Server) checkOpenExposure(addr string, bound net.Addr) error {
	if s.opts.Insecure {
		return nil
	}
	if bound != nil {
		if isLoopback(bound) {
			return nil
		}
		return fmt.Errorf("control: listen on %s (%s): %w", addr, bound, ErrInsecureListen)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil // net.Listen says what is wrong with it
	}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.Unmap().IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("control: listen on %s: %w", addr, ErrInsecureListen)
}

// guardOpen is guard without the token.
func (s *Server) guardOpen(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostOK(r) {
			writeError(w, api.Errorf(api.ErrForbiddenHost, "host %q not allowed: this API answers to loopback names and addresses, its own address and hosts allowed with --allow-host", r.Host))
			return
		}
		if !s.originOK(r) {
			writeError(w, api.Errorf(api.ErrForbiddenOrigin, "origin %q not allowed (allow it with --allow-origin)", r.Header.Get("Origin")))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		next.ServeHTTP(w, r)
	})
}
