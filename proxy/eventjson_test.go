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

// TestEventJSONExact pins the JSON of events byte for byte: the event
// stream, the websocket and saved logs depend on it.
func TestEventJSONExact(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Seq: 1, Time: at, Kind: EventAccepted, Conn: 1},
			`{"seq":1,"time":"2026-01-02T03:04:05.000000006Z","kind":"accepted","conn":1}`},
		{Event{Seq: 2, Time: at, Kind: EventHalfClosed, Conn: 1, Upstream: 2, Dir: Up, BytesUp: 5, BytesDown: 6},
			`{"seq":2,"time":"2026-01-02T03:04:05.000000006Z","kind":"half-closed","conn":1,"upstream":2,"dir":"up","bytes_up":5,"bytes_down":6}`},
		{Event{Seq: 3, Time: at, Kind: EventFaultFired, Conn: 1, Dir: Down, Fault: "stall-1", FaultKind: faults.KindStall},
			`{"seq":3,"time":"2026-01-02T03:04:05.000000006Z","kind":"fault-fired","conn":1,"dir":"down","fault":"stall-1","fault_kind":"stall"}`},
		{Event{Seq: 4, Time: at, Kind: EventReset, Conn: 1, Upstream: 2, By: Upstream},
			`{"seq":4,"time":"2026-01-02T03:04:05.000000006Z","kind":"reset","conn":1,"upstream":2,"by":"upstream"}`},
		{Event{Seq: 5, Time: at, Kind: EventClosed, Conn: 1, Upstream: 2, By: Client, How: FIN, BytesUp: 5, BytesDown: 6},
			`{"seq":5,"time":"2026-01-02T03:04:05.000000006Z","kind":"closed","conn":1,"upstream":2,"by":"client","how":"FIN","bytes_up":5,"bytes_down":6}`},
		{Event{Seq: 6, Time: at, Kind: EventClosed, Conn: 3, By: ByProxy, How: RST, Err: errors.New("boom")},
			`{"seq":6,"time":"2026-01-02T03:04:05.000000006Z","kind":"closed","conn":3,"by":"proxy","how":"RST","err":"boom"}`},
		{Event{Seq: 7, Time: at, Kind: EventDiscarded, Upstream: 2, Reason: ReasonStale},
			`{"seq":7,"time":"2026-01-02T03:04:05.000000006Z","kind":"discarded","upstream":2,"reason":"stale"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.e)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("JSON of %s:\n got  %s\n want %s", tt.e.Kind, b, tt.want)
		}
	}
	for _, in := range []string{`{"kind":"closed","by":"both"}`, `{"kind":"closed","by":"nobody"}`, `{"kind":"half-closed","dir":"both"}`, `{"kind":"half-closed","dir":"sideways"}`} {
		var e Event
		if err := json.Unmarshal([]byte(in), &e); !errors.Is(err, ErrBadText) {
			t.Errorf("Unmarshal(%s): err %v, want ErrBadText", in, err)
		}
	}
}
