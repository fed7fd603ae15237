package report

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/proxy"
)

func TestReadShapes(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantIDs   []uint64
		wantProxy string
		wantKinds []proxy.EventKind
	}{
		{"API events as JSON lines",
			`{"id":7,"proxy":"db","event":{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"accepted","conn":1}}
{"id":8,"proxy":"db","event":{"seq":2,"time":"2026-01-01T00:00:01Z","kind":"closed","conn":1,"by":"client","how":"FIN"}}
`, []uint64{7, 8}, "db", []proxy.EventKind{proxy.EventAccepted, proxy.EventClosed}},
		{"bare proxy events", `{"seq":3,"time":"2026-01-01T00:00:00Z","kind":"dialed","conn":1,"upstream":1}`,
			[]uint64{3}, "", []proxy.EventKind{proxy.EventDialed}},
		{"a page of GET /api/v1/events",
			`{"events":[{"id":1,"proxy":"x","event":{"seq":1,"kind":"accepted","conn":1}},{"id":2,"proxy":"x","event":{"seq":2,"kind":"reset","conn":1}}],"next":2}`,
			[]uint64{1, 2}, "x", []proxy.EventKind{proxy.EventAccepted, proxy.EventReset}},
		{"nothing", "", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.wantIDs) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.wantIDs))
			}
			for i, e := range got {
				if e.ID != tt.wantIDs[i] || e.Proxy != tt.wantProxy || e.Event.Kind != tt.wantKinds[i] {
					t.Errorf("event %d: got id %d proxy %q kind %s, want %d %q %s", i, e.ID, e.Proxy, e.Event.Kind, tt.wantIDs[i], tt.wantProxy, tt.wantKinds[i])
				}
			}
		})
	}
}

func TestReadRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not JSON", "hello"},
		{"an array", "[1,2]"},
		{"no event", `{"id":1}`},
		{"unknown kind", `{"seq":1,"kind":"exploded"}`},
		{"bad duration", `{"seq":1,"kind":"interrupted","took":"forever"}`},
		{"truncated", `{"id":1,"event":{"seq":1,"kind":"accepted"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Read(strings.NewReader(tt.in)); !errors.Is(err, ErrBadLog) {
				t.Errorf("Read(%q) = %v, want ErrBadLog", tt.in, err)
			}
		})
	}
}

func TestWriteIsSelfContained(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evil := errors.New("</script><script>alert(1)</script>")
	run := Run{
		Title: "<b>run</b>",
		Events: []api.Event{
			{ID: 1, Proxy: "db", Event: proxy.Event{Seq: 1, Time: now, Kind: proxy.EventAccepted, Conn: 1}},
			{ID: 2, Proxy: "db", Event: proxy.Event{Seq: 2, Time: now.Add(time.Millisecond), Kind: proxy.EventClosed, Conn: 1, Err: evil}},
		},
		Violations: []Violation{{Proxy: "db", Check: "CheckX", What: "</script> went wrong"}},
	}
	var b strings.Builder
	if err := Write(&b, run); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script>alert", "</script> went", "<b>run</b>", "src=", "href=", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	for _, want := range []string{"FaultlineTimeline", `"kind":"closed"`, "&lt;b&gt;run&lt;/b&gt;", "CheckX", "default-src 'none'"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
