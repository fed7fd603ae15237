package toxiproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/proxy"
)

// Proxy is a proxy as toxiproxy writes it.
type Proxy struct {
	Name     string  `json:"name"`
	Listen   string  `json:"listen"`
	Upstream string  `json:"upstream"`
	Enabled  bool    `json:"enabled"`
	Toxics   []Toxic `json:"toxics"` // never null
}

// decodeBody reads the body as one JSON value into v, leniently, as
// toxiproxy does: the Content-Type is not looked at, keys match whatever
// their case, unknown keys are ignored and null leaves a default.
func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return readError(err)
	}
	return nil
}

// readError words an error reading or decoding a body.
func readError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return apiErr(http.StatusRequestEntityTooLarge, fmt.Sprintf("bad request body: over %d bytes", tooBig.Limit))
	}
	return badBody(err)
}

// describe returns the faultline proxy fl as toxiproxy shows it. Called
// with mu held.
func (s *Server) describe(fl string) (Proxy, error) {
	info, err := s.cs.Proxy(fl)
	if err != nil {
		return Proxy{}, errProxyNotFound
	}
	ts, err := s.toxicList(fl)
	if err != nil {
		return Proxy{}, err
	}
	out := Proxy{Name: s.tpName(fl), Listen: info.Listen, Upstream: info.Upstream, Enabled: info.Enabled, Toxics: make([]Toxic, 0, len(ts))}
	for _, t := range ts {
		out.Toxics = append(out.Toxics, t.json)
	}
	return out, nil
}

// listenAddr is where toxiproxy listens for a listen field: all
// interfaces, on a free port, when it is empty.
func listenAddr(listen string) string {
	if listen == "" {
		return ":0"
	}
	return listen
}

// sameListen reports whether the listen address a client sent is the one
// a proxy has, resolved as toxiproxy 2.12 does ("localhost:8080" is
// "127.0.0.1:8080"); port 0 is never the same.
func sameListen(sent, have string) bool {
	if sent == have {
		return true
	}
	a, err1 := net.ResolveTCPAddr("tcp", listenAddr(sent))
	b, err2 := net.ResolveTCPAddr("tcp", have)
	return err1 == nil && err2 == nil && a.Port != 0 && a.Port == b.Port && a.IP.Equal(b.IP)
}

func (s *Server) listProxies(w http.ResponseWriter, r *http.Request, _ []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Proxy{}
	for _, p := range s.cs.Proxies() {
		pj, err := s.describe(p.Name)
		if err != nil {
			continue // deleted meanwhile through faultline's API
		}
		out[pj.Name] = pj
	}
	writeJSON(w, http.StatusOK, out)
}

// proxyBody is a proxy as a client sends it. A toxics field is read by
// populate (and -config) only.
type proxyBody struct {
	Name     string            `json:"name"`
	Listen   string            `json:"listen"`
	Upstream string            `json:"upstream"`
	Enabled  *bool             `json:"enabled"`
	Toxics   []json.RawMessage `json:"toxics"`
}

func (s *Server) createProxy(w http.ResponseWriter, r *http.Request, _ []string) {
	// Named as toxiproxy's type, which its decoding errors name
	// (Proxy.name); without toxics, which toxiproxy ignores here whatever
	// they hold.
	type Proxy struct {
		Name     string `json:"name"`
		Listen   string `json:"listen"`
		Upstream string `json:"upstream"`
		Enabled  *bool  `json:"enabled"`
	}
	var p Proxy
	if err := decodeBody(r, &p); err != nil {
		s.writeError(w, r, err)
		return
	}
	b := proxyBody{Name: p.Name, Listen: p.Listen, Upstream: p.Upstream, Enabled: p.Enabled}
	switch {
	case b.Name == "":
		s.writeError(w, r, apiErr(http.StatusBadRequest, "missing required field: name"))
		return
	case b.Upstream == "":
		s.writeError(w, r, apiErr(http.StatusBadRequest, "missing required field: upstream"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pj, err := s.create(b)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, pj)
}

// create makes the proxy b describes, unless its name is taken. Called
// with mu held.
func (s *Server) create(b proxyBody) (Proxy, error) {
	fl := flName(b.Name)
	if _, err := s.cs.Proxy(fl); err == nil {
		return Proxy{}, errProxyExists
	}
	_, err := s.cs.CreateProxy(api.ProxySpec{
		Name:     fl,
		Listen:   listenAddr(b.Listen),
		Upstream: b.Upstream,
		Seed:     s.opts.Seed,
		Disabled: b.Enabled != nil && !*b.Enabled,
	})
	if err != nil {
		return Proxy{}, err
	}
	if fl != b.Name {
		s.shown[fl] = b.Name
	} else {
		delete(s.shown, fl)
	}
	delete(s.toxics, fl)
	return s.describe(fl)
}

func (s *Server) getProxy(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pj, err := s.describe(flName(args[0]))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pj)
}

// updateProxy merges the body onto the proxy: absent fields keep their
// values; name and toxics are ignored. A new listen address or upstream
// restarts the proxy (its connections are closed, its toxics kept).
func (s *Server) updateProxy(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fl := flName(args[0])
	cur, err := s.describe(fl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Named as toxiproxy's type, which its decoding errors name; a name
	// is decoded (so that a number is a 400, as there) and ignored.
	type Proxy struct {
		Name     string `json:"name"`
		Listen   string `json:"listen"`
		Upstream string `json:"upstream"`
		Enabled  bool   `json:"enabled"`
	}
	b := Proxy{Listen: cur.Listen, Upstream: cur.Upstream, Enabled: cur.Enabled}
	if err := decodeBody(r, &b); err != nil {
		s.writeError(w, r, err)
		return
	}
	u := api.ProxyUpdate{Enabled: &b.Enabled}
	if !sameListen(b.Listen, cur.Listen) {
		l := listenAddr(b.Listen)
		u.Listen = &l
	}
	if b.Upstream != cur.Upstream {
		u.Upstream = &b.Upstream
	}
	if _, err := s.cs.UpdateProxy(fl, u); err != nil {
		s.writeError(w, r, err)
		return
	}
	pj, err := s.describe(fl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pj)
}

func (s *Server) deleteProxy(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fl := flName(args[0])
	if err := s.cs.DeleteProxy(fl); err != nil {
		s.writeError(w, r, errProxyNotFound)
		return
	}
	delete(s.toxics, fl)
	delete(s.shown, fl)
	w.WriteHeader(http.StatusNoContent)
}

// populateError is a populate failure: the error and the proxies made
// before it.
type populateError struct {
	Message string  `json:"error"`
	Status  int     `json:"status"`
	Proxies []Proxy `json:"proxies"`
}

func (s *Server) populate(w http.ResponseWriter, r *http.Request, _ []string) {
	var list []proxyBody
	if err := decodeBody(r, &list); err != nil {
		writePopulateError(w, translate(err), nil)
		return
	}
	done, err := s.populateList(list)
	if err != nil {
		s.opts.Logger.Info("toxiproxy API: populate failed", "error", err)
		writePopulateError(w, translate(err), done)
		return
	}
	writeJSON(w, http.StatusCreated, map[string][]Proxy{"proxies": done})
}

func writePopulateError(w http.ResponseWriter, e *Error, done []Proxy) {
	writeJSON(w, e.Status, populateError{Message: e.Message, Status: e.Status, Proxies: done})
}

// populateList creates or replaces each proxy of list, in order, as POST
// /populate and toxiproxy-server -config do: a proxy of that name with
// the same listen address and upstream is kept as it is (its toxics,
// connections and enabled state); one that differs is replaced by a new
// one. Proxies not in list are left alone. Unlike toxiproxy, each entry's
// toxics are made too (on a new proxy; on a kept one, those it has no
// toxic of that name for). It returns the proxies done, all of them on
// success.
func (s *Server) populateList(list []proxyBody) ([]Proxy, error) {
	for i, b := range list {
		switch {
		case b.Name == "":
			return nil, apiErr(http.StatusBadRequest, fmt.Sprintf("missing required field: name at proxy %d", i+1))
		case b.Upstream == "":
			return nil, apiErr(http.StatusBadRequest, fmt.Sprintf("missing required field: upstream at proxy %d", i+1))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	done := []Proxy{}
	for _, b := range list {
		fl := flName(b.Name)
		if have, err := s.cs.Proxy(fl); err == nil {
			if !sameListen(b.Listen, have.Listen) || b.Upstream != have.Upstream {
				_ = s.cs.DeleteProxy(fl)
				delete(s.toxics, fl)
				have.Name = ""
			}
			if have.Name != "" { // kept
				if err := s.populateToxics(fl, b.Toxics, true); err != nil {
					return done, err
				}
				pj, err := s.describe(fl)
				if err != nil {
					return done, err
				}
				done = append(done, pj)
				continue
			}
		}
		if _, err := s.create(b); err != nil {
			return done, err
		}
		if err := s.populateToxics(fl, b.Toxics, false); err != nil {
			return done, err
		}
		pj, err := s.describe(fl)
		if err != nil {
			return done, err
		}
		done = append(done, pj)
	}
	return done, nil
}

// populateToxics makes the toxics of a populate entry; with skipTaken,
// those whose name is taken are left alone. Called with mu held.
func (s *Server) populateToxics(fl string, raws []json.RawMessage, skipTaken bool) error {
	for _, raw := range raws {
		_, err := s.addToxicJSON(fl, raw)
		if skipTaken && errors.Is(err, errToxicExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("proxy %s: %w", s.tpName(fl), err)
		}
	}
	return nil
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request, _ []string) {
	_, _ = io.Copy(io.Discard, r.Body)
	if err := s.Reset(); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Reset enables every proxy and removes every toxic (every fault), as
// POST /reset; connections a timeout toxic held are closed, as its
// removal closes them.
func (s *Server) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	type conn struct {
		proxy string
		id    uint64
	}
	var stalled []conn
	for _, p := range s.cs.Proxies() {
		ts, err := s.toxicList(p.Name)
		if err != nil {
			continue
		}
		for _, t := range ts {
			for _, id := range s.timeoutConns(p.Name, t) {
				stalled = append(stalled, conn{p.Name, id})
			}
		}
	}
	err := s.cs.Reset()
	for _, c := range stalled {
		_ = s.cs.CloseConn(c.proxy, c.id, proxy.FIN)
	}
	s.toxics = map[string][]*toxicRecord{}
	return err
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, _ []string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "{\"version\": %q}\n", Version)
}
