package proxy

import (
	"cmp"
	"slices"
)

// pickLive makes af's picks among the live connections now, in ID order,
// as a fault on bytes does when put in force: two faults with the same
// Target and seed added together pick the same connections (toxiproxy's
// timeout toxic is a blackhole and an idle-close). Called with the fault
// mutex held.
func (p *Proxy) pickLive(af *activeFault) {
	live := p.liveSessions()
	slices.SortFunc(live, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	for _, s := range live {
		s.targetedBy(af)
	}
}
