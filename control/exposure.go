package control

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/faultline-proxy/faultline/control/api"
)

// Who may use the control API: the Host check that stops DNS rebinding,
// the Origin check that stops other sites' pages, the bearer token, and
// the rule that keeps a server without a token on loopback.
// docs/security.md explains them.

// ErrInsecureListen is what Listen returns (wrapped) for an address beyond
// loopback on a server with no Token and no Options.Insecure.
var ErrInsecureListen = errors.New("refusing to serve the control API beyond loopback without a token")

// guard checks the Host, the Origin and the bearer token, and limits
// bodies.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostOK(r) {
			writeError(w, api.Errorf(api.ErrForbiddenHost, "host %q not allowed: the control API answers to loopback names and addresses, its own address and hosts allowed with --allow-host", r.Host))
			return
		}
		if !s.originOK(r) {
			writeError(w, api.Errorf(api.ErrForbiddenOrigin, "origin %q not allowed (allow it with --allow-origin)", r.Header.Get("Origin")))
			return
		}
		if s.opts.Token != "" && r.URL.Path != api.Prefix+"/healthz" && !s.isDashboardFile(r) && !s.tokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="faultline"`)
			writeError(w, api.Errorf(api.ErrUnauthorized, "missing or wrong bearer token"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		next.ServeHTTP(w, r)
	})
}

// isDashboardFile reports whether r fetches one of the dashboard's static
// files, which hold no data and so need no token (the page asks for it,
// and sends it with every API call).
func (s *Server) isDashboardFile(r *http.Request) bool {
	_, ok := s.dashboardFile(r)
	return ok
}

// hostPort is a Host header or an AllowHosts entry, normalized: lower
// case, without brackets or a trailing dot; port is "" if it has none.
type hostPort struct{ host, port string }

func parseHost(s string) hostPort {
	host, port, err := net.SplitHostPort(s)
	if err != nil { // no port
		host, port = s, ""
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	return hostPort{host: strings.TrimSuffix(strings.ToLower(host), "."), port: port}
}

// hostOK reports whether r's Host is one a DNS rebinding attack cannot
// produce: localhost or a name under .localhost (RFC 6761: resolved to
// loopback, never asked of DNS), a loopback address, the address the
// request came in on, the name Listen was given, or one of AllowHosts.
// An attacker's page reaches this server only under the attacker's own
// name, which is none of these.
func (s *Server) hostOK(r *http.Request) bool {
	h := parseHost(r.Host)
	switch {
	case h.host == "":
		return false // HTTP/1.0 without a Host: no browser sends that
	case h.host == "localhost" || strings.HasSuffix(h.host, ".localhost"):
		return true
	}
	if ip, err := netip.ParseAddr(h.host); err == nil {
		ip = ip.Unmap().WithZone("")
		if ip.IsLoopback() {
			return true
		}
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok && la.AddrPort().Addr().Unmap().WithZone("") == ip {
			return true
		}
	}
	if name := s.listenName.Load(); name != nil && *name == h.host {
		return true
	}
	if s.mountedOpen(r) {
		return true
	}
	for _, a := range s.allowHosts {
		if a.host == h.host && (a.port == "" || a.port == h.port) {
			return true
		}
	}
	return false
}

// mountedOpen reports whether r is for the mounted API (toxiproxy's, see
// Mount) on a server deliberately open to the network (Options.Insecure)
// and came in on an address beyond loopback. Such a server answers anyone
// on the network, so a Host check stops no one there, while it would break
// the clients that reach it by a service name (docker compose's
// http://toxiproxy:8474), as toxiproxy's own server answers them; the
// mounted API turns browsers away by their User-Agent, as toxiproxy does.
// A request that came in on loopback, which is what a DNS-rebinding page
// in a browser on the same machine makes, is still checked.
func (s *Server) mountedOpen(r *http.Request) bool {
	if !s.opts.Insecure || s.extra.Load() == nil || ownPath(r.URL.Path) {
		return false
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return ok && !la.IP.IsLoopback()
}

// defaultPort is the port of an origin or Host that names none.
var defaultPort = map[string]string{"http": "80", "https": "443"}

// originOK allows requests with no Origin (programs), from a page this
// server served (http or https, on the request's own host and port), or
// from an allowed origin. Other schemes (file:, browser extensions, the
// "null" of sandboxed pages) are allowed only through AllowOrigins.
func (s *Server) originOK(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range s.opts.AllowOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || defaultPort[u.Scheme] == "" || u.Host == "" || u.User != nil || u.Opaque != "" ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return false
	}
	o, h := parseHost(u.Host), parseHost(r.Host)
	return o.host == h.host && cmp.Or(o.port, defaultPort[u.Scheme]) == cmp.Or(h.port, defaultPort[u.Scheme])
}

// tokenOK checks "Authorization: Bearer TOKEN"; the scheme's case does not
// matter (RFC 7235), the token's does.
func (s *Server) tokenOK(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimLeft(token, " ")
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.Token)) == 1
}

// checkExposure returns ErrInsecureListen if the server has no token, is
// not Insecure, and addr is beyond loopback. With bound nil it judges addr
// as written (an empty host or an address); a host name passes, to be
// judged by the address it was bound to.
func (s *Server) checkExposure(addr string, bound net.Addr) error {
	if s.opts.Token != "" {
		return nil
	}
	return s.checkOpenExposure(addr, bound)
}

// rememberName keeps the host name of the address Listen was given, if it
// is a name, as one requests may use.
func (s *Server) rememberName(addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return
	}
	if _, err := netip.ParseAddr(host); err != nil {
		name := parseHost(host).host
		s.listenName.Store(&name)
	}
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// logExposure logs what Listen exposes, in one line.
func (s *Server) logExposure(addr net.Addr) {
	reach := "this machine only (loopback)"
	hosts := []string{"localhost", "*.localhost", "127.0.0.0/8", "[::1]"}
	if !isLoopback(addr) {
		reach = "the network"
		hosts = append(hosts, "the address a request came in on")
	}
	if name := s.listenName.Load(); name != nil && *name != "localhost" {
		hosts = append(hosts, *name)
	}
	hosts = append(hosts, s.opts.AllowHosts...)
	token := "none"
	if s.opts.Token != "" {
		token = "required"
	}
	origins := append([]string{"its own"}, s.opts.AllowOrigins...)
	msg, log := "control API exposed", s.opts.Logger.Info
	if !isLoopback(addr) && s.opts.Token == "" {
		msg, log = "control API exposed to the network without a token (insecure)", s.opts.Logger.Warn
	}
	log(msg, "addr", addr.String(), "reach", reach, "token", token,
		"hosts", strings.Join(hosts, ","), "origins", strings.Join(origins, ","))
}
