package testkit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/proxy"
)

// failedTB is a testing.TB whose test has failed (or not), that records
// Logf and keeps its cleanups to run them when the test body says so, and
// whose ArtifactDir is dir.
type failedTB struct {
	testing.TB // the real test, for Helper, Name, Errorf, ...
	failed     bool
	dir        string

	mu       sync.Mutex // guards logs, cleanups
	logs     []string
	cleanups []func()
}

func (f *failedTB) Failed() bool        { return f.failed }
func (f *failedTB) ArtifactDir() string { return f.dir }
func (f *failedTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *failedTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

// end runs the cleanups, last first, as the testing package does, and
// returns what was logged.
func (f *failedTB) end() string {
	f.mu.Lock()
	cs := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.logs, "\n")
}

// readJSONLines decodes the api.Events of the file at path.
func readJSONLines(t *testing.T, path string) []api.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []api.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e api.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// useProxy sends a few bytes through px and waits for the connection to
// close, so its log holds a whole connection.
func useProxy(t *testing.T, px *Proxy) {
	c := dial(t, px.Addr())
	roundTrip(t, c, "hello")
	_ = c.Close()
	px.Await(proxy.EventClosed)
}

// checkSaved checks that the file at path holds exactly want's events, named
// as the proxy name.
func checkSaved(t *testing.T, path, name string, want []proxy.Event) {
	t.Helper()
	got := readJSONLines(t, path)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%s holds %d events, want %d (and some)", path, len(got), len(want))
	}
	for i, e := range got {
		if e.ID != want[i].Seq || e.Proxy != name || e.Event.Seq != want[i].Seq || e.Event.Kind != want[i].Kind || e.Event.Conn != want[i].Conn {
			t.Errorf("line %d: got %+v, want ID %d, proxy %q, event %v", i+1, e, want[i].Seq, name, want[i])
		}
	}
}

func TestWriteJSONRoundTrips(t *testing.T) {
	px := NewProxy(t, startEcho(t))
	useProxy(t, px)
	var b strings.Builder
	if err := px.Events().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	all := px.Events().All()
	if len(lines) != len(all) {
		t.Fatalf("WriteJSON wrote %d lines for %d events", len(lines), len(all))
	}
	for i, line := range lines {
		var e api.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		want, _ := json.Marshal(all[i])
		got, _ := json.Marshal(e.Event)
		if string(got) != string(want) || e.ID != all[i].Seq {
			t.Errorf("line %d: got %s id %d, want %s id %d", i+1, got, e.ID, want, all[i].Seq)
		}
	}
}

func TestFailedTestSavesEventLog(t *testing.T) {
	upstream := startEcho(t)
	t.Run("FAULTLINE_ARTIFACTS", func(t *testing.T) {
		root := t.TempDir()
		t.Setenv(EnvArtifacts, root)
		tb := &failedTB{TB: t, failed: true}
		px := NewProxy(tb, upstream)
		useProxy(t, px)
		logs := tb.end()
		path := filepath.Join(root, fileName(t.Name()), "faultline-"+px.artifactName()+".events.jsonl")
		checkSaved(t, path, "", px.Events().All())
		report := strings.TrimSuffix(path, ".events.jsonl") + ".report.html"
		if b, err := os.ReadFile(report); err != nil || !strings.Contains(string(b), "FaultlineTimeline") {
			t.Errorf("report %s: %v; want the page", report, err)
		}
		if !strings.Contains(logs, path) || !strings.Contains(logs, report) {
			t.Errorf("logs %q do not name %s and %s", logs, path, report)
		}
	})
	t.Run("-artifacts", func(t *testing.T) {
		t.Setenv(EnvArtifacts, t.TempDir()) // -artifacts wins
		was := artifactsFlag
		artifactsFlag = func() bool { return true }
		defer func() { artifactsFlag = was }()
		tb := &failedTB{TB: t, failed: true, dir: t.TempDir()}
		px := NewProxy(tb, upstream)
		useProxy(t, px)
		logs := tb.end()
		path := filepath.Join(tb.dir, "faultline-"+px.artifactName()+".events.jsonl")
		checkSaved(t, path, "", px.Events().All())
		if !strings.Contains(logs, path) {
			t.Errorf("logs %q do not name %s", logs, path)
		}
	})
	t.Run("remote", func(t *testing.T) {
		root := t.TempDir()
		t.Setenv(EnvArtifacts, root)
		srv := control.New(control.Options{})
		ts := httptest.NewServer(srv.Handler())
		defer ts.Close()
		defer srv.Close()
		if _, err := srv.CreateProxy(api.ProxySpec{Name: "db", Upstream: upstream}); err != nil {
			t.Fatal(err)
		}
		tb := &failedTB{TB: t, failed: true}
		px := Connect(tb, ts.URL, "db")
		useProxy(t, px)
		logs := tb.end()
		path := filepath.Join(root, fileName(t.Name()), "faultline-db.events.jsonl")
		checkSaved(t, path, "db", px.Events().All())
		if !strings.Contains(logs, path) {
			t.Errorf("logs %q do not name %s", logs, path)
		}
	})
}

func TestPassingTestSavesNothing(t *testing.T) {
	upstream := startEcho(t)
	tests := []struct {
		name   string
		failed bool
		env    bool
	}{
		{"passed", false, true},
		{"failed without a place", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			env := ""
			if tt.env {
				env = root
			}
			t.Setenv(EnvArtifacts, env)
			tb := &failedTB{TB: t, failed: tt.failed, dir: root}
			px := NewProxy(tb, upstream)
			useProxy(t, px)
			if logs := tb.end(); logs != "" {
				t.Errorf("logged %q", logs)
			}
			if ents, _ := os.ReadDir(root); len(ents) != 0 {
				t.Errorf("%s holds %d entries, want none", root, len(ents))
			}
		})
	}
}

func TestFileName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TestX/sub_case", "TestX_sub_case"},
		{"../..", "_"},
		{"", "test"},
		{"a b:c", "a_b_c"},
	}
	for _, tt := range tests {
		if got := fileName(tt.in); got != tt.want {
			t.Errorf("fileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFailedSaveIsLogged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvArtifacts, file) // not a directory
	tb := &failedTB{TB: t, failed: true}
	px := NewProxy(tb, startEcho(t))
	useProxy(t, px)
	if logs := tb.end(); !strings.Contains(logs, ErrArtifacts.Error()) {
		t.Errorf("logs %q, want them to say %q", logs, ErrArtifacts)
	}
}
