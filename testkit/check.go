package testkit

import (
	"fmt"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
)

// maxQuoted is how many violations a check's error spells out; the rest are
// counted.
const maxQuoted = 10

// Violation is one thing a check found: what went wrong and the events that
// show it.
type Violation struct {
	What   string
	Events []proxy.Event
}

// CheckError is the error a check returns when it finds violations. It
// wraps the check's sentinel (errors.Is(err, ErrInvalidReuse), ...), its
// text quotes the violations (up to 10), and Violations lists them all,
// for tools that mark them (errors.As).
type CheckError struct {
	Sentinel   error
	Violations []Violation
}

// Error names the check and quotes each violation with its events.
func (e *CheckError) Error() string {
	var b strings.Builder
	for i, v := range e.Violations {
		if i == maxQuoted {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Violations)-maxQuoted)
			break
		}
		b.WriteString("\n  - ")
		b.WriteString(v.What)
		for _, ev := range v.Events {
			b.WriteString("\n      ")
			b.WriteString(FormatEvent(ev))
		}
	}
	return fmt.Sprintf("%v: %d found:%s", e.Sentinel, len(e.Violations), b.String())
}

// Unwrap returns the check's sentinel.
func (e *CheckError) Unwrap() error { return e.Sentinel }

// violations collects what a check found, each with the events that show
// it, and turns them into one error wrapping the check's sentinel.
type violations struct {
	sentinel error
	list     []Violation
}

// add records one violation: what went wrong and the events that show it.
func (v *violations) add(what string, events ...proxy.Event) {
	v.list = append(v.list, Violation{What: what, Events: events})
}

// err returns nil if nothing was found, else a *CheckError.
func (v *violations) err() error {
	if len(v.list) == 0 {
		return nil
	}
	return &CheckError{Sentinel: v.sentinel, Violations: v.list}
}

// ReportInterruptBound is the bound CheckLog gives CheckInterruptsWithin.
const ReportInterruptBound = time.Second

// CheckLog runs the checks that need nothing but a log, on l:
// CheckNoInvalidReuse, CheckNoWriteAfterClose and CheckInterruptsWithin
// ReportInterruptBound, and returns the errors of those that failed, each
// a *CheckError (a check that cannot judge the log, CheckNoWriteAfterClose
// on a pool-mode one, is left out). It is what "faultline report" marks on
// its timeline.
// CheckGaveUpWithin needs the client's deadline and CheckNothingOpen a live
// proxy, so it runs neither.
func CheckLog(l *EventLog) []*CheckError {
	var out []*CheckError
	for _, err := range []error{
		CheckNoInvalidReuse(l),
		CheckNoWriteAfterClose(l),
		CheckInterruptsWithin(l, ReportInterruptBound),
	} {
		if ce, ok := err.(*CheckError); ok {
			out = append(out, ce)
		}
	}
	return out
}
