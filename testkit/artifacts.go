package testkit

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultline-proxy/faultline/control/api"
)

// EnvArtifacts names the environment variable that holds the directory a
// failed test's event log is saved under when the test does not run with
// go test's -artifacts flag.
const EnvArtifacts = "FAULTLINE_ARTIFACTS"

// ErrArtifacts begins the message logged when a failed test's event log
// or report cannot be saved.
var ErrArtifacts = errors.New("testkit: cannot save the event log or its report")

// artifactsFlag reports whether the test binary runs with -artifacts (a
// variable so that tests can pretend it does).
var artifactsFlag = func() bool {
	f := flag.Lookup("test.artifacts")
	return f != nil && f.Value.String() == "true"
}

// WriteJSON writes every event as JSON lines in the shape of the control
// API's events ("faultline events", GET /api/v1/events): one api.Event per
// line, its ID the event's Seq and its proxy the log's proxy name ("" for
// an in-process proxy). "faultline report" reads it.
func (l *EventLog) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	name := l.proxyName()
	for _, e := range l.All() {
		if err := enc.Encode(api.Event{ID: e.Seq, Proxy: name, Event: e}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// artifactDir returns the directory to save tb's artifacts in: tb's
// ArtifactDir with -artifacts, else a directory named after the test under
// $FAULTLINE_ARTIFACTS, else "" (nothing is saved).
func artifactDir(tb testing.TB) (string, error) {
	if artifactsFlag() {
		return tb.ArtifactDir(), nil
	}
	root := os.Getenv(EnvArtifacts)
	if root == "" {
		return "", nil
	}
	dir := filepath.Join(root, fileName(tb.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// fileName turns s into one path element: letters, digits, '-', '_' and
// '.' are kept, anything else becomes '_'.
func fileName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
	s = strings.Trim(s, ".")
	if s == "" {
		return "test"
	}
	return s
}

// saveArtifacts saves the event log of p and its report into tb's
// artifact directory if the test failed, and logs where (or why not); it
// runs in the Cleanup that closes p.
func (p *Proxy) saveArtifacts() {
	if !p.tb.Failed() {
		return
	}
	dir, err := artifactDir(p.tb)
	if err != nil {
		p.tb.Logf("%v: %v", ErrArtifacts, err)
		return
	}
	if dir == "" {
		return
	}
	paths, err := p.writeArtifacts(dir)
	if err != nil {
		p.tb.Logf("%v: %v", ErrArtifacts, err)
	}
	if len(paths) == 0 {
		return
	}
	p.tb.Logf("testkit: the proxy's event log and its report: %s", strings.Join(paths, " "))
}

// writeArtifacts writes the event log of p and its report into dir, named
// after p so that the proxies of one test do not clash, and returns the
// paths of the files it wrote.
func (p *Proxy) writeArtifacts(dir string) ([]string, error) {
	base := filepath.Join(dir, "faultline-"+fileName(p.artifactName()))
	path := base + ".events.jsonl"
	if err := writeFile(path, p.log.WriteJSON); err != nil {
		return nil, err
	}
	report := base + ".report.html"
	title := p.tb.Name()
	if err := writeFile(report, func(w io.Writer) error { return p.log.WriteReport(w, title) }); err != nil {
		return []string{path}, err
	}
	return []string{path, report}, nil
}

// artifactName names p's files: the remote proxy's name, else the port it
// listened on.
func (p *Proxy) artifactName() string {
	if n := p.log.proxyName(); n != "" {
		return n
	}
	addr := p.Addr()
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return "port-" + addr[i+1:]
	}
	return "proxy"
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
