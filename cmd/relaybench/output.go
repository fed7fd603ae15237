package main

import (
	"bytes"
	"strings"
	"sync"
)

// listenPrefix starts the line faultline and the bare relay print on stdout
// once they listen: "proxy listening on HOST:PORT -> UPSTREAM".
const listenPrefix = "proxy listening on "

const tailMax = 2048

// outputWatcher is a relay's stdout or stderr. It keeps the last bytes for
// error messages and, if asked, sends the address of the first listening
// line on addr.
type outputWatcher struct {
	addr chan string // capacity 1; nil if not watching for the line

	mu      sync.Mutex // guards the fields below
	partial []byte
	tail    []byte
	found   bool
}

func newOutputWatcher(watchListen bool) *outputWatcher {
	w := &outputWatcher{}
	if watchListen {
		w.addr = make(chan string, 1)
	}
	return w
}

func (w *outputWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tail = append(w.tail, p...)
	if len(w.tail) > tailMax {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-tailMax:]...)
	}
	if w.addr == nil || w.found {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
		if addr, ok := parseListenLine(line); ok {
			w.found = true
			w.partial = nil
			w.addr <- addr
			break
		}
	}
	if len(w.partial) > tailMax {
		w.partial = w.partial[len(w.partial)-tailMax:]
	}
	return len(p), nil
}

func (w *outputWatcher) tailString() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(string(w.tail))
}

// parseListenLine returns HOST:PORT from
// "proxy listening on HOST:PORT -> UPSTREAM" or
// "proxy NAME listening on HOST:PORT -> UPSTREAM".
func parseListenLine(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, listenPrefix)
	if !ok {
		name, after, found := strings.Cut(strings.TrimPrefix(line, "proxy "), " listening on ")
		if !strings.HasPrefix(line, "proxy ") || !found || name == "" || strings.Contains(name, " ") {
			return "", false
		}
		rest = after
	}
	addr, _, ok := strings.Cut(rest, " -> ")
	addr = strings.TrimSpace(addr)
	if !ok || addr == "" {
		return "", false
	}
	return addr, true
}
