package testkit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
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

// Each proxy's events are checked apart: IDs are per proxy, so upstream 1
// of proxy a is not upstream 1 of proxy b.
func TestWriteReportChecksEachProxy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, seq uint64, e proxy.Event) api.Event {
		e.Seq, e.Time = seq, now.Add(time.Duration(seq)*time.Millisecond)
		return api.Event{ID: seq, Proxy: name, Event: e}
	}
	events := []api.Event{
		mk("a", 1, borrowed(1, 1, false)), mk("a", 2, ev(proxy.EventInterrupted, 1, 1)), mk("a", 3, discarded(1, 1, proxy.ReasonUnread)),
		mk("b", 1, borrowed(1, 1, false)), mk("b", 2, ev(proxy.EventInterrupted, 1, 1)), mk("b", 3, ev(proxy.EventReleased, 1, 1)),
		mk("b", 4, borrowed(2, 1, true)), // fine: b's upstream 1 went back to b's pool
	}
	var b strings.Builder
	if err := WriteReport(&b, "two proxies", events); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `"check":`) {
		t.Errorf("the report finds a violation in two proxies' clean logs")
	}
	events = append(events, mk("a", 4, borrowed(5, 1, true))) // a's discarded upstream 1 lent again
	b.Reset()
	if err := WriteReport(&b, "two proxies", events); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"proxy":"a","check":"CheckNoInvalidReuse","what":"conn 5 borrowed upstream 1`) {
		t.Errorf("the report does not find proxy a's invalid reuse")
	}
}
