package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// ErrBadText is returned when decoding a name that is not one of a type's
// values (an event kind, a close), or an event whose dir or by is not one
// an event has (dir "up" or "down", by "client", "upstream" or "proxy").
var ErrBadText = errors.New("proxy: unknown name")

// ParseEventKind returns the kind named s ("accepted", "fault-fired", ...).
func ParseEventKind(s string) (EventKind, error) {
	for k, name := range eventKindNames {
		if name != "" && name == s {
			return EventKind(k), nil
		}
	}
	return 0, fmt.Errorf("%w: event kind %q", ErrBadText, s)
}

// UnmarshalText decodes a kind from its name.
func (k *EventKind) UnmarshalText(b []byte) (err error) {
	*k, err = ParseEventKind(string(b))
	return err
}

// UnmarshalText decodes "FIN" or "RST".
func (h *CloseHow) UnmarshalText(b []byte) error {
	return parseName(h, string(b), "close", FIN, RST)
}

// ParseCloseHow returns FIN or RST from its name, in either case.
func ParseCloseHow(s string) (CloseHow, error) {
	switch s {
	case "FIN", "fin":
		return FIN, nil
	case "RST", "rst":
		return RST, nil
	}
	return 0, fmt.Errorf("%w: close %q (want FIN or RST)", ErrBadText, s)
}

func parseName[T fmt.Stringer](dst *T, s, what string, values ...T) error {
	for _, v := range values {
		if v.String() == s {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("%w: %s %q", ErrBadText, what, s)
}

// eventJSON is an Event's JSON form: durations as Go duration strings
// ("1.5ms") and Err as its text.
type eventJSON struct {
	Seq       uint64      `json:"seq"`
	Time      time.Time   `json:"time"`
	Kind      EventKind   `json:"kind"`
	Conn      uint64      `json:"conn,omitempty"`
	Upstream  uint64      `json:"upstream,omitempty"`
	Reused    bool        `json:"reused,omitempty"`
	Idle      string      `json:"idle,omitempty"`
	Took      string      `json:"took,omitempty"`
	Reason    Reason      `json:"reason,omitempty"`
	Dir       Direction   `json:"dir,omitzero"`
	By        Side        `json:"by,omitzero"`
	How       CloseHow    `json:"how,omitzero"`
	BytesUp   int64       `json:"bytes_up,omitempty"`
	BytesDown int64       `json:"bytes_down,omitempty"`
	Fault     string      `json:"fault,omitempty"`
	FaultKind faults.Kind `json:"fault_kind,omitempty"`
	Err       string      `json:"err,omitempty"`
}

// MarshalJSON encodes the event with durations as Go duration strings and
// Err as its text.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{
		Seq: e.Seq, Time: e.Time, Kind: e.Kind, Conn: e.Conn, Upstream: e.Upstream,
		Reused: e.Reused, Idle: durString(e.Idle), Took: durString(e.Took), Reason: e.Reason,
		Dir: e.Dir, By: e.By, How: e.How, BytesUp: e.BytesUp, BytesDown: e.BytesDown,
		Fault: e.Fault, FaultKind: e.FaultKind, Err: errString(e.Err),
	})
}

// UnmarshalJSON decodes what MarshalJSON encodes; Err comes back as an
// error with the same text.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	idle, err := parseDur(j.Idle)
	if err != nil {
		return err
	}
	took, err := parseDur(j.Took)
	if err != nil {
		return err
	}
	if j.Dir != "" && j.Dir != Up && j.Dir != Down {
		return fmt.Errorf("%w: direction %q", ErrBadText, j.Dir)
	}
	if j.By != "" && j.By != Client && j.By != Upstream && j.By != ByProxy {
		return fmt.Errorf("%w: side %q", ErrBadText, j.By)
	}
	*e = Event{
		Seq: j.Seq, Time: j.Time, Kind: j.Kind, Conn: j.Conn, Upstream: j.Upstream,
		Reused: j.Reused, Idle: idle, Took: took, Reason: j.Reason,
		Dir: j.Dir, By: j.By, How: j.How, BytesUp: j.BytesUp, BytesDown: j.BytesDown, Fault: j.Fault, FaultKind: j.FaultKind,
	}
	if j.Err != "" {
		e.Err = errors.New(j.Err)
	}
	return nil
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
