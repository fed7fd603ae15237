package testkit_test

import (
	"fmt"
	"testing"
)

// exampleT is the part of testing.TB that the examples use, so that they can
// run as examples; in a test, pass the test's t instead.
type exampleT struct {
	testing.TB // nil: the examples call only the methods below
	cleanups   []func()
}

func (e *exampleT) Helper()                           {}
func (e *exampleT) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }
func (e *exampleT) Logf(format string, args ...any)   { fmt.Printf(format+"\n", args...) }
func (e *exampleT) Errorf(format string, args ...any) { fmt.Printf("error: "+format+"\n", args...) }
func (e *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleT) Failed() bool                      { return false }

// done runs the cleanups, last first, as the testing package does.
func (e *exampleT) done() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}
