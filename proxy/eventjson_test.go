package proxy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

func TestEventJSONRoundTrip(t *testing.T) {
	in := []Event{
		{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Kind: EventBorrowed, Conn: 3, Upstream: 2, Reused: true, Idle: 1500 * time.Millisecond},
		{Seq: 2, Kind: EventInterrupted, Took: 42 * time.Microsecond},
		{Seq: 3, Kind: EventClosed, By: ByProxy, How: RST, BytesUp: 7, BytesDown: 9, Err: errors.New("boom")},
		{Seq: 4, Kind: EventFaultApplied, Dir: Down, Fault: "slow", FaultKind: faults.KindLatency},
		{Seq: 5, Kind: EventDiscarded, Reason: ReasonStranded},
	}
	for _, e := range in {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var out Event
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if out.Err != nil && e.Err != nil && out.Err.Error() == e.Err.Error() {
			out.Err = e.Err
		}
		if !reflect.DeepEqual(out, e) {
			t.Errorf("round trip of %s: got %+v, want %+v", b, out, e)
		}
	}
	b, _ := json.Marshal(in[0])
	if !strings.Contains(string(b), `"idle":"1.5s"`) || !strings.Contains(string(b), `"kind":"borrowed"`) {
		t.Errorf("JSON %s: want idle as a duration string and kind by name", b)
	}
	var e Event
	if err := json.Unmarshal([]byte(`{"kind":"nope"}`), &e); !errors.Is(err, ErrBadText) {
		t.Errorf("unknown kind: err %v, want ErrBadText", err)
	}
}
