package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", err
	}
	// "pid (comm) state ppid pgrp ...": comm may contain spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("pid %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, "", fmt.Errorf("pid %d: malformed stat", pid)
	}
	pgrp, err = strconv.Atoi(f[2])
	return pgrp, f[0], err
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
