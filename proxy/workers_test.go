package proxy

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// goroutineID is the ID runtime.Stack prints for the calling goroutine.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		return ""
	}
	return string(f[1])
}

// waitParked waits until w has n goroutines parked.
func waitParked(t *testing.T, w *workers, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		w.mu.Lock()
		got := len(w.idle)
		w.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers parked after %s, want %d", got, waitTimeout, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkersReuse checks that a job runs on the goroutine an earlier job
// left parked, and that close ends it.
func TestWorkersReuse(t *testing.T) {
	w := &workers{maxIdle: 4}
	ids := make(chan string, 2)
	w.do(func() { ids <- goroutineID() })
	first := <-ids
	waitParked(t, w, 1)
	w.do(func() { ids <- goroutineID() })
	if second := <-ids; second != first {
		t.Errorf("second job ran on goroutine %s, want %s, where the first ran and parked", second, first)
	}
	waitParked(t, w, 1)
	closeWorkers(t, w)
}

// TestWorkersMaxIdle runs more jobs at once than maxIdle and checks that
// only maxIdle goroutines stay parked when they end.
func TestWorkersMaxIdle(t *testing.T) {
	w := &workers{maxIdle: 2}
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 5 {
		started.Add(1)
		w.do(func() {
			started.Done()
			<-release
		})
	}
	started.Wait() // all five run at once: five goroutines
	close(release)
	waitParked(t, w, 2)
	closeWorkers(t, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.idle) != 0 {
		t.Errorf("%d workers still listed as parked after close", len(w.idle))
	}
}

// closeWorkers closes w and fails if close does not return (every goroutine
// w started has exited) within waitTimeout.
func closeWorkers(t *testing.T, w *workers) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		w.close()
		close(done)
	}()
	waitClosed(t, "workers.close", done)
}
