package control

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/faultline-proxy/faultline/control/api"
)

func TestDashboardFiles(t *testing.T) {
	fx := newFixture(t, Options{Token: "tok"})
	tests := []struct {
		method, path string
		want         int
		wantType     string
		wantBody     string
	}{
		{"GET", "/", http.StatusOK, "text/html", `<script src="/dashboard/dashboard.js">`},
		{"GET", "/dashboard/", http.StatusOK, "text/html", `<script src="/dashboard/timeline.js">`},
		{"HEAD", "/dashboard/", http.StatusOK, "text/html", ""},
		{"GET", "/dashboard/dashboard.js", http.StatusOK, "text/javascript", "Authorization"},
		{"GET", "/dashboard/dashboard.css", http.StatusOK, "text/css", ".cols"},
		{"GET", "/dashboard/timeline.js", http.StatusOK, "text/javascript", "FaultlineTimeline"},
		{"GET", "/dashboard/style.css", http.StatusOK, "text/css", ".tl-row"},
		// Nothing else is free of the token.
		{"GET", "/dashboard/nope.js", http.StatusUnauthorized, "application/json", "unauthorized"},
		{"GET", "/dashboard/../api/v1/proxies", http.StatusUnauthorized, "application/json", ""},
		{"POST", "/", http.StatusUnauthorized, "application/json", ""},
		{"DELETE", "/dashboard/", http.StatusUnauthorized, "application/json", ""},
		{"GET", "/index.html", http.StatusUnauthorized, "application/json", ""},
		{"GET", "/api/v1/proxies", http.StatusUnauthorized, "application/json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, fx.ts.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := fx.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tt.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) || !strings.Contains(b.String(), tt.wantBody) {
				t.Errorf("status %d, type %q, body %.80q; want %d, %q, holding %q", resp.StatusCode, resp.Header.Get("Content-Type"), b.String(), tt.want, tt.wantType, tt.wantBody)
			}
			if tt.want == http.StatusOK {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
					t.Errorf("Content-Security-Policy %q", csp)
				}
				if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("headers %v", resp.Header)
				}
			}
		})
	}
}

// The dashboard's files obey the Host and Origin rules like the API.
func TestDashboardHostAndOrigin(t *testing.T) {
	fx := newFixture(t, Options{})
	port := fx.port(t)
	if st, e := fx.hostRequest(t, "GET", "/", "attacker.example:"+port, "", ""); st != http.StatusForbidden || e.Code != api.ErrForbiddenHost.Code {
		t.Errorf("GET / with a foreign Host: %d %s, want 403 %s", st, e.Code, api.ErrForbiddenHost.Code)
	}
	if st, e := fx.hostRequest(t, "GET", "/dashboard/dashboard.js", "127.0.0.1:"+port, "http://attacker.example", ""); st != http.StatusForbidden || e.Code != api.ErrForbiddenOrigin.Code {
		t.Errorf("GET dashboard.js from a foreign Origin: %d %s, want 403 %s", st, e.Code, api.ErrForbiddenOrigin.Code)
	}
	if st, _ := fx.hostRequest(t, "GET", "/", "localhost:"+port, "", ""); st != http.StatusOK {
		t.Errorf("GET / as localhost: %d, want 200", st)
	}
}

// With another API mounted (toxiproxy-server), / is that API's and the
// dashboard lives at /dashboard/ only.
func TestDashboardWithMount(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.srv.Mount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "mounted "+r.URL.Path, http.StatusNotFound)
	}))
	if st, b := fx.do(t, "GET", "/", nil); st != http.StatusNotFound || !strings.Contains(string(b), "mounted /") {
		t.Errorf("GET /: %d %q, want the mounted handler's 404", st, b)
	}
	if st, b := fx.do(t, "GET", "/dashboard/", nil); st != http.StatusOK || !strings.Contains(string(b), "dashboard.js") {
		t.Errorf("GET /dashboard/: %d %.60q, want the page", st, b)
	}
}
