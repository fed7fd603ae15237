package toxiproxy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/names"
)

// Version is the toxiproxy version whose API this package answers, and
// what GET /version reports.
const Version = "2.12.0"

// Options configure a Server.
type Options struct {
	// Seed seeds the proxies created through this API (their toxics'
	// toxicity draws). If zero, such proxies take the control server's
	// default seed.
	Seed uint64
	// Logger receives one line per failed request; nil: none.
	Logger *slog.Logger
}

// Server answers toxiproxy's API over a control server. It is an
// http.Handler: mount it on the control server (control.Server.Mount) or
// serve it on an address of its own (control.Server.ListenExtra).
type Server struct {
	cs   *control.Server
	opts Options
	mux  http.Handler

	// mu serializes the API's calls (toxiproxy's own are serialized per
	// proxy) and guards the maps. Every call it wraps returns promptly: the
	// control server's fault changes wait at most a second for a copy loop.
	mu     sync.Mutex
	shown  map[string]string         // faultline proxy name -> the toxiproxy name it was made for, when they differ
	toxics map[string][]*toxicRecord // by faultline proxy name: the toxics made through this API, in order
	seq    uint64                    // orders toxicRecords
}

// toxicRecord is a toxic made through this API: what the client gave, and
// the faults it became (none for a toxic that cannot act). If those faults
// were changed or removed through faultline's API, the record is dropped
// and what is left is described from the faults themselves (derive).
type toxicRecord struct {
	name     string
	stream   string // as sent, for the response
	dir      faults.Direction
	toxicity float32
	attrs    any
	faults   []faults.Fault // as in force
	seq      uint64
}

// New returns the toxiproxy API over cs.
func New(cs *control.Server, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cs: cs, opts: opts, shown: map[string]string{}, toxics: map[string][]*toxicRecord{}}
	s.mux = s.routes()
	return s
}

// ServeHTTP answers a toxiproxy API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route is one endpoint: a path pattern of fixed segments and "*" for a
// name, with a handler per method.
type route struct {
	pattern []string
	methods map[string]func(w http.ResponseWriter, r *http.Request, args []string)
}

func (s *Server) routes() http.Handler {
	rs := []route{
		{[]string{"proxies"}, map[string]func(http.ResponseWriter, *http.Request, []string){
			"GET": s.listProxies, "POST": s.createProxy}},
		{[]string{"populate"}, map[string]func(http.ResponseWriter, *http.Request, []string){
			"POST": s.populate}},
		{[]string{"reset"}, map[string]func(http.ResponseWriter, *http.Request, []string){
			"POST": s.reset}},
		{[]string{"version"}, map[string]func(http.ResponseWriter, *http.Request, []string){
			"GET": s.version}},
		{[]string{"proxies", "*"}, map[string]func(http.ResponseWriter, *http.Request, []string){
			"GET": s.getProxy, "POST": s.updateProxy, "PATCH": s.updateProxy, "DELETE": s.deleteProxy}},
		{[]string{"proxies", "*", "toxics"}, map[string]func(http.ResponseWriter, *http.Request, []string){
			"GET": s.listToxics, "POST": s.createToxic}},
		{[]string{"proxies", "*", "toxics", "*"}, map[string]func(http.ResponseWriter, *http.Request, []string){
			"GET": s.getToxic, "POST": s.updateToxic, "PATCH": s.updateToxic, "DELETE": s.deleteToxic}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := cleanPath(r.URL.Path); p != r.URL.Path {
			// As gorilla/mux: a base URL with a trailing slash
			// ("http://localhost:8474/" + "/proxies") still reaches
			// the API.
			u := *r.URL
			u.Path, u.RawPath = p, ""
			w.Header().Set("Location", u.String())
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		segs, ok := splitPath(r.URL)
		if ok {
			for _, rt := range rs {
				args, match := rt.match(segs)
				if !match {
					continue
				}
				h := rt.methods[r.Method]
				if h == nil {
					// Before the middleware, as gorilla/mux: no request
					// ID, no User-Agent check.
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				w.Header().Set("X-Toxiproxy-Request-Id", requestID())
				if strings.HasPrefix(r.Header.Get("User-Agent"), "Mozilla/") {
					// toxiproxy's guard against browsers (CSRF).
					http.Error(w, "User agent not allowed", http.StatusForbidden)
					return
				}
				h(w, r, args)
				return
			}
		}
		http.NotFound(w, r)
	})
}

// cleanPath is p without empty, "." and ".." segments, keeping a final
// slash, as gorilla/mux cleans it.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// splitPath splits the path into its unescaped segments. Names may hold
// any character but '/' (an escaped "%2F" included, as toxiproxy's router
// reads the unescaped path).
func splitPath(u *url.URL) ([]string, bool) {
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return nil, false
	}
	return strings.Split(p[1:], "/"), true
}

func (rt route) match(segs []string) ([]string, bool) {
	if len(segs) != len(rt.pattern) {
		return nil, false
	}
	var args []string
	for i, p := range rt.pattern {
		switch {
		case p == "*" && segs[i] != "":
			args = append(args, segs[i])
		case p != segs[i]:
			return nil, false
		}
	}
	return args, true
}

func requestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Errors, with toxiproxy's messages and statuses.
var (
	errProxyNotFound = apiErr(http.StatusNotFound, "proxy not found")
	errProxyExists   = apiErr(http.StatusConflict, "proxy already exists")
	errToxicNotFound = apiErr(http.StatusNotFound, "toxic not found")
	errToxicExists   = apiErr(http.StatusConflict, "toxic already exists")
	errInvalidStream = apiErr(http.StatusBadRequest, "stream was invalid, can be either upstream or downstream")
	errInvalidType   = apiErr(http.StatusBadRequest, "invalid toxic type")
)

// Error is an error of this API: its JSON body, {"error":..., "status":...}.
type Error struct {
	Message string `json:"error"`
	Status  int    `json:"status"`
}

func (e *Error) Error() string { return e.Message }

func apiErr(status int, msg string) *Error { return &Error{Message: msg, Status: status} }

func badBody(err error) *Error {
	return apiErr(http.StatusBadRequest, "bad request body: "+err.Error())
}

// translate turns a control server error into this API's: its statuses
// are toxiproxy's (a listen failure is a 500).
func translate(err error) *Error {
	var te *Error
	var ae *api.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return te
	case errors.Is(err, api.ErrNameTaken) && strings.Contains(err.Error(), "proxy named"):
		return errProxyExists
	case errors.As(err, &ae) && (ae.Code == api.ErrBadRequest.Code || ae.Code == api.ErrBadFault.Code || ae.Code == api.ErrUnknownKind.Code):
		if strings.Contains(ae.Message, "listen on") || strings.HasPrefix(ae.Message, "listen \"") {
			// A listen failure, or a listen address that does not
			// parse: toxiproxy's net.Listen fails on both, a 500.
			return apiErr(http.StatusInternalServerError, ae.Message)
		}
		return apiErr(http.StatusBadRequest, ae.Message)
	case errors.As(err, &ae) && ae.Code == api.ErrNotFound.Code:
		return apiErr(http.StatusNotFound, ae.Message)
	case errors.As(err, &ae):
		return apiErr(http.StatusInternalServerError, ae.Message)
	}
	return apiErr(http.StatusInternalServerError, err.Error())
}

// writeError writes err as toxiproxy does: http.Error with a JSON body.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := translate(err)
	s.opts.Logger.Info("toxiproxy API: request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "error", e.Message)
	b, _ := json.Marshal(e)
	http.Error(w, string(b), e.Status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf(`{"error":%q,"status":500}`, err.Error()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// flName is the faultline name of the toxiproxy proxy named name: the
// same, when faultline allows it; otherwise its allowed characters with a
// hash of the whole, so that "redis:6379" becomes "redis_6379-1a2b3c4d".
func flName(name string) string {
	if names.Valid(name) {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < 48; i++ {
		c := name[i]
		if names.Valid(string(c)) {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s-%08x", b.String(), h.Sum32())
}

// tpName is the toxiproxy name of the faultline proxy fl. Called with mu
// held.
func (s *Server) tpName(fl string) string {
	if n, ok := s.shown[fl]; ok {
		return n
	}
	return fl
}
