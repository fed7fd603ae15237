package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// groupRSSKiB sums VmRSS over every process in process group pgid. Each
// relay is started as the leader of its own group, so for a single-process
// relay this is its own VmRSS, and for socat it is the parent plus the
// children it forked per connection (shared pages are counted once per
// process, which overstates socat).
func groupRSSKiB(pgid int) (int64, int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	var total int64
	procs := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pid != pgid {
			g, _, err := procStat(pid)
			if err != nil || g != pgid {
				continue // gone, or not ours
			}
		}
		kib, err := procRSSKiB(pid)
		if err != nil {
			if pid == pgid {
				return 0, 0, err
			}
			continue // a child exited meanwhile
		}
		total += kib
		procs++
	}
	if procs == 0 {
		return 0, 0, fmt.Errorf("process group %d: no process found", pgid)
	}
	return total, procs, nil
}

// groupCount counts the processes of group pgid, zombies or not.
// (Orphaned zombies wait for init to reap them, which can take a while.)
func groupCount(pgid int, zombies bool) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, state, err := procStat(pid); err == nil && g == pgid && (zombies || state != "Z" && state != "X") {
			n++
		}
	}
	return n
}

// procStat reads the process group and state from /proc/PID/stat.
func procStat(pid int) (pgrp int, state string, err error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, "", err
	}
	pgrp, err = strconv.Atoi(f[2])
	return pgrp, f[0], err
}

// procStatFields returns the fields of /proc/PID/stat that follow
// "pid (comm)": f[0] is the state, f[2] the process group, f[11] to f[14]
// utime, stime, cutime and cstime in clock ticks.
func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	// comm may contain spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("pid %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("pid %d: malformed stat", pid)
	}
	return f, nil
}

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 for that interface.
const clockTick = 10 * time.Millisecond

// groupCPU sums the CPU time, user and system, used so far by the
// processes of group pgid, with the children their parents have reaped
// (socat's per-connection processes) through cutime and cstime. A child
// reaped between two reads of one sum is missed or counted twice.
func groupCPU(pgid int) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStatFields(pid)
		if err != nil || f[2] != strconv.Itoa(pgid) {
			continue // gone, or not ours
		}
		for _, v := range f[11:15] {
			t, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("pid %d: stat: %w", pid, err)
			}
			ticks += t
		}
		found = found || pid == pgid
	}
	if !found {
		return 0, fmt.Errorf("process group %d: leader not found", pgid)
	}
	return time.Duration(ticks) * clockTick, nil
}

// procRSSKiB reads VmRSS (in KiB) from /proc/PID/status.
func procRSSKiB(pid int) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		return strconv.ParseInt(v, 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("pid %d: no VmRSS (zombie?)", pid)
}
