package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinHarness confines every thread of this process to one CPU (and
// GOMAXPROCS to 1), so that a relay started meanwhile inherits the same
// single CPU. The returned func restores the previous affinity and the
// default GOMAXPROCS.
//
// Why: on a small VM a wake-up across CPUs costs tens of µs, and whether
// the relay lands on the harness's CPU or the other one changes from second
// to second; unpinned, a 64-byte round trip through any relay flips between
// about 40 and 130 µs, which drowns a 10% comparison.
func pinHarness(cpu int) (restore func() error, err error) {
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	if !old.IsSet(cpu) {
		return nil, fmt.Errorf("CPU %d is not in this process's affinity mask", cpu)
	}
	var one unix.CPUSet
	one.Set(cpu)
	runtime.GOMAXPROCS(1)
	if err := setAllThreads(&one); err != nil {
		setAllThreads(&old)
		runtime.SetDefaultGOMAXPROCS()
		return nil, err
	}
	return func() error {
		err := setAllThreads(&old)
		runtime.SetDefaultGOMAXPROCS()
		return err
	}, nil
}

// setAllThreads sets the affinity of every thread of this process. A thread
// created meanwhile by a thread not yet changed inherits the old mask, so it
// repeats until a pass changes nothing.
func setAllThreads(set *unix.CPUSet) error {
	for range 20 {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err != nil {
				continue // thread exited
			}
			if cur == *set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity(%d): %w", tid, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return errors.New("threads kept appearing while setting CPU affinity")
}
