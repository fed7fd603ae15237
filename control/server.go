package control

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/strictjson"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxBody  = 1 << 20
	DefaultEventLog = 1 << 16
	// MaxLongPoll bounds the timeout of GET /api/v1/events.
	MaxLongPoll = time.Minute
)

// Options configure a Server. The zero value is a server on no particular
// address with no token, which is what tests want.
type Options struct {
	// Token, if set, is required as "Authorization: Bearer TOKEN" on every
	// request (the websocket handshake included) but /api/v1/healthz.
	Token string
	// AllowOrigins lists origins ("http://localhost:3000") allowed besides
	// the request's own host. A request that carries an Origin header not
	// allowed is refused with 403: browsers send one on cross-site requests,
	// command-line clients send none.
	AllowOrigins []string
	// AllowHosts lists Host header values allowed besides loopback names
	// and addresses, the name Listen was given and the address a request
	// came in on: "ci-runner.internal" (any port) or "ci-runner.internal:8470"
	// (that port). A request with any other Host is refused with 403, which
	// is what stops DNS rebinding (see docs/security.md).
	AllowHosts []string
	// Insecure lets Listen serve on an address beyond loopback without a
	// Token; without it such a Listen fails with ErrInsecureListen.
	Insecure bool
	// MaxBody limits request bodies. If zero, DefaultMaxBody.
	MaxBody int64
	// EventLog is how many events are kept for GET /api/v1/events and
	// websocket subscriptions. If zero, DefaultEventLog.
	EventLog int
	// Version is reported by GET /api/v1/version.
	Version string
	// Logger receives the server's log lines; nil: none.
	Logger *slog.Logger
}

// Server is faultline's control server: it owns proxies and serves the HTTP
// and websocket API that manages them (see package api for the endpoints).
// Create one with New; Close closes everything it started.
type Server struct {
	opts    Options
	log     *eventLog
	handler http.Handler
	reg     *prometheus.Registry
	done    chan struct{} // closed by Close

	wsQueue     int           // wsQueue, but tests make it smaller
	wsSlowAfter time.Duration // wsSlowAfter, but tests make it shorter
	wsPing      time.Duration // api.WSPingInterval, but tests make it shorter
	wsPongWait  time.Duration // api.WSPongWait, but tests make it shorter

	allowHosts []hostPort                   // opts.AllowHosts, normalized
	listenName atomic.Pointer[string]       // the host name Listen was given, if not an address
	panicHook  atomic.Pointer[func(string)] // tests: called inside every recovery boundary

	mu      sync.Mutex // guards the fields below
	proxies map[string]*entry
	closed  bool
	httpSrv *http.Server
	ws      map[*wsConn]struct{}

	extra     atomic.Pointer[http.Handler] // the handler Mount gave
	extraSrvs []*http.Server               // ListenExtra's servers; guarded by mu

	wg        sync.WaitGroup // the HTTP serve goroutine and websocket connections
	closeOnce sync.Once
}

// New returns a server with no proxies.
func New(opts Options) *Server {
	opts.MaxBody = cmp.Or(opts.MaxBody, DefaultMaxBody)
	opts.EventLog = cmp.Or(opts.EventLog, DefaultEventLog)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:    opts,
		log:     newEventLog(opts.EventLog),
		reg:     prometheus.NewRegistry(),
		done:    make(chan struct{}),
		proxies: make(map[string]*entry),
		ws:      make(map[*wsConn]struct{}),

		wsQueue:     wsQueue,
		wsSlowAfter: wsSlowAfter,
		wsPing:      api.WSPingInterval,
		wsPongWait:  api.WSPongWait,
	}
	for _, h := range opts.AllowHosts {
		s.allowHosts = append(s.allowHosts, parseHost(h))
	}
	s.reg.MustRegister(&collector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.handler = s.routes()
	return s
}

// Handler returns the API as an http.Handler, for httptest or a server of
// the caller's own.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen serves the API on addr (port 0 picks a free one) until Close, and
// returns the address it listens on. An address beyond loopback (":8470",
// "0.0.0.0:8470", a LAN address or a name that resolves to one) needs a
// Token or Options.Insecure, else Listen fails with ErrInsecureListen.
// Listen logs one line saying what it exposes.
func (s *Server) Listen(addr string) (net.Addr, error) {
	if err := s.checkExposure(addr, nil); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := s.checkExposure(addr, ln.Addr()); err != nil { // a name that resolved beyond loopback
		_ = ln.Close()
		return nil, err
	}
	s.rememberName(addr)
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn)}
	s.mu.Lock()
	if s.closed || s.httpSrv != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return nil, errors.New("control: server closed or already listening")
	}
	s.httpSrv = hs
	s.wg.Add(1)
	s.mu.Unlock()
	s.logExposure(ln.Addr())
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("control server stopped", "err", err)
		}
	}()
	return ln.Addr(), nil
}

// Close stops serving, ends long polls and websocket connections, closes
// every proxy, and returns once all of it has stopped.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		hs := s.httpSrv
		extraSrvs := s.extraSrvs
		conns := make([]*wsConn, 0, len(s.ws))
		for c := range s.ws {
			conns = append(conns, c)
		}
		entries := s.entries()
		s.mu.Unlock()
		close(s.done)
		s.log.close()
		for _, c := range conns {
			c.close(websocketGoingAway, "server closing")
		}
		for _, hs := range append(extraSrvs, hs) {
			if hs != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = hs.Shutdown(ctx) // long polls end on s.done
				cancel()
			}
		}
		for _, e := range entries {
			e.op.Lock()
			e.stop()
			e.op.Unlock()
		}
		s.wg.Wait()
	})
	return nil
}

// entries returns the proxies sorted by name. Called with s.mu held.
func (s *Server) entries() []*entry {
	out := make([]*entry, 0, len(s.proxies))
	for _, e := range s.proxies {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return cmp.Compare(a.name, b.name) })
	return out
}

// CreateProxy creates a proxy from spec and, unless spec.Disabled, starts
// it with spec.Faults in force. It fails with an *api.Error: ErrNameTaken,
// ErrPortInUse, ErrBadRequest or a fault's error; on failure nothing is
// created.
func (s *Server) CreateProxy(spec api.ProxySpec) (api.Proxy, error) {
	spec.Listen = cmp.Or(spec.Listen, "127.0.0.1:0")
	cfg, err := config(spec)
	if err != nil {
		return api.Proxy{}, err
	}
	spec.Mode = cfg.Mode.String()
	fs := spec.Faults
	spec.Faults = nil
	e := &entry{name: spec.Name, log: s.log, logger: s.opts.Logger, spec: spec}
	for _, f := range fs {
		if _, err := e.addFault(f); err != nil { // validates; held until start
			return api.Proxy{}, err
		}
	}
	held := e.held
	e.op.Lock()
	defer e.op.Unlock()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return api.Proxy{}, api.Errorf(api.ErrUnavailable, "server closing")
	case s.proxies[spec.Name] != nil:
		s.mu.Unlock()
		return api.Proxy{}, api.Errorf(api.ErrNameTaken, "a proxy named %q exists", spec.Name)
	}
	s.proxies[spec.Name] = e // reserved: e.op is held until it is started
	s.mu.Unlock()
	if !spec.Disabled {
		if err := e.start(cfg, held); err != nil {
			s.mu.Lock()
			delete(s.proxies, spec.Name)
			s.mu.Unlock()
			return api.Proxy{}, err
		}
	}
	return e.info(), nil
}

// Proxies describes every proxy, by name.
func (s *Server) Proxies() []api.Proxy {
	s.mu.Lock()
	es := s.entries()
	s.mu.Unlock()
	out := make([]api.Proxy, len(es))
	for i, e := range es {
		out[i] = e.info()
	}
	return out
}

func (s *Server) entry(name string) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.proxies[name]; e != nil {
		return e, nil
	}
	return nil, api.Errorf(api.ErrNotFound, "no proxy named %q", name)
}

// lockEntry returns the named entry with its op mutex held, or an error if
// there is none (or it was deleted meanwhile).
func (s *Server) lockEntry(name string) (*entry, error) {
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	e.op.Lock()
	e.mu.Lock()
	deleted := e.deleted
	e.mu.Unlock()
	if deleted {
		e.op.Unlock()
		return nil, api.Errorf(api.ErrNotFound, "no proxy named %q", name)
	}
	return e, nil
}

// updateProxy applies u to the named proxy.
func (s *Server) updateProxy(name string, u api.ProxyUpdate) (api.Proxy, error) {
	e, err := s.lockEntry(name)
	if err != nil {
		return api.Proxy{}, err
	}
	defer e.op.Unlock()
	e.mu.Lock()
	old := e.spec
	enabled := e.p != nil
	e.mu.Unlock()
	spec := old
	if u.Listen != nil {
		spec.Listen = *u.Listen
	}
	if u.Upstream != nil {
		spec.Upstream = *u.Upstream
	}
	if u.Mode != nil {
		spec.Mode = *u.Mode
		if u.Pool == nil && spec.Mode != proxy.ModePool.String() {
			spec.Pool = api.PoolSpec{} // leaving pool mode leaves its settings
		}
	}
	if u.DialTimeout != nil {
		spec.DialTimeout = *u.DialTimeout
	}
	if u.Pool != nil {
		spec.Pool = *u.Pool
	}
	if u.Seed != nil {
		spec.Seed = *u.Seed
	}
	want := enabled
	if u.Enabled != nil {
		want = *u.Enabled
	}
	cfg, err := config(spec)
	if err != nil {
		return api.Proxy{}, err
	}
	spec.Mode = cfg.Mode.String()
	changed := spec.Listen != old.Listen || spec.Upstream != old.Upstream || spec.Mode != old.Mode ||
		spec.DialTimeout != old.DialTimeout || spec.Pool != old.Pool || spec.Seed != old.Seed
	if spec.Mode != proxy.ModePool.String() && slices.ContainsFunc(e.faults(), func(f faults.Fault) bool { return f.Kind == faults.KindStale }) {
		return api.Proxy{}, api.Errorf(api.ErrBadRequest, "proxy %s has a stale fault, which needs mode pool; remove it first", name)
	}
	if enabled && (!want || changed) && spec.Listen != old.Listen {
		// Moving to a new address: listen there before letting go of the
		// old one, so that a busy port changes nothing.
		if err := probeListen(spec.Listen); err != nil {
			return api.Proxy{}, err
		}
	}
	if enabled && (!want || changed) {
		e.stop()
	}
	e.mu.Lock()
	prevSpec := e.spec
	e.spec = spec
	held := e.held
	e.mu.Unlock()
	if want && (changed || !enabled) {
		if err := e.start(cfg, held); err != nil {
			// Put the old proxy back as it was.
			e.mu.Lock()
			e.spec = prevSpec
			e.mu.Unlock()
			if enabled {
				oldCfg, rerr := config(prevSpec)
				if rerr == nil {
					rerr = e.start(oldCfg, held)
				}
				if rerr != nil {
					// The proxy stays, disabled, with its old settings
					// and faults; say so rather than leave the caller
					// to think it still runs as before.
					s.opts.Logger.Error("restoring proxy failed", "proxy", name, "err", rerr)
					return api.Proxy{}, withNote(err, fmt.Sprintf("putting proxy %s back as it was failed too (%s), so it is now disabled; enable it to retry", name, apiMessage(rerr)))
				}
			}
			return api.Proxy{}, err
		}
	}
	return e.info(), nil
}

// probeListen checks addr can be listened on now.
func probeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return api.Errorf(api.ErrPortInUse, "listen on %s: %v", addr, err)
	}
	return ln.Close()
}

// deleteProxy closes and forgets the named proxy.
func (s *Server) deleteProxy(name string) error {
	e, err := s.lockEntry(name)
	if err != nil {
		return err
	}
	defer e.op.Unlock()
	e.stop()
	e.mu.Lock()
	e.deleted = true
	e.mu.Unlock()
	s.mu.Lock()
	delete(s.proxies, name)
	s.mu.Unlock()
	return nil
}

// reset removes every fault and enables every proxy.
func (s *Server) reset() error {
	s.mu.Lock()
	es := s.entries()
	s.mu.Unlock()
	var errs []error
	for _, e := range es {
		e.op.Lock()
		e.clearFaults()
		e.mu.Lock()
		p, spec, deleted := e.p, e.spec, e.deleted
		e.mu.Unlock()
		if p == nil && !deleted {
			if cfg, err := config(spec); err != nil {
				errs = append(errs, err)
			} else if err := e.start(cfg, nil); err != nil {
				errs = append(errs, err)
			}
		}
		e.op.Unlock()
	}
	if len(errs) > 0 {
		return api.Errorf(api.ErrPortInUse, "faults removed, but not every proxy could be enabled: %v", errors.Join(errs...))
	}
	return nil
}

// --- HTTP ---

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := api.Prefix
	mux.HandleFunc("GET "+p+"/version", s.handleVersion)
	mux.HandleFunc("GET "+p+"/healthz", s.handleHealthz)
	mux.HandleFunc("POST "+p+"/reset", s.handleReset)
	mux.HandleFunc("GET "+p+"/proxies", s.handleListProxies)
	mux.HandleFunc("POST "+p+"/proxies", s.handleCreateProxy)
	mux.HandleFunc("GET "+p+"/proxies/{name}", s.handleGetProxy)
	mux.HandleFunc("PATCH "+p+"/proxies/{name}", s.handleUpdateProxy)
	mux.HandleFunc("DELETE "+p+"/proxies/{name}", s.handleDeleteProxy)
	mux.HandleFunc("GET "+p+"/proxies/{name}/faults", s.handleListFaults)
	mux.HandleFunc("POST "+p+"/proxies/{name}/faults", s.handleAddFault)
	mux.HandleFunc("DELETE "+p+"/proxies/{name}/faults", s.handleClearFaults)
	mux.HandleFunc("GET "+p+"/proxies/{name}/faults/{fault}", s.handleGetFault)
	mux.HandleFunc("PUT "+p+"/proxies/{name}/faults/{fault}", s.handleUpdateFault)
	mux.HandleFunc("DELETE "+p+"/proxies/{name}/faults/{fault}", s.handleRemoveFault)
	mux.HandleFunc("GET "+p+"/proxies/{name}/conns", s.handleConns)
	mux.HandleFunc("DELETE "+p+"/proxies/{name}/conns/{id}", s.handleCloseConn)
	mux.HandleFunc("GET "+p+"/proxies/{name}/pool", s.handlePool)
	mux.HandleFunc("POST "+p+"/proxies/{name}/pool/drain", s.handleDrain)
	mux.HandleFunc("GET "+p+"/events", s.handleEvents)
	mux.HandleFunc("GET "+p+"/ws", s.handleWS)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return s.guard(s.recoverHTTP(s.withDashboard(s.withExtra(jsonFallback(mux)))))
}

// jsonFallback turns the mux's own plain-text 404 and 405 answers into JSON
// errors. It also answers 404 to a path with "." or ".." segments (or an
// empty one), which the mux would redirect to the path they resolve to,
// with a 307 that keeps the method: DELETE .../faults/.. would delete
// the proxy, DELETE .../faults/. every fault.
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != path.Clean(p) {
			writeError(w, api.Errorf(api.ErrNotFound, "no endpoint %s %s: the path has empty, \".\" or \"..\" segments", r.Method, p))
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if rec.status == http.StatusMethodNotAllowed {
			writeError(w, api.Errorf(api.ErrMethod, "%s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
			return
		}
		writeError(w, api.Errorf(api.ErrNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	})
}

// statusRecorder catches a status and headers and drops the body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeError writes err as an API error; errors that are not *api.Error
// are internal.
func writeError(w http.ResponseWriter, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		ae = api.Errorf(api.ErrInternal, "%v", err)
	}
	writeJSON(w, ae.Status, ae)
}

// decode reads the request body as one JSON value into v, strictly (see
// decodeBytes).
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	return decodeBytes(b, v)
}

// decodeBytes decodes b, one JSON value, into v strictly: unknown fields,
// keys in the wrong case or given twice, and trailing data are errors.
// encoding/json matches keys to fields ignoring case and lets the last of
// two equal keys win; strictjson.Check refuses both.
func decodeBytes(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if dec.More() {
		return api.Errorf(api.ErrBadJSON, "body has more than one JSON value")
	}
	if _, terr := dec.Token(); terr != io.EOF {
		return api.Errorf(api.ErrBadJSON, "body has data after its JSON value")
	}
	return checkKeys(b, v)
}

// checkKeys refuses b, already decoded into v, if an object in it has a key
// twice or a key that names a field of v only when case is ignored:
// encoding/json takes both silently (strictjson.Check).
func checkKeys(b []byte, v any) error {
	if err := strictjson.Check(b, v); err != nil {
		return api.Errorf(api.ErrBadRequest, "%v", err)
	}
	return nil
}

// bodyError maps a JSON decoding error to an API error.
func bodyError(err error) error {
	var (
		tooBig *http.MaxBytesError
		syn    *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return api.Errorf(api.ErrTooLarge, "request body over %d bytes", tooBig.Limit)
	case errors.Is(err, faults.ErrUnknownKind):
		return api.Errorf(api.ErrUnknownKind, "%v", err)
	case errors.Is(err, faults.ErrBadFault):
		return api.Errorf(api.ErrBadFault, "%v", err)
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return api.Errorf(api.ErrBadJSON, "body is not valid JSON: %v", err)
	case errors.As(err, &typ):
		return api.Errorf(api.ErrBadRequest, "field %q: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	}
	return api.Errorf(api.ErrBadRequest, "%v", err)
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Version{Version: cmp.Or(s.opts.Version, "devel"), Go: runtime.Version()})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	if err := s.reset(); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleListProxies(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Proxies())
}

func (s *Server) handleCreateProxy(w http.ResponseWriter, r *http.Request) {
	var spec api.ProxySpec
	if err := decode(r, &spec); err != nil {
		writeError(w, err)
		return
	}
	info, err := s.CreateProxy(spec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) handleGetProxy(w http.ResponseWriter, r *http.Request) {
	e, err := s.entry(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e.info())
}

func (s *Server) handleUpdateProxy(w http.ResponseWriter, r *http.Request) {
	var u api.ProxyUpdate
	if err := decode(r, &u); err != nil {
		writeError(w, err)
		return
	}
	info, err := s.updateProxy(r.PathValue("name"), u)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleDeleteProxy(w http.ResponseWriter, r *http.Request) {
	if err := s.deleteProxy(r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleListFaults(w http.ResponseWriter, r *http.Request) {
	e, err := s.entry(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(e.faults()))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// injectFault adds f to the named proxy, returning once it is in force.
func (s *Server) injectFault(name string, f faults.Fault) (faults.Fault, error) {
	e, err := s.lockEntry(name)
	if err != nil {
		return f, err
	}
	defer e.op.Unlock()
	return e.addFault(f)
}

func (s *Server) updateFault(name string, f faults.Fault) (faults.Fault, error) {
	e, err := s.lockEntry(name)
	if err != nil {
		return f, err
	}
	defer e.op.Unlock()
	return e.updateFault(f)
}

func (s *Server) removeFault(name, fault string) error {
	e, err := s.lockEntry(name)
	if err != nil {
		return err
	}
	defer e.op.Unlock()
	return e.removeFault(fault)
}

// clearFaults removes the faults of the named proxy, or of every proxy if
// name is empty.
func (s *Server) clearFaults(name string) error {
	if name != "" {
		e, err := s.lockEntry(name)
		if err != nil {
			return err
		}
		defer e.op.Unlock()
		e.clearFaults()
		return nil
	}
	s.mu.Lock()
	es := s.entries()
	s.mu.Unlock()
	for _, e := range es {
		e.op.Lock()
		e.clearFaults()
		e.op.Unlock()
	}
	return nil
}

func (s *Server) handleAddFault(w http.ResponseWriter, r *http.Request) {
	var f faults.Fault
	if err := decode(r, &f); err != nil {
		writeError(w, err)
		return
	}
	nf, err := s.injectFault(r.PathValue("name"), f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, nf)
}

func (s *Server) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	if err := s.clearFaults(r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleGetFault(w http.ResponseWriter, r *http.Request) {
	e, err := s.entry(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("fault")
	for _, f := range e.faults() {
		if f.Name == name {
			writeJSON(w, http.StatusOK, f)
			return
		}
	}
	writeError(w, api.Errorf(api.ErrNotFound, "proxy %s has no fault named %q", e.name, name))
}

func (s *Server) handleUpdateFault(w http.ResponseWriter, r *http.Request) {
	var f faults.Fault
	if err := decode(r, &f); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("fault")
	if f.Name != "" && f.Name != name {
		writeError(w, api.Errorf(api.ErrBadRequest, "body names fault %q, path %q; a fault cannot be renamed", f.Name, name))
		return
	}
	f.Name = name
	nf, err := s.updateFault(r.PathValue("name"), f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nf)
}

func (s *Server) handleRemoveFault(w http.ResponseWriter, r *http.Request) {
	if err := s.removeFault(r.PathValue("name"), r.PathValue("fault")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) liveProxy(name string) (*proxy.Proxy, error) {
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	return e.live()
}

func (s *Server) handleConns(w http.ResponseWriter, r *http.Request) {
	p, err := s.liveProxy(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	now := time.Now()
	cs := p.Conns()
	out := make([]api.Conn, len(cs))
	for i, c := range cs {
		out[i] = api.Conn{ConnInfo: c, Age: faults.Duration(now.Sub(c.Started))}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCloseConn(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, api.Errorf(api.ErrBadRequest, "connection id %q: want a number", r.PathValue("id")))
		return
	}
	how := proxy.FIN
	if q := r.URL.Query().Get("how"); q != "" {
		if how, err = proxy.ParseCloseHow(q); err != nil {
			writeError(w, api.Errorf(api.ErrBadRequest, "how %q: want FIN or RST", q))
			return
		}
	}
	p, err := s.liveProxy(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := p.CloseConn(id, how); err != nil {
		writeError(w, api.Errorf(api.ErrNotFound, "proxy %s has no live connection %d", r.PathValue("name"), id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePool(w http.ResponseWriter, r *http.Request) {
	p, err := s.liveProxy(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	st := p.PoolStats()
	if st.Discarded == nil {
		st.Discarded = map[proxy.Reason]uint64{}
	}
	writeJSON(w, http.StatusOK, api.Pool{PoolStats: st})
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	p, err := s.liveProxy(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	if p.Config().Mode != proxy.ModePool {
		writeError(w, api.Errorf(api.ErrBadRequest, "proxy %s is in dial mode: it has no pool", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, api.Drained{Drained: p.DrainPool()})
}

// parseFilter reads the proxy and kind query parameters.
func parseFilter(q url.Values) (filter, error) {
	f := filter{proxy: q.Get("proxy")}
	for _, k := range strings.Split(q.Get("kind"), ",") {
		if k == "" {
			continue
		}
		kind, err := proxy.ParseEventKind(strings.TrimSpace(k))
		if err != nil {
			return f, api.Errorf(api.ErrBadRequest, "kind %q: not an event kind", k)
		}
		f.kinds = append(f.kinds, kind)
	}
	return f, nil
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		writeError(w, err)
		return
	}
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, api.Errorf(api.ErrBadRequest, "after %q: want an event ID", v))
			return
		}
	}
	var timeout time.Duration
	if v := q.Get("timeout"); v != "" {
		if timeout, err = time.ParseDuration(v); err != nil || timeout < 0 || timeout > MaxLongPoll {
			writeError(w, api.Errorf(api.ErrBadRequest, "timeout %q: want a duration from 0 to %s", v, MaxLongPoll))
			return
		}
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 10000 {
			writeError(w, api.Errorf(api.ErrBadRequest, "limit %q: want 1 to 10000", v))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	for {
		evs, next, err := s.log.read(after, limit, f)
		if err != nil {
			writeError(w, err)
			return
		}
		if len(evs) > 0 || timeout == 0 {
			writeJSON(w, http.StatusOK, api.Events{Events: nonNil(evs), Next: next})
			return
		}
		after = next                 // nothing matched up to next
		if !s.log.wait(ctx, after) { // false: timed out, or the server is closing
			writeJSON(w, http.StatusOK, api.Events{Events: []api.Event{}, Next: after})
			return
		}
	}
}

// withNote returns err with note added to its message, keeping its status
// and code.
func withNote(err error, note string) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return &api.Error{Status: ae.Status, Code: ae.Code, Message: ae.Message + "; " + note}
	}
	return fmt.Errorf("%w; %s", err, note)
}

// apiMessage is err's message without the "faultline:" prefix and code
// that (*api.Error).Error adds.
func apiMessage(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}
