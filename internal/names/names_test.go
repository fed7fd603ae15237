package names

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, s := range []string{"a", "redis-1", "latency-12", "a.b_c-D9", "...", ".a", strings.Repeat("x", 64)} {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", ".", "..", "a/b", "a b", "a%2F", "é", "a\nb", "a?b", strings.Repeat("x", 65)} {
		if Valid(s) {
			t.Errorf("Valid(%q) = true, want false", s)
		}
	}
}
