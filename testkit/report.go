package testkit

import (
	"errors"
	"io"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/internal/report"
	"github.com/faultline-proxy/faultline/proxy"
)

// checkNames names CheckLog's checks by their sentinels, for reports.
var checkNames = []struct {
	sentinel error
	name     string
}{
	{ErrInvalidReuse, "CheckNoInvalidReuse"},
	{ErrWriteAfterClose, "CheckNoWriteAfterClose"},
	{ErrSlowInterrupt, "CheckInterruptsWithin(1s)"},
}

// WriteReport writes events (a recorded run, of one proxy or many, as
// "faultline events" and EventLog.WriteJSON give them) as one
// self-contained HTML page: a timeline with one lane per connection, the
// details of each, a summary, and what CheckLog finds in each proxy's
// events, marked on the timeline. title heads the page. "faultline report"
// is this function as a command.
func WriteReport(w io.Writer, title string, events []api.Event) error {
	run := report.Run{Title: title, Events: events}
	for _, c := range checkNames {
		run.Checks = append(run.Checks, c.name)
	}
	var order []string
	byProxy := make(map[string][]proxy.Event)
	for _, e := range events {
		if _, ok := byProxy[e.Proxy]; !ok {
			order = append(order, e.Proxy)
		}
		byProxy[e.Proxy] = append(byProxy[e.Proxy], e.Event)
	}
	for _, name := range order {
		for _, ce := range CheckLog(NewEventLog(byProxy[name]...)) {
			check := ce.Sentinel.Error()
			for _, c := range checkNames {
				if errors.Is(ce, c.sentinel) {
					check = c.name
				}
			}
			for _, v := range ce.Violations {
				run.Violations = append(run.Violations, report.Violation{Proxy: name, Check: check, What: v.What, Events: v.Events})
			}
		}
	}
	return report.Write(w, run)
}

// WriteReport writes the log's events as WriteReport does.
func (l *EventLog) WriteReport(w io.Writer, title string) error {
	events := l.All()
	name := l.proxyName()
	out := make([]api.Event, len(events))
	for i, e := range events {
		out[i] = api.Event{ID: e.Seq, Proxy: name, Event: e}
	}
	return WriteReport(w, title, out)
}
