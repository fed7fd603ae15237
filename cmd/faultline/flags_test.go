package main

import (
	"errors"
	"testing"

	"github.com/faultline-proxy/faultline/faults"
)

// TestFaultKindsKnown checks that the kinds the CLI accepts are the faults
// package's.
func TestFaultKindsKnown(t *testing.T) {
	for _, k := range faultKinds {
		if _, err := (faults.Fault{Kind: k}).Normalized(); errors.Is(err, faults.ErrUnknownKind) {
			t.Errorf("kind %q: faults does not know it: %v", k, err)
		}
	}
	if _, err := (faults.Fault{Kind: "timeout"}).Normalized(); !errors.Is(err, faults.ErrUnknownKind) {
		t.Errorf("kind timeout: got %v, want ErrUnknownKind", err)
	}
}

func TestNearestKind(t *testing.T) {
	tests := []struct {
		in   string
		want faults.Kind
	}{
		{"latency", faults.KindLatency},
		{"latncy", faults.KindLatency},
		{"Latency", faults.KindLatency},
		{"half_close", faults.KindHalfClose},
		{"halfclose", faults.KindHalfClose},
		{"slice", faults.KindSlice},
		{"stal", faults.KindStall},
		{"idle_close", faults.KindIdleClose},
		{"bandwith", faults.KindBandwidth},
		{"xyzzyplugh", ""},
		{"", ""},
		{"q", ""},
	}
	for _, tt := range tests {
		if got := nearestKind(tt.in); got != tt.want {
			t.Errorf("nearestKind(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
