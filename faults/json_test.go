package faults

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jsonSamples are faults of every kind with most fields set, for round
// trips (and the fuzz target's seeds).
var jsonSamples = []Fault{
	Latency(150*time.Millisecond, 10*time.Millisecond).WithDir(Down).WithName("slow"),
	Stall(true).WithFor(2 * time.Second).WithAfter(time.Second),
	Reset(ToClient).WithTarget(Target{Which: ByID, IDs: []uint64{3, 4}}),
	Bandwidth(1024).WithAfterBytes(10),
	Stall(false).WithDir(Down).WithExchange(3, 2),
	Slice(8, time.Millisecond),
	Limit(100),
	SlowClose(time.Second),
	Corrupt(0.01).WithSeed(7),
	IdleClose(time.Minute, true).WithTarget(Target{Every: 2, Count: 3}),
	Stale(StaleBlackhole).WithTarget(Target{Which: New, Prob: 0.5}),
	ConnectDelay(time.Second), DropOnAccept(), Refuse(), Blackhole(), HalfClose(Up),
}

func TestFaultJSONRoundTrip(t *testing.T) {
	for _, f := range jsonSamples {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var got Fault
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("round trip of %s: got %+v, want %+v", b, got, f)
		}
	}
	b, _ := json.Marshal(jsonSamples[0])
	if want := `{"name":"slow","kind":"latency","dir":"down","delay":"150ms","jitter":"10ms"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestFaultJSONRefusesBadInput(t *testing.T) {
	tests := []struct {
		in, want string // want: a piece of the error message
	}{
		{`{"kind":"latency","delay":150}`, "duration string"},
		{`{"kind":"latency","delay":"150"}`, "missing unit"},
		{`{"kind":"latency","dleay":"1s"}`, "unknown field"},
		{`{"kind":"latency","target":{"whch":"all"}}`, "unknown field"},
		{`{"kind":"limit","bytes":"10"}`, `field "bytes"`},
		{`[1]`, "cannot unmarshal"},
		{`{"KIND":"latency","delay":"1s"}`, `unknown field "KIND"`},
		{`{"kind":"latency","Delay":"1s"}`, `want "delay"`},
		{`{"kind":"latency","target":{"Which":"all"}}`, `target: unknown field "Which"`},
		{`{"kind":"corrupt","kind":"latency","delay":"1s"}`, `duplicate key "kind"`},
		{`{"kind":"latency","delay":"1s","target":{"count":1,"count":2}}`, `target: duplicate key "count"`},
	}
	for _, tt := range tests {
		var f Fault
		err := json.Unmarshal([]byte(tt.in), &f)
		if !errors.Is(err, ErrBadFault) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Unmarshal(%s) = %v, want ErrBadFault mentioning %q", tt.in, err, tt.want)
		}
	}
}

// TestFaultJSONOutOfBounds: the JSON of issue 14's crash decodes (it is
// well-formed) but Normalized refuses it, naming the field.
func TestFaultJSONOutOfBounds(t *testing.T) {
	for _, in := range []string{
		`{"kind":"latency","delay":"1ms","jitter":"2562047h47m16.854775807s"}`,
		`{"kind":"latency","delay":"2562047h47m16.854775807s"}`,
		`{"kind":"limit","bytes":9223372036854775807}`,
		`{"kind":"bandwidth","rate":9223372036854775807}`,
		`{"kind":"latency","delay":"1ms","after_bytes":9223372036854775807}`,
	} {
		var f Fault
		if err := json.Unmarshal([]byte(in), &f); err != nil {
			t.Fatalf("Unmarshal(%s): %v", in, err)
		}
		if _, err := f.Normalized(); !errors.Is(err, ErrBadFault) || !strings.Contains(err.Error(), "maximum") {
			t.Errorf("Normalized(%s) = %v, want ErrBadFault naming the maximum", in, err)
		}
	}
}
