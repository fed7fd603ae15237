package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The table in docs/clients.md lives between these markers; the text
// around it is written by hand.
const (
	tableBegin = "<!-- matrix:begin (make matrix writes this table) -->"
	tableEnd   = "<!-- matrix:end -->"
)

// clientsDoc is docs/clients.md, found from this file.
func clientsDoc() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "docs", "clients.md")
}

// formatTable writes the cells as a markdown table, in the matrix's
// order.
func formatTable(cs []cell) string {
	var b strings.Builder
	b.WriteString("| client | mode | fault | client saw | recovered | time to recover | checks |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, c := range cs {
		rec := "-"
		if c.recovered == "yes" {
			rec = round(c.recovery)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s (%s) | %s | %s | %s |\n",
			c.client, c.mode, c.fault, c.saw, round(c.took), c.recovered, rec, c.checks)
	}
	return b.String()
}

func round(d time.Duration) string {
	if d < 10*time.Millisecond {
		return "<10ms"
	}
	return d.Round(10 * time.Millisecond).String()
}

// parseTable reads the verdicts of the table in doc, by cell key.
func parseTable(doc string) map[string]string {
	out := map[string]string{}
	_, rest, ok := strings.Cut(doc, tableBegin)
	if !ok {
		return out
	}
	table, _, _ := strings.Cut(rest, tableEnd)
	for _, line := range strings.Split(table, "\n") {
		f := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), " | ")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if len(f) != 7 || f[0] == "client" {
			continue // not a row, or the header
		}
		saw := f[3]
		if i := strings.LastIndex(saw, " ("); i >= 0 {
			saw = saw[:i] // the time the call took
		}
		out[f[0]+" | "+f[1]+" | "+f[2]] = saw + " | " + f[4] + " | " + f[6]
	}
	return out
}

// compareOrWrite writes the run's table into docs/clients.md when
// FAULTLINE_MATRIX_WRITE=1 (make matrix); otherwise it fails when a cell
// that ran has another verdict than the checked-in table, or is not in it.
func compareOrWrite() {
	cellsMu.Lock()
	cs := slices.Clone(cells)
	cellsMu.Unlock()
	if len(cs) == 0 {
		return
	}
	path := clientsDoc()
	doc, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		Fail(err.Error())
	}
	if os.Getenv("FAULTLINE_MATRIX_WRITE") == "1" {
		before, _, ok := strings.Cut(string(doc), tableBegin)
		after := ""
		if ok {
			_, after, _ = strings.Cut(string(doc), tableEnd)
		} else {
			before = "# Clients under faults\n\n"
		}
		out := before + tableBegin + "\n" + formatTable(cs) + tableEnd + after
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			Fail(err.Error())
		}
		return
	}
	want := parseTable(string(doc))
	var diffs []string
	for _, c := range cs {
		w, ok := want[c.key()]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: not in docs/clients.md; this run: %s", c.key(), c.verdict()))
		case w != c.verdict():
			diffs = append(diffs, fmt.Sprintf("%s:\n\tdocs/clients.md: %s\n\tthis run:        %s", c.key(), w, c.verdict()))
		}
	}
	if len(diffs) > 0 {
		Fail("the client matrix disagrees with docs/clients.md (run make matrix, and review what changed):\n" + strings.Join(diffs, "\n"))
	}
}

var _ = Describe("the client matrix's table", func() {
	It("reads back the verdicts it writes, without the timings", func() {
		cs := []cell{
			{client: "c", mode: "dial", fault: "f", saw: "connection reset", took: time.Second, recovered: "yes", recovery: 2 * time.Second, checks: "ok"},
			{client: "c", mode: "pool", fault: "f (x)", saw: "ok, on a new connection (nothing was idle)", recovered: "no: timeout", checks: "did not give up"},
		}
		got := parseTable("text\n" + tableBegin + "\n" + formatTable(cs) + tableEnd + "\nmore")
		Expect(got).To(HaveLen(2))
		for _, c := range cs {
			Expect(got).To(HaveKeyWithValue(c.key(), c.verdict()))
		}
	})

	It("has a row in docs/clients.md for every cell of the matrix, and no other", func() {
		doc, err := os.ReadFile(clientsDoc())
		Expect(err).NotTo(HaveOccurred())
		var want []string
		for _, mc := range matrixClients() {
			for _, mode := range []string{"dial", "pool"} {
				if mode == "pool" && !mc.pools {
					continue
				}
				for _, mf := range matrixFaults {
					if !mf.poolOnly || mode == "pool" {
						want = append(want, mc.name+" | "+mode+" | "+mf.name)
					}
				}
			}
		}
		rows := parseTable(string(doc))
		Expect(slices.Collect(maps.Keys(rows))).To(ConsistOf(want))
	})
})
