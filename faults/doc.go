// Package faults describes the faults a faultline proxy can inject. A fault
// is a value: what it does (Kind and the parameters that kind reads), which
// way (Dir), which connections (Target), from when (After, AfterBytes) and
// for how long (For). Build one with a constructor and the With methods and
// hand it to a proxy:
//
//	f, err := p.AddFault(faults.Latency(150*time.Millisecond, 20*time.Millisecond).WithDir(faults.Down))
//	...
//	err = p.RemoveFault(f.Name)
//
// Faults are added and removed while traffic flows; they act on live
// connections as well as new ones (see Target, which also narrows them to
// every Nth connection, a seeded probability or a count).
//
// # Kinds
//
// Most kinds act on the bytes of a direction: latency, bandwidth, slice,
// stall, blackhole, limit, half-close, slow-close and corrupt. Several of
// them on one direction compose in a fixed order: a half-close wins over
// everything (the direction is closed), then a stall (nothing moves), then
// a blackhole (bytes are dropped); otherwise bytes are read (no more than
// the lowest bandwidth and the smallest remaining limit allow), held for
// the sum of the latency faults' delays, bits flipped by the first corrupt
// fault, written in slices of the smallest slice size, and paced to the
// lowest bandwidth; a limit closes the connection once it is used up, and
// a slow-close holds the FIN relayed at the end of the direction.
//
// The others act on connections: reset resets the connections it targets
// (toward the client, the upstream or both), once; drop-on-accept and connect-delay act when a connection
// starts; refuse closes the listener; idle-close closes connections left
// idle; stale (pool mode) makes pooled upstream connections go stale.
// AfterBytes, FromExchange and EveryExchange apply only to the byte kinds.
// FromExchange and EveryExchange make a fault act only on some
// request/response exchanges of each connection ("the 3rd query"):
//
//	faults.Stall(false).WithDir(faults.Down).WithExchange(3, 0) // hold the 3rd reply on
//
// # Bounds
//
// Normalized (which a proxy's AddFault and the control API call) refuses,
// with ErrBadFault naming the field, a fault that is out of bounds or
// could not act:
//
//   - durations (delay, jitter, idle, after, for): 0 to MaxDuration (24h);
//   - bandwidth rate: 1 to MaxRate (1 TiB/s);
//   - slice size: 1 to MaxSize (1 MiB);
//   - limit bytes and after_bytes: 0 to MaxBytes (1 PiB);
//   - target every and count, from_exchange and every_exchange: 0 to
//     MaxCount (10⁹); target ids: 1 to
//     MaxIDs (1000) of them; probabilities: 0 to 1;
//   - latency needs a delay or a jitter (jitter alone delays each chunk by
//     a random part of it), corrupt a prob above 0, slow-close and
//     connect-delay a delay, bandwidth a rate, slice a size, idle-close an
//     idle, stale a mode.
//
// A proxy holds at most 1000 faults (proxy.MaxFaults).
//
// Stale acts on the pool's idle connections only unless its Target opts
// sessions in (see Stale): with a zero Target its Which is IdlePool.
//
// # JSON
//
// Fault JSON is strict: an unknown key, a key in the wrong case
// ("KIND"), a key given twice, a value of the wrong type and a duration
// that is not a Go duration string are all refused with ErrBadFault.
//
// Replay: a latency fault's jitter and a corrupt fault's flips are drawn
// from a PCG generator seeded with the fault's Seed (or the proxy's), so
// the same seed and the same chunks in the same order give the same delays
// and flips. Chunk boundaries depend on how the kernel delivers bytes, so a run
// is replayable only as far as its reads are.
package faults
