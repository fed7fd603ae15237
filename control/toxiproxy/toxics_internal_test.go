package toxiproxy

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

func TestBuild(t *testing.T) {
	const seed = 9
	half := faults.Target{Which: faults.All, Prob: 0.5}
	tests := []struct {
		name     string
		attrs    any
		toxicity float32
		want     []faults.Fault
	}{
		{"latency", &LatencyToxic{Latency: 100, Jitter: 20}, 1, []faults.Fault{faults.Latency(80*time.Millisecond, 40*time.Millisecond)}},
		{"jitter over latency", &LatencyToxic{Latency: 50, Jitter: 100}, 1, []faults.Fault{faults.Latency(0, 150*time.Millisecond)}},
		{"bandwidth", &BandwidthToxic{Rate: 5}, 1, []faults.Fault{faults.Bandwidth(5000)}},
		{"bandwidth 0", &BandwidthToxic{}, 1, []faults.Fault{faults.Stall(false)}},
		{"slow_close", &SlowCloseToxic{Delay: 7}, 1, []faults.Fault{faults.SlowClose(7 * time.Millisecond)}},
		{"timeout 0", &TimeoutToxic{}, 1, []faults.Fault{faults.Blackhole()}},
		{"timeout", &TimeoutToxic{Timeout: 30}, 1, []faults.Fault{faults.Blackhole(), faults.IdleClose(30*time.Millisecond, false)}},
		{"reset_peer", &ResetPeerToxic{Timeout: 40}, 1, []faults.Fault{faults.Blackhole(), faults.Reset(faults.ToBoth).WithAfter(40 * time.Millisecond)}},
		{"reset_peer 0", &ResetPeerToxic{}, 1, []faults.Fault{faults.Reset(faults.ToBoth)}},
		{"slicer", &SlicerToxic{AverageSize: 10, SizeVariation: 3, Delay: 50}, 1, []faults.Fault{{Kind: faults.KindSlice, Size: 10, SizeVariation: 3, Delay: 50 * time.Microsecond}}},
		{"slicer variation clamped", &SlicerToxic{AverageSize: 10, SizeVariation: 30}, 1, []faults.Fault{{Kind: faults.KindSlice, Size: 10, SizeVariation: 9}}},
		{"limit_data", &LimitDataToxic{Bytes: 11}, 1, []faults.Fault{faults.Limit(11)}},
		{"noop", &NoopToxic{}, 1, nil},
		{"latency 0", &LatencyToxic{}, 1, nil},
		{"jitter alone", &LatencyToxic{Jitter: 10}, 1, []faults.Fault{faults.Latency(0, 10*time.Millisecond)}},
		{"slow_close 0", &SlowCloseToxic{}, 1, nil},
		{"toxicity 0", &ResetPeerToxic{}, 0, nil},
		{"toxicity below 0", &LatencyToxic{Latency: 1}, -1, nil},
		{"toxicity over 1", &LimitDataToxic{Bytes: 1}, 7, []faults.Fault{faults.Limit(1)}},
		{"toxicity 0.5", &LimitDataToxic{Bytes: 1}, 0.5, []faults.Fault{faults.Limit(1).WithTarget(half)}},
	}
	for _, tt := range tests {
		got, err := build(tt.attrs, faults.Up, tt.toxicity, seed)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		for i := range tt.want {
			tt.want[i].Dir, tt.want[i].Seed = faults.Up, seed
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		for _, f := range got {
			if _, err := f.Normalized(); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, attrs := range []any{
		&LatencyToxic{Latency: -1}, &LatencyToxic{Jitter: -1}, &LatencyToxic{Latency: maxMillis + 1},
		&BandwidthToxic{Rate: -1}, &BandwidthToxic{Rate: maxRateKB + 1}, &SlowCloseToxic{Delay: -1},
		&TimeoutToxic{Timeout: -1}, &ResetPeerToxic{Timeout: maxMillis + 1},
		&SlicerToxic{}, &SlicerToxic{AverageSize: -1}, &SlicerToxic{AverageSize: 1, SizeVariation: -1},
		&SlicerToxic{AverageSize: 1, Delay: -1}, &SlicerToxic{AverageSize: maxSize + 1},
		&LimitDataToxic{Bytes: -1}, &LimitDataToxic{Bytes: maxBytes + 1},
	} {
		if _, err := build(attrs, faults.Down, 1, 1); !errors.Is(err, errAttr) {
			t.Errorf("build(%+v) = %v, want errAttr", attrs, err)
		}
	}
}

// derive reads back what build makes, for one-fault toxics.
func TestDeriveRoundTrip(t *testing.T) {
	for _, attrs := range []any{
		&LatencyToxic{Latency: 100, Jitter: 20}, &BandwidthToxic{Rate: 5}, &BandwidthToxic{},
		&SlowCloseToxic{Delay: 7}, &TimeoutToxic{}, &ResetPeerToxic{},
		&SlicerToxic{AverageSize: 10, SizeVariation: 3, Delay: 50}, &LimitDataToxic{Bytes: 11},
	} {
		fs, err := build(attrs, faults.Down, 0.25, 1)
		if err != nil || len(fs) != 1 {
			t.Fatalf("build(%+v): %v, %v", attrs, fs, err)
		}
		got, stream, tox, ok := derive(fs[0])
		if !ok || !reflect.DeepEqual(got, attrs) || stream != "downstream" || tox != 0.25 {
			t.Errorf("derive(build(%+v)) = %+v %s %v %v", attrs, got, stream, tox, ok)
		}
	}
}

// A fault that acts only on some exchanges has no toxic to show it: as a
// toxic it would seem to act on every byte.
func TestDeriveSkipsExchangeFaults(t *testing.T) {
	f := faults.Latency(time.Millisecond, 0).WithDir(faults.Down)
	if _, _, _, ok := derive(f); !ok {
		t.Fatalf("derive(%+v): want a latency toxic", f)
	}
	f.FromExchange = 2
	if attrs, _, _, ok := derive(f); ok {
		t.Errorf("derive(%+v) = %+v; want no toxic", f, attrs)
	}
}
