package control

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/internal/report"
)

// The dashboard: a static page at /dashboard/ (and at / unless another API
// is mounted there) whose script reads and drives this server's HTTP API,
// as any client does. Its files carry no data, so they are served without
// the token; everything the page shows comes through the API, which asks
// for it. docs/pictures.md describes the page.

//go:embed dashboard
var dashboardFS embed.FS

// DashboardPrefix is where the dashboard's page and files are served.
const DashboardPrefix = "/dashboard/"

// dashboardFiles maps each file the dashboard serves to its content type
// and where it is embedded.
var dashboardFiles = map[string]struct {
	fs   fs.FS
	path string
	ct   string
}{
	"":              {dashboardFS, "dashboard/index.html", "text/html; charset=utf-8"},
	"dashboard.js":  {dashboardFS, "dashboard/dashboard.js", "text/javascript; charset=utf-8"},
	"dashboard.css": {dashboardFS, "dashboard/dashboard.css", "text/css; charset=utf-8"},
	"timeline.js":   {report.Assets, "assets/timeline.js", "text/javascript; charset=utf-8"},
	"style.css":     {report.Assets, "assets/style.css", "text/css; charset=utf-8"},
}

// dashboardCSP lets the page load only its own files and call only this
// server, and forbids framing it (a framed control page could be clicked
// into changing faults).
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// dashboardFile returns the dashboard file r asks for, if r is a GET or
// HEAD of one: "/" (when no other API is mounted) or DashboardPrefix + name.
func (s *Server) dashboardFile(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	p := r.URL.Path
	if p == "/" && s.extra.Load() == nil {
		return "", true
	}
	name, ok := strings.CutPrefix(p, DashboardPrefix)
	if !ok {
		return "", false
	}
	_, ok = dashboardFiles[name] // exact names only: no "..", no directories
	return name, ok
}

// withDashboard serves the dashboard's files ahead of next.
func (s *Server) withDashboard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := s.dashboardFile(r)
		if !ok {
			if strings.HasPrefix(r.URL.Path, DashboardPrefix) {
				writeError(w, api.Errorf(api.ErrNotFound, "no dashboard file %s", r.URL.Path))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		f := dashboardFiles[name]
		b, err := fs.ReadFile(f.fs, f.path)
		if err != nil {
			writeError(w, api.Errorf(api.ErrNotFound, "no dashboard file %s", r.URL.Path))
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ct)
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
	})
}
