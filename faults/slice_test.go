package faults

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestSliceSizeVariation(t *testing.T) {
	f := Slice(10, time.Millisecond)
	f.SizeVariation = 9
	if _, err := f.Normalized(); err != nil {
		t.Fatalf("variation 9 of size 10: %v", err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var got Fault
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip of %s: %+v, %v", b, got, err)
	}
	tests := []struct {
		name string
		f    Fault
	}{
		{"as large as size", Fault{Kind: KindSlice, Size: 10, SizeVariation: 10}},
		{"negative", Fault{Kind: KindSlice, Size: 10, SizeVariation: -1}},
		{"not a slice", Fault{Kind: KindLatency, SizeVariation: 1}},
	}
	for _, tt := range tests {
		if _, err := tt.f.Normalized(); !errors.Is(err, ErrBadFault) {
			t.Errorf("%s: %v, want ErrBadFault", tt.name, err)
		}
	}
}
