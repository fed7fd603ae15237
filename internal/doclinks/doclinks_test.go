// Package doclinks holds a test of the project's Markdown: every relative
// link in README.md and docs/*.md names a file that exists, and every
// #anchor a heading of the page it points to.
package doclinks

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	fenceRE = regexp.MustCompile("(?s)```.*?```")
	linkRE  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	slugRE  = regexp.MustCompile("[`*_~\\[\\]()<>!?.,:;\"'/\\\\{}=+&^%$#@|]")
)

// slug is the anchor GitHub gives a heading.
func slug(h string) string {
	return strings.ReplaceAll(slugRE.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
}

// anchors returns the anchors of the headings of the Markdown file path.
func anchors(t *testing.T, path string) map[string]bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(fenceRE.ReplaceAllString(string(b), ""), "\n") {
		if strings.HasPrefix(line, "#") {
			out[slug(strings.TrimLeft(line, "#"))] = true
		}
	}
	return out
}

func TestDocLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(string(b), ""), -1) {
			url := m[1]
			if regexp.MustCompile(`^[a-z]+:`).MatchString(url) {
				continue // http:, https:, mailto:
			}
			checked++
			path, frag, _ := strings.Cut(url, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), path)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: link %s: %v", f, url, err)
				continue
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !anchors(t, target)[frag] {
				t.Errorf("%s: link %s: %s has no heading #%s", f, url, target, frag)
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked %d relative links; the docs have more: is the pattern wrong?", checked)
	}
}
