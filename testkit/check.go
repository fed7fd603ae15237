package testkit

import (
	"fmt"
	"strings"

	"github.com/faultline-proxy/faultline/proxy"
)

// maxQuoted is how many violations a check's error spells out; the rest are
// counted.
const maxQuoted = 10

// violations collects what a check found, each with the events that show
// it, and turns them into one error wrapping the check's sentinel.
type violations struct {
	sentinel error
	list     []string
}

// add records one violation: what went wrong and the events that show it.
func (v *violations) add(what string, events ...proxy.Event) {
	var b strings.Builder
	b.WriteString(what)
	for _, e := range events {
		b.WriteString("\n      ")
		b.WriteString(FormatEvent(e))
	}
	v.list = append(v.list, b.String())
}

// err returns nil if nothing was found, else an error wrapping the sentinel
// that quotes every violation (up to maxQuoted).
func (v *violations) err() error {
	if len(v.list) == 0 {
		return nil
	}
	var b strings.Builder
	for i, s := range v.list {
		if i == maxQuoted {
			fmt.Fprintf(&b, "\n  ... and %d more", len(v.list)-maxQuoted)
			break
		}
		b.WriteString("\n  - ")
		b.WriteString(s)
	}
	return fmt.Errorf("%w: %d found:%s", v.sentinel, len(v.list), b.String())
}
