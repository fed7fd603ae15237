package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/faultline-proxy/faultline/internal/strictjson"
)

// faultJSON is a Fault's JSON form: the same fields, with durations as Go
// duration strings ("150ms", "2s").
type faultJSON struct {
	Name       string    `json:"name,omitempty"`
	Kind       Kind      `json:"kind"`
	Dir        Direction `json:"dir,omitempty"`
	Side       Side      `json:"side,omitempty"`
	Delay      Duration  `json:"delay,omitzero"`
	Jitter     Duration  `json:"jitter,omitzero"`
	Drop       bool      `json:"drop,omitempty"`
	Rate       int64     `json:"rate,omitempty"`
	Size       int       `json:"size,omitempty"`
	SizeVar    int       `json:"size_variation,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Prob       float64   `json:"prob,omitempty"`
	Idle       Duration  `json:"idle,omitzero"`
	Abort      bool      `json:"abort,omitempty"`
	Mode       StaleMode `json:"mode,omitempty"`
	Target     Target    `json:"target,omitzero"`
	AfterBytes int64     `json:"after_bytes,omitempty"`
	FromExch   int       `json:"from_exchange,omitempty"`
	EveryExch  int       `json:"every_exchange,omitempty"`
	After      Duration  `json:"after,omitzero"`
	For        Duration  `json:"for,omitzero"`
	Seed       uint64    `json:"seed,omitempty"`
}

// MarshalJSON encodes the fault with its durations as Go duration strings:
//
//	{"name":"slow","kind":"latency","dir":"down","delay":"150ms","for":"2s"}
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{
		Name: f.Name, Kind: f.Kind, Dir: f.Dir, Side: f.Side,
		Delay: Duration(f.Delay), Jitter: Duration(f.Jitter), Drop: f.Drop, Rate: f.Rate,
		Size: f.Size, SizeVar: f.SizeVariation, Bytes: f.Bytes, Prob: f.Prob, Idle: Duration(f.Idle), Abort: f.Abort,
		Mode: f.Mode, Target: f.Target, AfterBytes: f.AfterBytes,
		FromExch: f.FromExchange, EveryExch: f.EveryExchange,
		After: Duration(f.After), For: Duration(f.For), Seed: f.Seed,
	})
}

// UnmarshalJSON decodes the form MarshalJSON writes. It is strict: an
// unknown field, a key in the wrong case ("KIND") or given twice, a value
// of the wrong type or a duration that is not a duration string is an
// error wrapping ErrBadFault. It does not validate the fault; Normalized
// does.
func (f *Fault) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j faultJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: %s", ErrBadFault, jsonProblem(err))
	}
	if err := strictjson.Check(b, &j); err != nil {
		return fmt.Errorf("%w: %v", ErrBadFault, err)
	}
	*f = Fault{
		Name: j.Name, Kind: j.Kind, Dir: j.Dir, Side: j.Side,
		Delay: time.Duration(j.Delay), Jitter: time.Duration(j.Jitter), Drop: j.Drop, Rate: j.Rate,
		Size: j.Size, SizeVariation: j.SizeVar, Bytes: j.Bytes, Prob: j.Prob, Idle: time.Duration(j.Idle), Abort: j.Abort,
		Mode: j.Mode, Target: j.Target, AfterBytes: j.AfterBytes,
		FromExchange: j.FromExch, EveryExchange: j.EveryExch,
		After: time.Duration(j.After), For: time.Duration(j.For), Seed: j.Seed,
	}
	return nil
}

// jsonProblem words a decoding error for a person: which field, what was
// wrong.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// Duration is a time.Duration that reads and writes JSON (and text) as a Go
// duration string such as "150ms" or "1m30s".
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"150ms\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON reads a JSON string holding a Go duration; a number is
// refused, since a bare number hides its unit.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"150ms\", got %s", b)
	}
	return d.UnmarshalText([]byte(s))
}
