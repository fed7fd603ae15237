package faults

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzFaultJSON feeds arbitrary bytes to the fault decoder and Normalized.
// Neither may panic; each refusal is one of the package's named errors;
// Normalized leaves its own result as it is; and a fault both accept
// survives the JSON round trip: encoding it, decoding that and normalizing
// again gives the same fault.
//
// make test runs the seeds; search for more with
//
//	go test -run '^$' -fuzz FuzzFaultJSON -fuzztime 5m ./faults/
func FuzzFaultJSON(f *testing.F) {
	for _, seed := range jsonSamples {
		b, err := json.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"name":"n","kind":"latency","dir":"down","delay":"1ms","jitter":"2ms","target":{"which":"new","every":2,"count":3},"after_bytes":5,"after":"1s","for":"2s","seed":9}`,
		`{"kind":"idle-close","idle":"1m","abort":true,"target":{"which":"ids","ids":[1,2]}}`,
		`{"kind":"stall","drop":true,"target":{"prob":0.25}}`,
		`{"kind":"reset","side":"upstream"}`,
		`{"kind":"latency","delay":"-1s"}`,
		`{"kind":"corrupt","prob":1e308}`,
		`{"kind":"limit","bytes":-1}`,
		`{"kind":"latency","target":{"which":"ids","ids":[]}}`,
		`{"kind":"latency","target":{"every":1,"prob":0.5}}`,
		`{"kind":"slice","size":9223372036854775807}`,
		`{"kind":"latency","delay":"9223372036s"}`,
		`{"kind":"stale","mode":""}`,
		`{"kind":"latency"} {}`,
		`null`,
		`"latency"`,
		`{"kind":"latency","name":"a\u0000b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var flt Fault
		if err := json.Unmarshal(in, &flt); err != nil {
			if !errors.Is(err, ErrBadFault) && !isSyntaxError(err) {
				t.Fatalf("Unmarshal(%q) = %v: neither ErrBadFault nor a JSON syntax error", in, err)
			}
			return
		}
		norm, err := flt.Normalized()
		if err != nil {
			if !errors.Is(err, ErrBadFault) && !errors.Is(err, ErrUnknownKind) {
				t.Fatalf("Normalized(%+v) = %v: neither ErrBadFault nor ErrUnknownKind", flt, err)
			}
			return
		}
		again, err := norm.Normalized()
		if err != nil {
			t.Fatalf("Normalized refuses its own result %+v: %v", norm, err)
		}
		b1, err := json.Marshal(norm)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", norm, err)
		}
		if !reflect.DeepEqual(canon(again), canon(norm)) {
			t.Fatalf("Normalized is not idempotent: %+v, then %+v", norm, again)
		}
		var back Fault
		if err := json.Unmarshal(b1, &back); err != nil {
			t.Fatalf("Unmarshal of Marshal's %s: %v", b1, err)
		}
		back, err = back.Normalized()
		if err != nil {
			t.Fatalf("a valid fault %s is refused after the round trip: %v", b1, err)
		}
		if !reflect.DeepEqual(canon(back), canon(norm)) {
			t.Fatalf("round trip through %s changed the fault: %+v became %+v", b1, norm, back)
		}
	})
}

// canon maps an empty Target.IDs to nil: JSON writes neither.
func canon(f Fault) Fault {
	if len(f.Target.IDs) == 0 {
		f.Target.IDs = nil
	}
	return f
}

// isSyntaxError reports whether err is the JSON decoder's own: input that
// is not JSON at all never reaches Fault.UnmarshalJSON.
func isSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}
