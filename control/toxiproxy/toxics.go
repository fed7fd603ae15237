package toxiproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// The attributes of each toxic type, as toxiproxy names them. Every
// response carries all of a type's attributes, zero ones included
// (toxiproxy-java reads each one). The struct names appear in decoding
// errors, as toxiproxy's do.
type (
	// LatencyToxic holds each chunk latency ± jitter milliseconds.
	LatencyToxic struct {
		Latency int64 `json:"latency"`
		Jitter  int64 `json:"jitter"`
	}
	// BandwidthToxic limits the stream to rate KB/s (1000 bytes); 0 stalls it.
	BandwidthToxic struct {
		Rate int64 `json:"rate"`
	}
	// SlowCloseToxic delays the end of the stream by delay milliseconds.
	SlowCloseToxic struct {
		Delay int64 `json:"delay"`
	}
	// TimeoutToxic drops the stream's bytes and closes the connection
	// after timeout milliseconds without any (0: never).
	TimeoutToxic struct {
		Timeout int64 `json:"timeout"`
	}
	// ResetPeerToxic resets the connection (RST) timeout milliseconds after
	// the toxic is added, dropping the stream's bytes until then.
	ResetPeerToxic struct {
		Timeout int64 `json:"timeout"`
	}
	// SlicerToxic writes the stream in pieces of average_size ±
	// size_variation bytes, delay microseconds apart.
	SlicerToxic struct {
		AverageSize   int `json:"average_size"`
		SizeVariation int `json:"size_variation"`
		Delay         int `json:"delay"`
	}
	// LimitDataToxic closes the connection once bytes bytes went through.
	LimitDataToxic struct {
		Bytes int64 `json:"bytes"`
	}
	// NoopToxic does nothing.
	NoopToxic struct{}
)

// newAttrs returns zero attributes of the toxic type typ, or nil for a type
// toxiproxy does not have.
func newAttrs(typ string) any {
	switch typ {
	case "latency":
		return &LatencyToxic{}
	case "bandwidth":
		return &BandwidthToxic{}
	case "slow_close":
		return &SlowCloseToxic{}
	case "timeout":
		return &TimeoutToxic{}
	case "reset_peer":
		return &ResetPeerToxic{}
	case "slicer":
		return &SlicerToxic{}
	case "limit_data":
		return &LimitDataToxic{}
	case "noop":
		return &NoopToxic{}
	}
	return nil
}

// cloneAttrs copies attributes (pointers to the structs above).
func cloneAttrs(a any) any {
	b, _ := json.Marshal(a)
	c := newAttrs(typeOf(a))
	_ = json.Unmarshal(b, c)
	return c
}

func typeOf(a any) string {
	switch a.(type) {
	case *LatencyToxic:
		return "latency"
	case *BandwidthToxic:
		return "bandwidth"
	case *SlowCloseToxic:
		return "slow_close"
	case *TimeoutToxic:
		return "timeout"
	case *ResetPeerToxic:
		return "reset_peer"
	case *SlicerToxic:
		return "slicer"
	case *LimitDataToxic:
		return "limit_data"
	}
	return "noop"
}

// errAttr is an attribute faultline refuses where toxiproxy would crash
// or misbehave (a negative duration or rate, a slicer of size 0).
var errAttr = errors.New("invalid toxic attribute")

// ms is n milliseconds.
func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// Bounds on attributes, within the faults package's bounds on the faults
// they become (faults.Normalized): a day for durations (attributes in
// milliseconds, and the slicer's delay in microseconds), 2^40 bytes/s for
// a rate, 1 MiB for a slice, 2^50 bytes for a limit.
const (
	maxMillis = 24 * 60 * 60 * 1000
	maxRateKB = (1 << 40) / 1000
	maxSize   = 1 << 20
	maxBytes  = 1 << 50
)

// build returns the faults a toxic is made of, in direction dir, picking
// connections with probability toxicity drawn from seed. A toxic that can
// never act (toxicity 0 or less, or noop) is made of no fault.
func build(attrs any, dir faults.Direction, toxicity float32, seed uint64) ([]faults.Fault, error) {
	bad := func(format string, a ...any) ([]faults.Fault, error) {
		return nil, fmt.Errorf("%w: %s", errAttr, fmt.Sprintf(format, a...))
	}
	var fs []faults.Fault
	switch a := attrs.(type) {
	case *LatencyToxic:
		switch {
		case a.Latency < 0 || a.Jitter < 0:
			return bad("latency and jitter must not be negative")
		case a.Latency > maxMillis || a.Jitter > maxMillis:
			return bad("latency and jitter must be at most %d ms", maxMillis)
		}
		if a.Latency == 0 && a.Jitter == 0 {
			return nil, nil // delays nothing: no fault (faultline refuses a latency of 0)
		}
		// toxiproxy draws latency ± jitter, uniformly; faultline draws
		// delay + [0, jitter]. Below zero toxiproxy sends at once.
		lo := max(a.Latency-a.Jitter, 0)
		fs = append(fs, faults.Latency(ms(lo), ms(a.Latency+a.Jitter-lo)))
	case *BandwidthToxic:
		switch {
		case a.Rate < 0:
			return bad("rate must not be negative")
		case a.Rate > maxRateKB:
			return bad("rate must be at most %d KB/s", maxRateKB)
		case a.Rate == 0:
			fs = append(fs, faults.Stall(false)) // bytes wait until it is removed
		default:
			fs = append(fs, faults.Bandwidth(a.Rate*1000))
		}
	case *SlowCloseToxic:
		if a.Delay < 0 || a.Delay > maxMillis {
			return bad("delay must be 0 to %d ms", maxMillis)
		}
		if a.Delay == 0 {
			return nil, nil // delays nothing: no fault (faultline refuses a slow-close of 0)
		}
		fs = append(fs, faults.SlowClose(ms(a.Delay)))
	case *TimeoutToxic:
		if a.Timeout < 0 || a.Timeout > maxMillis {
			return bad("timeout must be 0 to %d ms", maxMillis)
		}
		fs = append(fs, faults.Blackhole())
		if a.Timeout > 0 {
			fs = append(fs, faults.IdleClose(ms(a.Timeout), false))
		}
	case *ResetPeerToxic:
		if a.Timeout < 0 || a.Timeout > maxMillis {
			return bad("timeout must be 0 to %d ms", maxMillis)
		}
		if a.Timeout > 0 {
			// toxiproxy drops the stream's data while it waits to reset,
			// so a request sent meanwhile fails: so does this.
			fs = append(fs, faults.Blackhole())
		}
		fs = append(fs, faults.Reset(faults.ToBoth).WithAfter(ms(a.Timeout)))
	case *SlicerToxic:
		switch {
		case a.AverageSize <= 0:
			return bad("average_size must be positive")
		case a.AverageSize > maxSize:
			return bad("average_size must be at most %d", maxSize)
		case a.SizeVariation < 0:
			return bad("size_variation must not be negative")
		case a.Delay < 0 || a.Delay > maxMillis:
			return bad("delay must be 0 to %d µs", maxMillis)
		}
		f := faults.Slice(a.AverageSize, time.Duration(a.Delay)*time.Microsecond)
		f.SizeVariation = min(a.SizeVariation, a.AverageSize-1)
		fs = append(fs, f)
	case *LimitDataToxic:
		if a.Bytes < 0 || a.Bytes > maxBytes {
			return bad("bytes must be 0 to %d", int64(maxBytes))
		}
		fs = append(fs, faults.Limit(a.Bytes))
	case *NoopToxic:
		return nil, nil
	}
	if toxicity <= 0 {
		return nil, nil
	}
	for i := range fs {
		fs[i].Dir = dir
		fs[i].Seed = seed
		if toxicity < 1 {
			fs[i].Target = faults.Target{Which: faults.All, Prob: float64(toxicity)}
		}
	}
	return fs, nil
}

// derive describes as a toxic a fault made through faultline's own API,
// when a toxic type has its meaning: its type, attributes, stream and
// toxicity. ok is false for faults that are no toxic (they are listed by
// /api/v1 only).
func derive(f faults.Fault) (attrs any, stream string, toxicity float32, ok bool) {
	switch f.Dir {
	case faults.Up:
		stream = "upstream"
	case faults.Down:
		stream = "downstream"
	default:
		if f.Kind != faults.KindReset {
			return nil, "", 0, false
		}
		stream = "downstream"
	}
	t := f.Target
	if (t.Which != "" && t.Which != faults.All) || t.Every != 0 || t.Count != 0 || f.AfterBytes != 0 || f.For != 0 || f.ByExchange() ||
		(f.After != 0 && f.Kind != faults.KindReset) {
		return nil, "", 0, false
	}
	toxicity = 1
	if t.Prob > 0 {
		toxicity = float32(t.Prob)
	}
	toMS := func(d time.Duration) int64 { return d.Milliseconds() }
	switch f.Kind {
	case faults.KindLatency:
		attrs = &LatencyToxic{Latency: toMS(f.Delay + f.Jitter/2), Jitter: toMS(f.Jitter / 2)}
	case faults.KindBandwidth:
		attrs = &BandwidthToxic{Rate: max(f.Rate/1000, 1)}
	case faults.KindStall:
		if f.Drop {
			return nil, "", 0, false
		}
		attrs = &BandwidthToxic{Rate: 0}
	case faults.KindSlowClose:
		attrs = &SlowCloseToxic{Delay: toMS(f.Delay)}
	case faults.KindBlackhole:
		attrs = &TimeoutToxic{Timeout: 0}
	case faults.KindReset:
		attrs = &ResetPeerToxic{Timeout: toMS(f.After)}
	case faults.KindSlice:
		attrs = &SlicerToxic{AverageSize: f.Size, SizeVariation: f.SizeVariation, Delay: int(f.Delay.Microseconds())}
	case faults.KindLimit:
		attrs = &LimitDataToxic{Bytes: f.Bytes}
	default:
		return nil, "", 0, false
	}
	return attrs, stream, toxicity, true
}

// parseStream reads a toxic's stream as toxiproxy does: "upstream" is the
// client to the upstream (faultline's up), "downstream" the other way; case
// does not matter.
func parseStream(s string) (faults.Direction, bool) {
	switch strings.ToLower(s) {
	case "upstream":
		return faults.Up, true
	case "downstream":
		return faults.Down, true
	}
	return "", false
}

// toxicSeed is the seed of a toxic's faults: the proxy's seed mixed with
// the toxic's name, so that two toxics of a proxy draw apart, and a run
// with the same seed and the same calls draws the same.
func toxicSeed(proxySeed uint64, toxic string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(proxySeed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(toxic))
	return max(h.Sum64(), 1)
}
