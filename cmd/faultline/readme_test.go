package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeConfigLoads loads the config file the README shows under
// "Config file", so that the sample a newcomer copies is one the binary
// takes: every proxy and fault in it.
func TestReadmeConfigLoads(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "\n## Config file")
	if i < 0 {
		t.Fatal(`README has no "## Config file" section`)
	}
	rest := readme[i:]
	start := strings.Index(rest, "```yaml\n")
	if start < 0 {
		t.Fatal(`README's "Config file" section has no yaml block`)
	}
	rest = rest[start+len("```yaml\n"):]
	end := strings.Index(rest, "```")
	if end < 0 {
		t.Fatal("README's yaml block does not end")
	}
	path := filepath.Join(t.TempDir(), "readme.yaml")
	if err := os.WriteFile(path, []byte(rest[:end]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatalf("the README's config does not load: %v", err)
	}
	faults := 0
	for _, p := range cfg.Proxies {
		faults += len(p.spec.Faults)
	}
	if len(cfg.Proxies) != 2 || faults != 2 {
		t.Errorf("the README's config has %d proxies and %d faults; its text shows 2 and 2", len(cfg.Proxies), faults)
	}
}
