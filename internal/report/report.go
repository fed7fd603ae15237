// Package report reads a faultline event log and writes it as one
// self-contained HTML page: a timeline with one lane per connection, the
// details of each, a summary and the violations the testkit's checks found,
// marked on the timeline. The page needs no network: its styles, scripts
// and data are inline. The dashboard serves the same timeline script
// (Assets) so both draw runs alike.
//
// Package testkit runs the checks and calls Write (testkit.WriteReport);
// "faultline report" is its command.
package report

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/proxy"
)

// Assets holds the report's page and the scripts and styles the dashboard
// shares: assets/timeline.js and assets/style.css.
//
//go:embed assets
var Assets embed.FS

// ErrBadLog is wrapped by Read's error for input that is not an event log.
var ErrBadLog = errors.New("report: not a faultline event log")

// Violation is one violation a check found, with the events that show it,
// in the proxy named Proxy.
type Violation struct {
	Proxy  string        `json:"proxy"`
	Check  string        `json:"check"`
	What   string        `json:"what"`
	Events []proxy.Event `json:"events"`
}

// Run is what a report shows.
type Run struct {
	Title      string
	Events     []api.Event // in order
	Violations []Violation
	Checks     []string // the checks that ran, named in the page when all passed
}

// Read decodes an event log: JSON values one after another (JSON lines or
// not), each an event as the control API gives it ({"id", "proxy",
// "event"}: "faultline events", EventLog.WriteJSON), a bare proxy event
// ({"seq", "kind", ...}), or a page of GET /api/v1/events ({"events": [...],
// "next"}). Events without an ID are numbered in order.
func Read(r io.Reader) ([]api.Event, error) {
	dec := json.NewDecoder(r)
	var out []api.Event
	for n := 1; ; n++ {
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%w: value %d: %w", ErrBadLog, n, err)
		}
		var err error
		switch {
		case raw["events"] != nil:
			var page api.Events
			if err = json.Unmarshal(raw["events"], &page.Events); err == nil {
				out = append(out, page.Events...)
			}
		case raw["event"] != nil:
			var e api.Event
			if err = remarshal(raw, &e); err == nil {
				out = append(out, e)
			}
		case raw["kind"] != nil:
			var e proxy.Event
			if err = remarshal(raw, &e); err == nil {
				out = append(out, api.Event{ID: e.Seq, Event: e})
			}
		default:
			err = errors.New(`no "event", "events" or "kind"`)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: value %d: %w", ErrBadLog, n, err)
		}
	}
	for i := range out {
		if out[i].ID == 0 {
			out[i].ID = uint64(i + 1)
		}
	}
	return out, nil
}

func remarshal(raw map[string]json.RawMessage, v any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

var page = template.Must(template.ParseFS(Assets, "assets/report.html"))

// Write writes the report of run as one HTML page.
func Write(w io.Writer, run Run) error {
	if run.Events == nil {
		run.Events = []api.Event{}
	}
	if run.Violations == nil {
		run.Violations = []Violation{}
	}
	if run.Checks == nil {
		run.Checks = []string{}
	}
	data, err := json.Marshal(struct {
		Events     []api.Event `json:"events"`
		Violations []Violation `json:"violations"`
		Checks     []string    `json:"checks"`
	}{run.Events, run.Violations, run.Checks})
	if err != nil {
		return err
	}
	css, _ := Assets.ReadFile("assets/style.css")
	tl, _ := Assets.ReadFile("assets/timeline.js")
	rj, _ := Assets.ReadFile("assets/report.js")
	var b bytes.Buffer
	err = page.Execute(&b, map[string]any{
		"Title": run.Title,
		"Span":  span(run.Events),
		"CSS":   template.CSS(css),
		// json.Marshal escapes <, > and &, so the data cannot end its
		// script element.
		"Data":       template.JS(data),
		"TimelineJS": template.JS(tl),
		"ReportJS":   template.JS(rj),
	})
	if err != nil {
		return err
	}
	_, err = w.Write(b.Bytes())
	return err
}

// span describes when the events happened.
func span(events []api.Event) string {
	if len(events) == 0 {
		return "no events"
	}
	first, last := events[0].Event.Time, events[len(events)-1].Event.Time
	return fmt.Sprintf("%d events from %s over %s", len(events), first.UTC().Format(time.RFC3339Nano), last.Sub(first).Round(time.Microsecond))
}
