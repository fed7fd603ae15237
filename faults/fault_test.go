package faults

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalized(t *testing.T) {
	tests := []struct {
		name string
		in   Fault
		want error
	}{
		{"latency", Latency(time.Millisecond, time.Millisecond), nil},
		{"stall with drop", Stall(true).WithDir(Up), nil},
		{"reset toward client", Reset(ToClient), nil},
		{"half-close down", HalfClose(Down), nil},
		{"by id", Blackhole().WithTarget(Target{Which: ByID, IDs: []uint64{3}}), nil},
		{"bandwidth", Bandwidth(1 << 20), nil},
		{"slice", Slice(10, time.Millisecond), nil},
		{"limit zero", Limit(0), nil},
		{"bandwidth without rate", Fault{Kind: KindBandwidth}, ErrBadFault},
		{"negative rate", Bandwidth(-1), ErrBadFault},
		{"slice without size", Fault{Kind: KindSlice}, ErrBadFault},
		{"rate on slice", Fault{Kind: KindSlice, Size: 1, Rate: 5}, ErrBadFault},
		{"negative limit", Limit(-1), ErrBadFault},
		{"slow-close", SlowClose(time.Second), nil},
		{"corrupt", Corrupt(0.01), nil},
		{"corrupt above one", Corrupt(1.5), ErrBadFault},
		{"prob on latency", Fault{Kind: KindLatency, Prob: 0.5}, ErrBadFault},
		{"connect-delay", ConnectDelay(time.Second), nil},
		{"drop-on-accept", DropOnAccept(), nil},
		{"delay on drop-on-accept", Fault{Kind: KindDropOnAccept, Delay: 1}, ErrBadFault},
		{"every 3", Blackhole().WithTarget(Target{Every: 3}), nil},
		{"prob", Blackhole().WithTarget(Target{Which: New, Prob: 0.5, Count: 2}), nil},
		{"every and prob", Blackhole().WithTarget(Target{Every: 2, Prob: 0.5}), ErrBadFault},
		{"prob above one", Blackhole().WithTarget(Target{Prob: 2}), ErrBadFault},
		{"negative count", Blackhole().WithTarget(Target{Count: -1}), ErrBadFault},
		{"negative after", Blackhole().WithAfter(-1), ErrBadFault},
		{"idle-close", IdleClose(time.Second, true), nil},
		{"idle-close without idle", Fault{Kind: KindIdleClose}, ErrBadFault},
		{"abort on stall", Fault{Kind: KindStall, Abort: true}, ErrBadFault},
		{"refuse", Refuse(), nil},
		{"after bytes", Latency(time.Millisecond, 0).WithAfterBytes(100), nil},
		{"after bytes on reset", Reset(ToBoth).WithAfterBytes(1), ErrBadFault},
		{"negative after bytes", Blackhole().WithAfterBytes(-1), ErrBadFault},
		{"from exchange 3", Stall(false).WithDir(Down).WithExchange(3, 0), nil},
		{"every 2nd exchange", Limit(0).WithDir(Up).WithExchange(0, 2), nil},
		{"exchange on reset", Reset(ToBoth).WithExchange(2, 0), ErrBadFault},
		{"exchange on idle-close", IdleClose(time.Second, false).WithExchange(2, 0), ErrBadFault},
		{"exchange on connect-delay", ConnectDelay(time.Second).WithExchange(0, 2), ErrBadFault},
		{"negative from exchange", Blackhole().WithExchange(-1, 0), ErrBadFault},
		{"negative every exchange", Blackhole().WithExchange(0, -1), ErrBadFault},
		{"from exchange past the bound", Blackhole().WithExchange(MaxCount+1, 0), ErrBadFault},
		{"every exchange past the bound", Blackhole().WithExchange(0, MaxCount+1), ErrBadFault},
		{"stale", Stale(StaleReset), nil},
		{"stale without mode", Fault{Kind: KindStale}, ErrBadFault},
		{"mode on blackhole", Fault{Kind: KindBlackhole, Mode: StaleEOF}, ErrBadFault},
		{"unknown kind", Fault{Kind: "melt"}, ErrUnknownKind},
		{"bad dir", Blackhole().WithDir("sideways"), ErrBadFault},
		{"bad side", Fault{Kind: KindReset, Side: "middle"}, ErrBadFault},
		{"side proxy (an event's By, never a fault's Side)", Reset(ByProxy), ErrBadFault},
		{"negative delay", Latency(-time.Second, 0), ErrBadFault},
		{"negative for", Blackhole().WithFor(-time.Second), ErrBadFault},
		{"delay on stall", Fault{Kind: KindStall, Delay: time.Second}, ErrBadFault},
		{"drop on blackhole", Fault{Kind: KindBlackhole, Drop: true}, ErrBadFault},
		{"half-close both ways", HalfClose(Both), ErrBadFault},
		{"ids without which", Blackhole().WithTarget(Target{IDs: []uint64{1}}), ErrBadFault},
		{"which ids without ids", Blackhole().WithTarget(Target{Which: ByID}), ErrBadFault},
		{"unknown which", Blackhole().WithTarget(Target{Which: "some"}), ErrBadFault},
		{"named", Blackhole().WithName("db-1.rst_x"), nil},

		// Bounds (issue 14: a jitter of math.MaxInt64 panicked the draw).
		{"jitter at the bound", Latency(time.Millisecond, MaxDuration), nil},
		{"jitter past the bound", Latency(time.Millisecond, math.MaxInt64), ErrBadFault},
		{"delay past the bound", Latency(MaxDuration+1, 0), ErrBadFault},
		{"for past the bound", Blackhole().WithFor(MaxDuration + 1), ErrBadFault},
		{"after past the bound", Blackhole().WithAfter(math.MaxInt64), ErrBadFault},
		{"idle past the bound", IdleClose(MaxDuration+1, false), ErrBadFault},
		{"slice delay past the bound", Slice(1, MaxDuration+1), ErrBadFault},
		{"rate at the bound", Bandwidth(MaxRate), nil},
		{"rate past the bound", Bandwidth(MaxRate + 1), ErrBadFault},
		{"size at the bound", Slice(MaxSize, 0), nil},
		{"size past the bound", Slice(MaxSize+1, 0), ErrBadFault},
		{"limit at the bound", Limit(MaxBytes), nil},
		{"limit past the bound", Limit(math.MaxInt64), ErrBadFault},
		{"after bytes past the bound", Blackhole().WithAfterBytes(MaxBytes + 1), ErrBadFault},
		{"every past the bound", Blackhole().WithTarget(Target{Every: MaxCount + 1}), ErrBadFault},
		{"count past the bound", Blackhole().WithTarget(Target{Count: MaxCount + 1}), ErrBadFault},
		{"too many ids", Blackhole().WithTarget(Target{Which: ByID, IDs: make([]uint64, MaxIDs+1)}), ErrBadFault},
		{"NaN prob", Corrupt(math.NaN()), ErrBadFault},
		{"NaN target prob", Blackhole().WithTarget(Target{Prob: math.NaN()}), ErrBadFault},

		// Faults that could not act.
		{"latency without delay", Latency(0, 0), ErrBadFault},
		{"latency with jitter only", Latency(0, time.Millisecond), nil},
		{"corrupt without prob", Corrupt(0), ErrBadFault},
		{"slow-close without delay", SlowClose(0), ErrBadFault},
		{"connect-delay without delay", ConnectDelay(0), ErrBadFault},

		// Stale picks no session unless told to.
		{"stale for the next session", Stale(StaleEOF).WithTarget(Target{Which: New, Count: 1}), nil},
		{"stale for every session", Stale(StaleEOF).WithTarget(Target{Which: All}), nil},
		{"stale with a count and no which", Stale(StaleEOF).WithTarget(Target{Count: 1}), nil},
		{"stale on the idle pool with a count", Stale(StaleEOF).WithTarget(Target{Which: IdlePool, Count: 1}), ErrBadFault},
		{"idle target on a blackhole", Blackhole().WithTarget(Target{Which: IdlePool}), ErrBadFault},
		{"named ..", Blackhole().WithName(".."), ErrBadFault},
		{"named .", Blackhole().WithName("."), ErrBadFault},
		{"name with a slash", Blackhole().WithName("a/b"), ErrBadFault},
		{"name with a space", Blackhole().WithName("a b"), ErrBadFault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.in.Normalized()
			if !errors.Is(err, tt.want) {
				t.Errorf("Normalized() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNormalizedDefaults(t *testing.T) {
	got, err := Latency(time.Millisecond, 0).Normalized()
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != Both || got.Side != ToBoth || got.Target.Which != All {
		t.Errorf("defaults: dir %q side %q which %q; want both, both, all", got.Dir, got.Side, got.Target.Which)
	}
}

func TestNormalizedStaleDefault(t *testing.T) {
	got, err := Stale(StaleEOF).Normalized()
	if err != nil {
		t.Fatal(err)
	}
	if got.Target.Which != IdlePool {
		t.Errorf("stale's default target which = %q, want %q", got.Target.Which, IdlePool)
	}
	// Any target opts sessions in, which defaulting to all.
	got, err = Stale(StaleEOF).WithTarget(Target{Count: 1}).Normalized()
	if err != nil || got.Target.Which != All {
		t.Errorf("stale with count 1: which %q, %v; want %q", got.Target.Which, err, All)
	}
}

// TestNormalizedNamesMissingField: a fault that could not act is refused
// with a message that names what it lacks.
func TestNormalizedNamesMissingField(t *testing.T) {
	tests := []struct {
		in   Fault
		want string
	}{
		{Fault{Kind: KindLatency}, "missing delay"},
		{Fault{Kind: KindCorrupt}, "missing prob"},
		{Fault{Kind: KindSlowClose}, "missing delay"},
		{Fault{Kind: KindConnectDelay}, "missing delay"},
		{Fault{Kind: KindBandwidth}, "needs a rate"},
		{Fault{Kind: KindSlice}, "needs a size"},
		{Fault{Kind: KindIdleClose}, "needs a positive idle"},
		{Latency(time.Millisecond, math.MaxInt64), "jitter"},
	}
	for _, tt := range tests {
		_, err := tt.in.Normalized()
		if !errors.Is(err, ErrBadFault) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Normalized(%+v) = %v, want ErrBadFault mentioning %q", tt.in, err, tt.want)
		}
	}
}

func TestOnExchange(t *testing.T) {
	tests := []struct {
		name        string
		from, every int
		want        []int64 // exchanges 0 to 6 it acts on
	}{
		{"no condition", 0, 0, []int64{0, 1, 2, 3, 4, 5, 6}},
		{"from 3", 3, 0, []int64{3, 4, 5, 6}},
		{"every 2", 0, 2, []int64{2, 4, 6}},
		{"from 3, every 2", 3, 2, []int64{4, 6}},
		{"from 1", 1, 0, []int64{1, 2, 3, 4, 5, 6}},
	}
	for _, tt := range tests {
		f := Blackhole().WithExchange(tt.from, tt.every)
		var got []int64
		for k := range int64(7) {
			if f.OnExchange(k) {
				got = append(got, k)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: acts on %v, want %v", tt.name, got, tt.want)
		}
	}
}
