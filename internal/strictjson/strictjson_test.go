package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Size int `json:"size"`
}

type embedded struct {
	Deep string `json:"deep"`
}

type self struct{ s string }

func (s *self) UnmarshalJSON(b []byte) error { s.s = string(b); return nil }

type outer struct {
	embedded
	Name    string            `json:"name"`
	Ptr     *inner            `json:"ptr,omitempty"`
	Pool    inner             `json:"pool"`
	List    []inner           `json:"list"`
	Labels  map[string]inner  `json:"labels"`
	Any     any               `json:"any"`
	Self    self              `json:"self"`
	When    time.Time         `json:"when"` // a TextUnmarshaler
	Skipped string            `json:"-"`
	Plain   int               // no tag: its Go name
	Raw     json.RawMessage   `json:"raw"`
	Strs    map[string]string `json:"strs"`
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name, in string
		want     error  // nil: accepted
		where    string // a piece of the error message
	}{
		{"valid", `{"name":"a","ptr":{"size":1},"pool":{"size":2},"list":[{"size":3}],"labels":{"x":{"size":4}},"deep":"d","Plain":1}`, nil, ""},
		{"empty object", `{}`, nil, ""},
		{"scalar", `3`, nil, ""},
		{"null pointer", `{"ptr":null}`, nil, ""},
		{"any holds anything", `{"any":{"A":1,"a":2,"x":[{"k":1}]}}`, nil, ""},
		{"map keys differ by case", `{"labels":{"a":{"size":1},"A":{"size":2}}}`, nil, ""},
		{"self decoding keys not checked", `{"self":{"Whatever":1}}`, nil, ""},
		{"text unmarshaler", `{"when":"2026-01-02T03:04:05Z"}`, nil, ""},
		{"raw message", `{"raw":{"X":1}}`, nil, ""},

		{"duplicate top key", `{"name":"a","name":"b"}`, ErrDuplicateKey, `duplicate key "name"`},
		{"duplicate in nested struct", `{"pool":{"size":1,"size":2}}`, ErrDuplicateKey, `pool: duplicate key "size"`},
		{"duplicate in list", `{"list":[{},{"size":1,"size":1}]}`, ErrDuplicateKey, `list[1]: duplicate key`},
		{"duplicate in map", `{"strs":{"a":"1","a":"2"}}`, ErrDuplicateKey, `strs: duplicate key "a"`},
		{"duplicate in any", `{"any":{"k":1,"k":2}}`, ErrDuplicateKey, `any: duplicate key "k"`},
		{"duplicate in self decoding", `{"self":{"k":1,"k":2}}`, ErrDuplicateKey, `self: duplicate key`},
		{"duplicate with different case", `{"name":"a","NAME":"b"}`, ErrUnknownKey, `"NAME"`},
		{"upper case key", `{"NAME":"a"}`, ErrUnknownKey, `want "name"`},
		{"case in nested", `{"ptr":{"Size":1}}`, ErrUnknownKey, `ptr: unknown field "Size"`},
		{"case in embedded", `{"DEEP":"x"}`, ErrUnknownKey, `"DEEP"`},
		{"untagged field by json name only", `{"plain":1}`, ErrUnknownKey, `want "Plain"`},
		{"skipped field", `{"Skipped":"x"}`, ErrUnknownKey, `"Skipped"`},
		{"unknown field", `{"nope":1}`, ErrUnknownKey, `unknown field "nope"`},
		{"too deep", strings.Repeat(`[`, MaxDepth+1) + strings.Repeat(`]`, MaxDepth+1), ErrTooDeep, "nested too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v outer
			err := Check([]byte(tt.in), &v)
			if !errors.Is(err, tt.want) || (err != nil && !strings.Contains(err.Error(), tt.where)) {
				t.Errorf("Check(%s) = %v, want %v mentioning %q", tt.in, err, tt.want, tt.where)
			}
		})
	}
}

func TestCheckWithoutType(t *testing.T) {
	if err := Check([]byte(`{"A":1,"a":{"b":[{"c":1}]}}`), nil); err != nil {
		t.Errorf("Check(nil type) = %v, want nil", err)
	}
	if err := Check([]byte(`[{"c":1,"c":1}]`), nil); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("Check(nil type) of a duplicate = %v, want ErrDuplicateKey", err)
	}
}

func TestCheckSyntaxError(t *testing.T) {
	var se *json.SyntaxError
	if err := Check([]byte(`{"a":`), nil); err == nil {
		t.Error("Check of truncated JSON = nil, want an error")
	}
	if err := Check([]byte(`{"a" 1}`), nil); !errors.As(err, &se) {
		t.Errorf("Check of bad JSON = %v, want a *json.SyntaxError", err)
	}
}

// FuzzCheck: Check never panics, and anything encoding/json decodes with
// no duplicate key it accepts when no type is given.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `[[{"x":[1,{"y":null}]}]]`, `"s"`, `{"a":{"b":{"c":{}}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v outer
		_ = Check(in, &v)
		_ = Check(in, nil)
	})
}
