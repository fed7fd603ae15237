// Package faults describes the faults a faultline proxy can inject. A fault
// is a value: what it does (Kind and the parameters that kind reads), which
// way (Dir), which connections (Target) and for how long (For). Build one
// with a constructor and the With methods and hand it to a proxy:
//
//	f, err := p.AddFault(faults.Latency(150*time.Millisecond, 20*time.Millisecond).WithDir(faults.Down))
//	...
//	err = p.RemoveFault(f.Name)
//
// Faults are added and removed while traffic flows; they act on live
// connections as well as new ones (see Target). Several faults on one
// direction compose in a fixed order: a half-close wins over everything
// (the direction is closed), then a stall (nothing moves), then a blackhole
// (bytes are dropped); otherwise bytes are read (no more than the lowest
// bandwidth and the smallest remaining limit allow), held for the sum of
// the latency faults' delays, written in slices of the smallest slice size,
// and paced to the lowest bandwidth; a limit closes the connection once it
// is used up.
//
// Replay: a latency fault's jitter is drawn from a PCG generator seeded
// with the fault's Seed (or the proxy's), one draw per chunk, so the same
// seed and the same chunks in the same order give the same delays. Chunk
// boundaries depend on how the kernel delivers bytes, so the delays of a
// run are replayable only as far as its reads are.
//
// Not yet here (see the project's issues): slow-close, corrupt, connection-level and pool-level faults, every-Nth and
// probability targeting, and start after N bytes or a delay.
package faults
