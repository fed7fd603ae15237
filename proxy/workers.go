package proxy

import "sync"

// maxIdleWorkers bounds the goroutines kept parked for later sessions: at
// most a few KiB of stack each.
const maxIdleWorkers = 64

// workers runs a pool-mode proxy's session goroutines (run, copyUp,
// copyDown). A goroutine whose job has returned parks, and the next job
// runs on it instead of on a new goroutine, so it reuses a stack an earlier
// session already grew. A new goroutine starts with 2 KiB of stack, and a
// pooled session needs more (the event log's subscriber, the splice call
// chain), so on fresh goroutines every pooled connection had its stacks
// copied to bigger ones, twice: about 4% of sequential pool churn, the same
// as measured with a runtime that starts goroutines at 4 KiB. At most
// maxIdle goroutines stay parked; the others exit when their job returns.
//
// Dial mode starts new goroutines: a dial grows its goroutine's stack well
// past what a copy loop needs, and a copy loop that idles for hours should
// hold 2 KiB, not a stack some earlier session grew (the relay benchmark's
// memory per idle connection went from 9.9 to 14 KiB with workers there).
type workers struct {
	maxIdle int

	mu     sync.Mutex      // guards idle and closed
	idle   []chan<- func() // parked goroutines' inboxes, most recently parked last
	closed bool
	wg     sync.WaitGroup // every goroutine started
}

// do runs job on a parked goroutine, or on a new one if none is parked.
// It must not be called after close.
func (w *workers) do(job func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		inbox := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		inbox <- job // buffered: never blocks
		return
	}
	w.mu.Unlock()
	w.wg.Add(1)
	go w.work(job)
}

// work runs job, then each job handed to it while parked, until it is not
// kept (too many parked, or closing) or close wakes it with no job.
func (w *workers) work(job func()) {
	defer w.wg.Done()
	var inbox chan func()
	for job != nil {
		job()
		job = nil // not kept alive while parked
		if inbox == nil {
			inbox = make(chan func(), 1)
		}
		w.mu.Lock()
		if w.closed || len(w.idle) >= w.maxIdle {
			w.mu.Unlock()
			return
		}
		w.idle = append(w.idle, inbox)
		w.mu.Unlock()
		job = <-inbox // nil once close closes it
	}
}

// close stops the parked goroutines and waits until every goroutine it
// started has returned. Jobs still running are waited for too: the caller
// ends them first.
func (w *workers) close() {
	w.mu.Lock()
	w.closed = true
	idle := w.idle
	w.idle = nil
	w.mu.Unlock()
	for _, inbox := range idle {
		close(inbox)
	}
	w.wg.Wait()
}
