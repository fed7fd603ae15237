package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// maxDetails is how many examples of each violation kind are kept.
const maxDetails = 5

// violations collects what must never happen, by kind, with the first
// examples of each. It is safe for concurrent use.
type violations struct {
	mu      sync.Mutex // guards the fields below
	byKind  map[string]int
	details map[string][]string
}

func newViolations() *violations {
	return &violations{byKind: map[string]int{}, details: map[string][]string{}}
}

func (v *violations) add(kind, detail string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.byKind[kind]++
	if len(v.details[kind]) < maxDetails {
		v.details[kind] = append(v.details[kind], detail)
	}
}

func (v *violations) has(kind string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byKind[kind] > 0
}

func (v *violations) total() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, c := range v.byKind {
		n += c
	}
	return n
}

// counts is a multiset of names, such as error kinds.
type counts map[string]int64

func (c counts) merge(o counts) {
	for k, v := range o {
		c[k] += v
	}
}

// String lists the counts by name: "eof 3, reset 12".
func (c counts) String() string {
	if len(c) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

// errKind names an error a client met, for the tally: what a fault may
// cause (reset, eof, timeout, ...), never a violation.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EPIPE):
		return "broken-pipe"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}
