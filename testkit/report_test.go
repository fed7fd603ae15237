package testkit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
)

// invalidReuseLog is a pool-mode run in which conn 2 borrows upstream 1
// after conn 1's session discarded it.
func invalidReuseLog() *EventLog {
	closed := ev(proxy.EventClosed, 1, 1)
	closed.By, closed.BytesUp, closed.BytesDown = proxy.Client, 5, 5
	return events(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		ev(proxy.EventAccepted, 1, 0), borrowed(1, 1, false), ev(proxy.EventInterrupted, 1, 1),
		discarded(1, 1, proxy.ReasonUnread), closed,
		ev(proxy.EventAccepted, 2, 0), borrowed(2, 1, true))
}

func TestCheckLogFindsViolations(t *testing.T) {
	got := CheckLog(invalidReuseLog())
	if len(got) != 1 || !errors.Is(got[0], ErrInvalidReuse) || len(got[0].Violations) != 1 {
		t.Fatalf("CheckLog = %v, want one invalid reuse", got)
	}
	v := got[0].Violations[0]
	if len(v.Events) != 2 || v.Events[0].Kind != proxy.EventDiscarded || v.Events[1].Conn != 2 {
		t.Errorf("violation %+v, want the discard and conn 2's borrow", v)
	}
	if got := CheckLog(NewEventLog()); len(got) != 0 {
		t.Errorf("CheckLog of an empty log = %v, want nothing", got)
	}
}

func TestCheckErrorText(t *testing.T) {
	err := CheckNoInvalidReuse(invalidReuseLog())
	want := "testkit: upstream connection reused when it must not be: 1 found:\n  - conn 2 borrowed upstream 1 after it was discarded (unread)\n      #4 discarded"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want it to start %q", err, want)
	}
}

func TestWriteReportMarksViolations(t *testing.T) {
	var b strings.Builder
	if err := invalidReuseLog().WriteReport(&b, "TestX"); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`"check":"CheckNoInvalidReuse"`, `"what":"conn 2 borrowed upstream 1 after it was discarded (unread)"`, "TestX", `"kind":"borrowed"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
