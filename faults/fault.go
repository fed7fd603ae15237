package faults

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/faultline-proxy/faultline/internal/names"
)

// Errors returned by Normalized; each is wrapped with the detail.
var (
	// ErrUnknownKind is returned for a Kind this package does not know.
	ErrUnknownKind = errors.New("faults: unknown kind")
	// ErrBadFault is returned for a field out of range or not allowed for
	// the kind.
	ErrBadFault = errors.New("faults: invalid fault")
)

// Kind names what a fault does; its value is the name used in JSON, the
// YAML config and the CLI. Each kind's exact socket-level effect is in the
// doc of its constructor:
//
// On the bytes of a direction (Dir):
//
//   - KindLatency ("latency"): delay every chunk by Delay plus up to Jitter;
//   - KindStall ("stall"): stop reading, the connection stays open;
//   - KindBlackhole ("blackhole"): read and drop every byte;
//   - KindHalfClose ("half-close"): send a FIN in Dir, the other way flows;
//   - KindBandwidth ("bandwidth"): at most Rate bytes per second;
//   - KindSlice ("slice"): write in pieces of Size bytes, Delay apart;
//   - KindLimit ("limit"): relay Bytes more bytes, then close with a FIN;
//   - KindSlowClose ("slow-close"): relay the FIN Delay late;
//   - KindCorrupt ("corrupt"): flip a bit in a byte with probability Prob.
//
// On connections:
//
//   - KindReset ("reset"): an RST toward Side, once per connection;
//   - KindDropOnAccept ("drop-on-accept"): reset new connections at once;
//   - KindConnectDelay ("connect-delay"): wait Delay before the upstream
//     connection of a new connection;
//   - KindRefuse ("refuse"): close the listener, new clients are refused;
//   - KindIdleClose ("idle-close"): close connections idle for Idle;
//   - KindStale ("stale"): make pooled upstream connections stale (pool
//     mode), in Mode.
type Kind string

// The kinds. Each one's exact socket-level effect is in the doc comment of
// its constructor.
const (
	KindLatency   Kind = "latency"
	KindStall     Kind = "stall"
	KindBlackhole Kind = "blackhole"
	KindReset     Kind = "reset"
	KindHalfClose Kind = "half-close"
	KindBandwidth Kind = "bandwidth"
	KindSlice     Kind = "slice"
	KindLimit     Kind = "limit"
	KindSlowClose Kind = "slow-close"
	KindCorrupt   Kind = "corrupt"

	KindDropOnAccept Kind = "drop-on-accept"
	KindConnectDelay Kind = "connect-delay"
	KindRefuse       Kind = "refuse"
	KindIdleClose    Kind = "idle-close"
	KindStale        Kind = "stale"
)

// StaleMode says how a stale pooled connection behaves (a stale fault's
// Mode; required):
//
//   - StaleEOF ("eof"): as if the upstream closed it: a FIN;
//   - StaleReset ("reset"): as if the upstream reset it: an RST;
//   - StaleBlackhole ("blackhole"): as if a middlebox dropped its state:
//     silence, which no probe can catch.
type StaleMode string

const (
	StaleEOF       StaleMode = "eof"       // as if the upstream closed it (FIN)
	StaleReset     StaleMode = "reset"     // as if the upstream reset it (RST)
	StaleBlackhole StaleMode = "blackhole" // as if a middlebox dropped its state: silence
)

var kinds = []Kind{
	KindLatency, KindStall, KindBlackhole, KindReset, KindHalfClose, KindBandwidth,
	KindSlice, KindLimit, KindSlowClose, KindCorrupt, KindDropOnAccept, KindConnectDelay,
	KindRefuse, KindIdleClose, KindStale,
}

// Direction says which way bytes flow. It is one type for faults and for
// the proxy's events (proxy.Direction is this type), written in JSON as its
// value:
//
//   - Up ("up"): client to upstream, the bytes the program under test sends;
//   - Down ("down"): upstream to client, the answers it gets;
//   - Both ("both"): both ways. A fault only: it is a fault's default Dir.
//
// A fault's Dir takes all three (half-close only Up or Down); an event's
// Dir is Up or Down, or empty when the event has no direction.
type Direction string

const (
	Up   Direction = "up"   // client to upstream
	Down Direction = "down" // upstream to client
	Both Direction = "both" // both ways (a fault's Dir only)
)

// Has reports whether d covers the direction one ("up" or "down").
func (d Direction) Has(one Direction) bool { return d == Both || d == one }

// String returns d's value: "up", "down", "both", or "" for none.
func (d Direction) String() string { return string(d) }

// Side names an end of a connection: the client's, the upstream's, or (for
// who ended a connection) the proxy itself. It is one type for faults and
// for the proxy's events (proxy.Side is this type), written in JSON as its
// value:
//
//   - ToClient ("client"): the downstream peer, the program under test;
//   - ToUpstream ("upstream"): the upstream peer;
//   - ToBoth ("both"): both peers. A fault only: the default Side of reset;
//   - ByProxy ("proxy"): the proxy itself (a fault, Close, CloseConn, a
//     failed dial). An event only: who ended a connection.
//
// A fault's Side (reset's) takes ToClient, ToUpstream or ToBoth; an
// event's By is ToClient, ToUpstream or ByProxy (proxy.Client,
// proxy.Upstream, proxy.ByProxy), or empty when the event names no side.
type Side string

const (
	ToClient   Side = "client"   // the downstream peer
	ToUpstream Side = "upstream" // the upstream peer
	ToBoth     Side = "both"     // both peers (a fault's Side only)
	ByProxy    Side = "proxy"    // the proxy itself (an event's By only)
)

// Has reports whether s covers one ("client" or "upstream").
func (s Side) Has(one Side) bool { return s == ToBoth || s == one }

// String returns s's value: "client", "upstream", "both", "proxy", or ""
// for none.
func (s Side) String() string { return string(s) }

// Which selects the connections a fault applies to (Target.Which; the
// default is All, or IdlePool for a stale fault with a zero Target):
//
//   - All ("all"): live connections and new ones;
//   - New ("new"): only connections accepted after the fault is added;
//   - Existing ("existing"): only connections live when it is added;
//   - ByID ("ids"): only the downstream connection IDs in Target.IDs;
//   - IdlePool ("idle"): no connection, the pool's idle ones (stale only).
type Which string

const (
	All      Which = "all"      // live connections and new ones
	New      Which = "new"      // only connections accepted after the fault is added
	Existing Which = "existing" // only connections live when the fault is added
	ByID     Which = "ids"      // only the downstream connection IDs in Target.IDs
	// IdlePool selects no connection: a stale fault with it (its default)
	// acts on the pool's idle connections only. Stale only.
	IdlePool Which = "idle"
)

// Bounds on a fault's fields. Normalized refuses a fault beyond them with
// ErrBadFault, so that no value, however extreme, can overflow the proxy's
// arithmetic or hold a connection for longer than a test runs.
const (
	// MaxDuration bounds every duration: delay, jitter, idle, after, for.
	MaxDuration = 24 * time.Hour
	// MaxRate bounds a bandwidth rate, in bytes per second (1 TiB/s).
	MaxRate = 1 << 40
	// MaxSize bounds a slice size, in bytes (1 MiB).
	MaxSize = 1 << 20
	// MaxBytes bounds a limit's bytes and after_bytes (1 PiB).
	MaxBytes = 1 << 50
	// MaxCount bounds target every and count.
	MaxCount = 1_000_000_000
	// MaxIDs bounds how many connection IDs target ids lists.
	MaxIDs = 1000
)

// Target selects connections. The zero value selects all (for stale: no
// session, only the idle pool; see Stale). Which picks the candidates; Every, Prob and
// Count then narrow them, considering the candidates in connection-ID
// order (live ones when the fault is added, new ones as they are
// accepted). Every and Count are at most MaxCount, IDs at most MaxIDs.
type Target struct {
	Which Which    `json:"which,omitempty"`
	IDs   []uint64 `json:"ids,omitempty"` // for ByID

	// Every, if positive, picks every Every-th candidate (the Every-th,
	// the 2*Every-th, ...).
	Every int `json:"every,omitempty"`
	// Prob, if positive, picks each candidate with this probability, drawn
	// from the fault's seeded generator: the same seed and the same
	// candidates in the same order give the same picks.
	Prob float64 `json:"prob,omitempty"`
	// Count, if positive, stops picking after this many connections.
	Count int `json:"count,omitempty"`
}

// Fault is one fault: what it does (Kind and the parameters that kind
// reads), which way (Dir), to which connections (Target), and for how long
// (For; zero means until removed). Faults are values: build one with a
// constructor and the With methods, or fill the fields, then add it to a
// proxy.
//
// In JSON (and in faultline's YAML config) a fault is an object with the
// fields' names in lower case, after_bytes for AfterBytes, and durations as
// Go duration strings: {"kind":"latency","dir":"down","delay":"150ms"}.
//
// Every field is bounded (MaxDuration, MaxRate, MaxSize, MaxBytes,
// MaxCount, MaxIDs); Normalized refuses a fault beyond a bound, or one
// that could not act, with ErrBadFault.
type Fault struct {
	// Name identifies the fault among a proxy's faults: 1 to 64 letters,
	// digits, '.', '_' or '-', other than "." and ".." (it is a path
	// segment of the control API's URLs). If empty, the proxy names it
	// after its kind and a number.
	Name string
	Kind Kind
	Dir  Direction // byte faults; default Both
	Side Side      // reset; default ToBoth

	Delay  time.Duration // latency: added to every chunk; slice: between pieces; slow-close, connect-delay: the wait
	Jitter time.Duration // latency: up to this much more, drawn per chunk
	Drop   bool          // stall: discard what was held when the stall ends
	Rate   int64         // bandwidth: bytes per second
	Size   int           // slice: largest write
	Bytes  int64         // limit: bytes relayed before the close
	Prob   float64       // corrupt: chance per byte of one flipped bit
	Idle   time.Duration // idle-close: how long a connection may be idle
	Abort  bool          // idle-close: close with RST instead of FIN
	Mode   StaleMode     // stale: how the connection behaves

	Target     Target
	AfterBytes int64         // act only once this many more bytes were relayed in the direction, per connection
	After      time.Duration // wait this long after adding before acting; 0: at once
	For        time.Duration // how long the fault lasts once acting; 0: until removed
	Seed       uint64        // for jitter; 0: the proxy's seed

	// FromExchange and EveryExchange, for faults on the bytes of a
	// direction, make the fault act only on some request/response
	// exchanges of each connection: from the FromExchange-th on, and, if
	// EveryExchange is set, only on every EveryExchange-th (the
	// EveryExchange-th, the 2*EveryExchange-th, ...). Each is 0 (no
	// condition) to MaxCount. An exchange is a run of bytes up followed by
	// a run of bytes down; the proxy counts them on a connection from
	// when a fault with either field first applies to it (for a fault
	// added before the connection, from its first byte), numbering the
	// first 1: bytes down before any request (a server's greeting) belong
	// to exchange 0. An up fault acts from the first byte of the
	// exchange's request, a down fault from the first byte of its reply.
	// Counting sees bytes, not messages: pipelined requests, a reply in
	// several runs with requests between (a protocol's own round trips),
	// or a server's push between requests shift the count; see
	// docs/exchanges.md.
	FromExchange  int
	EveryExchange int

	// SizeVariation, for slice (as toxiproxy's slicer), makes each
	// piece's size a draw from [Size-SizeVariation, Size+SizeVariation]
	// (the fault's seeded generator) instead of Size; less than Size.
	SizeVariation int
}

// Latency delays every chunk of bytes read in the fault's direction by
// delay plus a random part of jitter before it is written on, counted from
// when the bytes arrived at the proxy (to within a tenth of the delay, 1 to
// 10 ms), so a stream comes out late by the delay, not by more for each
// chunk held before it. Bytes keep their order; the connection stays open. It needs a delay or a jitter
// (a zero delay with a jitter delays each chunk by a random part of the
// jitter alone); both zero would do nothing and is refused.
func Latency(delay, jitter time.Duration) Fault {
	return Fault{Kind: KindLatency, Delay: delay, Jitter: jitter}
}

// Stall stops bytes in the fault's direction: the proxy reads nothing more
// from the sending side, so its socket buffers fill and the sender's writes
// block, while the connection stays open. When the stall ends (removed, or
// after For), bytes flow again and nothing is lost; with drop, the bytes
// that arrived during the stall are read and discarded instead.
func Stall(drop bool) Fault { return Fault{Kind: KindStall, Drop: drop} }

// Blackhole reads every byte in the fault's direction and discards it; the
// connection stays open and the sender's writes succeed.
func Blackhole() Fault { return Fault{Kind: KindBlackhole} }

// Reset aborts the connection with an RST (SO_LINGER 0, then close) toward
// side: ToClient makes the client see ECONNRESET as if the upstream had
// reset, ToUpstream the reverse, ToBoth both. It acts once on each
// connection it targets, live ones included. A new connection may be reset
// before the client's connect call has returned: Go's net.Dial then fails
// with ECONNRESET rather than the first read.
func Reset(side Side) Fault { return Fault{Kind: KindReset, Side: side} }

// HalfClose sends a FIN in the fault's direction (shutdown(SHUT_WR) on the
// socket that direction writes to) while the other direction keeps
// flowing. Bytes that arrive for the closed direction afterwards are read
// and discarded, also after the fault is removed: a FIN cannot be taken
// back. Dir must be Up or Down.
func HalfClose(dir Direction) Fault { return Fault{Kind: KindHalfClose, Dir: dir} }

// Bandwidth limits the direction to rate bytes per second: the proxy reads
// at most what the rate allows and paces its writes, so the sender's
// writes block once the socket buffers between are full. A direction that
// was idle banks no more than a tenth of a second's worth of its rate, so
// a reply after a pause takes about size/rate like any other.
func Bandwidth(rate int64) Fault { return Fault{Kind: KindBandwidth, Rate: rate} }

// Slice writes what the proxy reads in pieces of at most size bytes, with
// delay between pieces; each piece is its own write(2) (and, with
// TCP_NODELAY, its own segment), so a reader sees short reads.
func Slice(size int, delay time.Duration) Fault {
	return Fault{Kind: KindSlice, Size: size, Delay: delay}
}

// Limit relays n more bytes in the fault's direction on each connection it
// applies to, then closes that connection on both sides with a FIN (as a
// server that hangs up mid-reply), after discarding what waits unread in
// the proxy's sockets; a peer that keeps sending gets an RST, as TCP does.
// Bytes beyond n are not relayed.
func Limit(n int64) Fault { return Fault{Kind: KindLimit, Bytes: n} }

// SlowClose waits delay before relaying a FIN in the fault's direction (in
// dial mode, where FINs are relayed): the peer sees the end of the stream
// late, while the connection otherwise works.
func SlowClose(delay time.Duration) Fault { return Fault{Kind: KindSlowClose, Delay: delay} }

// Corrupt flips one random bit in each byte it picks, picking each byte
// relayed in the fault's direction with probability prob (above 0, at most
// 1), from the fault's seeded generator. Byte counts and order are kept.
func Corrupt(prob float64) Fault { return Fault{Kind: KindCorrupt, Prob: prob} }

// DropOnAccept resets every new connection it targets right after
// accepting it (SO_LINGER 0, close), before any upstream connection: the
// client sees ECONNRESET, from its first read or write, or from connect
// itself when the RST arrives before its connect call returns (Go's
// net.Dial checks SO_ERROR after the handshake, so a quick RST fails the
// Dial). Live connections are not touched.
func DropOnAccept() Fault { return Fault{Kind: KindDropOnAccept} }

// ConnectDelay waits delay before a new connection gets its upstream
// connection (dial or borrow); the client's connect succeeds at once, its
// bytes wait in the proxy. Live connections are not touched.
func ConnectDelay(delay time.Duration) Fault { return Fault{Kind: KindConnectDelay, Delay: delay} }

// Refuse stops the proxy accepting: its listener is closed, so new clients
// get ECONNREFUSED (a connect already queued but not accepted gets an RST);
// live connections go on. When the last refuse fault is removed the proxy
// listens again on the same address. It ignores Target and Dir.
func Refuse() Fault { return Fault{Kind: KindRefuse} }

// IdleClose closes, from the proxy's side, every targeted client
// connection on which no byte has moved either way for idle, as a server's
// idle timeout would: a FIN to the client (an RST with abort), so that a
// client's own pool must notice that its idle connection is gone. In dial
// mode the upstream connection is closed with a FIN; in pool mode it goes
// back to the pool if clean. Idleness is read from the kernel's tcp_info
// (last data sent and received) about every idle/4, at most every 100ms.
func IdleClose(idle time.Duration, abort bool) Fault {
	return Fault{Kind: KindIdleClose, Idle: idle, Abort: abort}
}

// Stale makes pooled upstream connections go stale, as a server's idle
// timeout or a middlebox would (pool mode only):
//
//   - every connection idle in the pool when the fault starts acting goes
//     stale, and the pool's own probe must catch it before handing it out
//     (the proxy records it discarded with reason "stale", the probe's
//     finding in the event's error);
//   - and, only if its Target says so, the sessions the fault picks are
//     handed a connection that goes stale after the probe passed it, so
//     they meet what a client meets with a stale pooled connection; it is
//     then recorded stale (discarded, reason "stale") and never reused.
//
// With a zero Target (or Which IdlePool) it does only the first: new
// sessions work while it is in force, as after a real idle timeout. Any
// Target opts sessions in, Which defaulting to All as for other kinds:
// {Count: 1} or {Which: New, Count: 1} for the next session, {Which: All}
// for every session while the fault is in force (which then acts much
// like refuse).
//
// How each mode is produced: eof shuts the proxy's own socket down both
// ways (shutdown SHUT_RDWR), so the kernel really reports EOF to the probe
// and to reads, writes fail with EPIPE, and the upstream sees a FIN. The
// kernel cannot be made to report a reset on a live local socket, so reset
// is emulated: the probe and the copy loops report ECONNRESET for that
// connection, and the client gets an RST. blackhole is emulated too: both
// directions are read and dropped, nothing comes back; no probe can catch
// that, a client's read deadline must.
func Stale(mode StaleMode) Fault { return Fault{Kind: KindStale, Mode: mode} }

// WithName returns f named name.
func (f Fault) WithName(name string) Fault { f.Name = name; return f }

// WithDir returns f acting in direction d.
func (f Fault) WithDir(d Direction) Fault { f.Dir = d; return f }

// WithTarget returns f applied to the connections t selects.
func (f Fault) WithTarget(t Target) Fault { f.Target = t; return f }

// WithFor returns f lasting d.
func (f Fault) WithFor(d time.Duration) Fault { f.For = d; return f }

// WithAfter returns f that starts acting d after it is added.
func (f Fault) WithAfter(d time.Duration) Fault { f.After = d; return f }

// WithAfterBytes returns f that acts on each connection only once n more
// bytes were relayed in its direction (counted from when it is applied).
func (f Fault) WithAfterBytes(n int64) Fault { f.AfterBytes = n; return f }

// WithExchange returns f acting on each connection from its from-th
// request/response exchange on, and, if every is positive, only on every
// every-th (see Fault.FromExchange).
func (f Fault) WithExchange(from, every int) Fault {
	f.FromExchange, f.EveryExchange = from, every
	return f
}

// WithSeed returns f drawing its random choices from seed.
func (f Fault) WithSeed(seed uint64) Fault { f.Seed = seed; return f }

// Normalized returns f with defaults filled in (Dir Both, Side ToBoth,
// Target.Which All, or IdlePool for a stale fault with a zero Target),
// after checking it: every field is
// one its kind reads, within its bound (MaxDuration and the other Max
// constants), and the kind has what it needs to act (a latency a delay or
// jitter, a corrupt a prob, a slow-close or connect-delay a delay, ...).
// Its errors wrap ErrUnknownKind or ErrBadFault and name the field.
func (f Fault) Normalized() (Fault, error) {
	if !slices.Contains(kinds, f.Kind) {
		return f, fmt.Errorf("%w %q", ErrUnknownKind, f.Kind)
	}
	if f.Dir == "" {
		f.Dir = Both
	}
	if f.Side == "" {
		f.Side = ToBoth
	}
	if f.Target.Which == "" {
		f.Target.Which = All
		if t := f.Target; f.Kind == KindStale && len(t.IDs) == 0 && t.Every == 0 && t.Prob == 0 && t.Count == 0 {
			f.Target.Which = IdlePool // a zero target: no session
		}
	}
	bad := func(format string, a ...any) (Fault, error) {
		return f, fmt.Errorf("%w: %s: %s", ErrBadFault, f.Kind, fmt.Sprintf(format, a...))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"delay", f.Delay}, {"jitter", f.Jitter}, {"idle", f.Idle}, {"after", f.After}, {"for", f.For}} {
		if d.v < 0 {
			return bad("negative %s", d.name)
		}
		if d.v > MaxDuration {
			return bad("%s %v over the maximum %v", d.name, d.v, MaxDuration)
		}
	}
	switch {
	case f.Name != "" && !names.Valid(f.Name):
		return bad("name %q: want %s", f.Name, names.Rule)
	case f.Dir != Up && f.Dir != Down && f.Dir != Both:
		return bad("dir %q (want up, down or both)", f.Dir)
	case f.Side != ToClient && f.Side != ToUpstream && f.Side != ToBoth:
		return bad("side %q (want client, upstream or both)", f.Side)
	case f.AfterBytes < 0:
		return bad("negative after_bytes")
	case f.AfterBytes > MaxBytes:
		return bad("after_bytes %d over the maximum %d", f.AfterBytes, MaxBytes)
	case f.AfterBytes > 0 && (f.Kind.OneShot() || f.Kind.AtConnect() || f.Kind.ProxyLevel()):
		return bad("after_bytes is for faults on the bytes of a direction")
	case f.FromExchange < 0 || f.EveryExchange < 0:
		return bad("from_exchange and every_exchange must not be negative")
	case f.FromExchange > MaxCount || f.EveryExchange > MaxCount:
		return bad("from_exchange and every_exchange must be at most %d", MaxCount)
	case f.ByExchange() && (f.Kind.OneShot() || f.Kind.AtConnect() || f.Kind.ProxyLevel()):
		return bad("from_exchange and every_exchange are for faults on the bytes of a direction")
	case f.Kind != KindLatency && f.Jitter != 0:
		return bad("jitter is for latency")
	case f.Delay != 0 && !slices.Contains([]Kind{KindLatency, KindSlice, KindSlowClose, KindConnectDelay}, f.Kind):
		return bad("delay is for latency, slice, slow-close and connect-delay")
	case f.Kind == KindLatency && f.Delay == 0 && f.Jitter == 0:
		return bad("missing delay: latency needs a delay or a jitter")
	case (f.Kind == KindSlowClose || f.Kind == KindConnectDelay) && f.Delay == 0:
		return bad("missing delay: %s needs a positive delay", f.Kind)
	case f.Kind == KindStale && f.Mode != StaleEOF && f.Mode != StaleReset && f.Mode != StaleBlackhole:
		return bad("mode %q (want eof, reset or blackhole)", f.Mode)
	case f.Kind != KindStale && f.Mode != "":
		return bad("mode is for stale")
	case (f.Kind == KindIdleClose) != (f.Idle > 0):
		return bad("idle is for idle-close, and idle-close needs a positive idle")
	case f.Kind != KindIdleClose && f.Abort:
		return bad("abort is for idle-close")
	case f.Kind != KindCorrupt && f.Prob != 0:
		return bad("prob is for corrupt")
	case !(f.Prob >= 0 && f.Prob <= 1): // NaN too
		return bad("prob %v out of [0, 1]", f.Prob)
	case f.Kind == KindCorrupt && f.Prob == 0:
		return bad("missing prob: corrupt needs a prob above 0")
	case (f.Kind == KindBandwidth) != (f.Rate != 0):
		return bad("rate is for bandwidth, and bandwidth needs a rate")
	case f.Rate < 0:
		return bad("negative rate")
	case f.Rate > MaxRate:
		return bad("rate %d over the maximum %d", f.Rate, int64(MaxRate))
	case (f.Kind == KindSlice) != (f.Size != 0):
		return bad("size is for slice, and slice needs a size")
	case f.Size < 0:
		return bad("negative size")
	case f.Size > MaxSize:
		return bad("size %d over the maximum %d", f.Size, MaxSize)
	case f.Kind != KindLimit && f.Bytes != 0:
		return bad("bytes is for limit")
	case f.Bytes < 0:
		return bad("negative bytes")
	case f.Bytes > MaxBytes:
		return bad("bytes %d over the maximum %d", f.Bytes, int64(MaxBytes))
	case f.Kind != KindStall && f.Drop:
		return bad("drop is for stall")
	case f.Kind == KindHalfClose && f.Dir == Both:
		return bad("dir must be up or down")
	case f.Kind != KindSlice && f.SizeVariation != 0:
		return bad("size_variation is for slice")
	case f.SizeVariation < 0 || (f.SizeVariation > 0 && f.SizeVariation >= f.Size):
		return bad("size_variation %d: want 0 to size-1", f.SizeVariation)
	}
	switch t := f.Target; {
	case t.Every < 0 || t.Count < 0:
		return bad("target every and count must not be negative")
	case t.Every > MaxCount || t.Count > MaxCount:
		return bad("target every and count must be at most %d", MaxCount)
	case !(t.Prob >= 0 && t.Prob <= 1): // NaN too
		return bad("target prob %v out of [0, 1]", t.Prob)
	case t.Every > 0 && t.Prob > 0:
		return bad("target every and prob exclude each other")
	case len(t.IDs) > MaxIDs:
		return bad("target ids: %d of them, over the maximum %d", len(t.IDs), MaxIDs)
	}
	switch f.Target.Which {
	case All, New, Existing:
		if len(f.Target.IDs) > 0 {
			return bad("target ids need which %q", ByID)
		}
	case ByID:
		if len(f.Target.IDs) == 0 {
			return bad("target %q needs ids", ByID)
		}
	case IdlePool:
		switch t := f.Target; {
		case f.Kind != KindStale:
			return bad("target %q is for stale", IdlePool)
		case len(t.IDs) > 0 || t.Every > 0 || t.Prob > 0 || t.Count > 0:
			return bad("target %q picks no session, so it takes no ids, every, prob or count", IdlePool)
		}
	default:
		return bad("target which %q (want all, new, existing, ids, or idle for stale)", f.Target.Which)
	}
	return f, nil
}

// ByExchange reports whether f acts only on some exchanges (FromExchange
// or EveryExchange is set).
func (f Fault) ByExchange() bool { return f.FromExchange > 0 || f.EveryExchange > 0 }

// OnExchange reports whether f acts on exchange k of a connection (see
// FromExchange); always true when f does not count exchanges.
func (f Fault) OnExchange(k int64) bool {
	if !f.ByExchange() {
		return true
	}
	return k >= max(1, int64(f.FromExchange)) && (f.EveryExchange == 0 || k%int64(f.EveryExchange) == 0)
}

// OneShot reports whether the kind acts once on a connection when applied
// (reset) rather than on the bytes that flow while it is in force.
func (k Kind) OneShot() bool { return k == KindReset }

// ProxyLevel reports whether the kind is run by the proxy rather than by
// the copy loops (refuse, idle-close, stale).
func (k Kind) ProxyLevel() bool { return k == KindRefuse || k == KindIdleClose || k == KindStale }

// AtConnect reports whether the kind acts only when a connection starts
// (drop-on-accept, connect-delay).
func (k Kind) AtConnect() bool { return k == KindDropOnAccept || k == KindConnectDelay }
