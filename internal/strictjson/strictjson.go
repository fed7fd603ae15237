// Package strictjson checks JSON text for two things encoding/json lets
// through without a word: an object key given twice (the last one wins)
// and a key that names a struct field only when case is ignored
// ({"KIND":"latency"} fills Kind). faultline's API and its fault JSON are
// case-sensitive and refuse both.
//
// Check is a pre-scan with json.Decoder tokens, run beside the ordinary
// decoding, which keeps its own errors (syntax, types, unknown fields):
//
//	if err := json.Unmarshal(b, &v); err != nil { ... }
//	if err := strictjson.Check(b, &v); err != nil { ... }
//
// encoding/json/v2 refuses both by default, but in Go 1.26 it is only
// there under GOEXPERIMENT=jsonv2; this package stands in until it is not.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

var (
	// ErrDuplicateKey is returned for an object that has a key twice.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrUnknownKey is returned for a key that is not exactly the JSON
	// name of a field of the struct it is decoded into (such as "KIND"
	// for "kind").
	ErrUnknownKey = errors.New("unknown field")
	// ErrTooDeep is returned for values nested deeper than MaxDepth.
	ErrTooDeep = errors.New("nested too deep")
)

// MaxDepth is the deepest nesting of objects and arrays Check walks.
const MaxDepth = 1000

// Check walks data, one JSON value, against the type v points to (v may be
// nil: then only duplicate keys are looked for). In every object it
// refuses a key given twice; in an object decoded into a struct, a key
// that is not exactly one of the struct's JSON field names. The content of
// a value whose type decodes itself (json.Unmarshaler,
// encoding.TextUnmarshaler) is checked for duplicate keys only: its
// UnmarshalJSON is expected to check the rest. An error names the place,
// as in `faults[0]: duplicate key "kind"`, and wraps ErrDuplicateKey,
// ErrUnknownKey, ErrTooDeep or the decoder's syntax error.
func Check(data []byte, v any) error {
	var t reflect.Type
	if v != nil {
		t = reflect.TypeOf(v)
	}
	w := walker{dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	return w.value(t, "", 0)
}

type walker struct {
	dec *json.Decoder
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// shape returns the type whose fields or elements a JSON value decoded
// into t has: t without pointers, or nil for an interface, a type that
// decodes itself, or no type at all.
func shape(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
			reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
			return nil
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	if t != nil && t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

func (w *walker) value(t reflect.Type, path string, depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return at(path, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth >= MaxDepth {
		return at(path, fmt.Errorf("%w: over %d levels", ErrTooDeep, MaxDepth))
	}
	t = shape(t)
	switch d {
	case '{':
		return w.object(t, path, depth)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
		_, err := w.dec.Token() // ']'
		return at(path, err)
	}
	return nil
}

func (w *walker) object(t reflect.Type, path string, depth int) error {
	var (
		fields map[string]reflect.Type // for a struct
		elem   reflect.Type            // for a map
	)
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = fieldsOf(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	seen := make(map[string]struct{})
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return at(path, err)
		}
		key, _ := tok.(string)
		if _, dup := seen[key]; dup {
			return at(path, fmt.Errorf("%w %q", ErrDuplicateKey, key))
		}
		seen[key] = struct{}{}
		ft := elem
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				return at(path, fmt.Errorf("%w %q%s", ErrUnknownKey, key, caseHint(fields, key)))
			}
		}
		if err := w.value(ft, join(path, key), depth+1); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // '}'
	return at(path, err)
}

// caseHint names the field key matches but for case, if any.
func caseHint(fields map[string]reflect.Type, key string) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (keys are case-sensitive: want %q)", name)
		}
	}
	return ""
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf returns the JSON names of struct type t's fields, as
// encoding/json decodes them (tags, "-", embedded structs), with their
// types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type)
	addFields(m, t, 0)
	fieldCache.Store(t, m)
	return m
}

func addFields(m map[string]reflect.Type, t reflect.Type, depth int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct && depth < 8 {
				addFields(m, et, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := m[name]; !ok || depth == 0 {
			m[name] = f.Type // a shallower field wins, as in encoding/json
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func at(path string, err error) error {
	if err == nil || path == "" {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}
