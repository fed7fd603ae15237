package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigKeysAreStrict: a config file's keys are case-sensitive, as
// the API's are, and YAML refuses a key given twice.
func TestConfigKeysAreStrict(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"proxy key in upper case", "proxies:\n  - {NAME: a, upstream: x:1}\n", `"NAME"`},
		{"pool key in the wrong case", "proxies:\n  - {name: a, upstream: x:1, mode: pool, pool: {Size: 2}}\n", `"Size"`},
		{"fault key in upper case", "proxies:\n  - {name: a, upstream: x:1, faults: [{KIND: latency, delay: 1ms}]}\n", `"KIND"`},
		{"key given twice", "proxies:\n  - {name: a, name: b, upstream: x:1}\n", `"name" already defined`},
		{"fault that cannot act", "proxies:\n  - {name: a, upstream: x:1, faults: [{kind: latency}]}\n", "missing delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.yaml")
			if err := os.WriteFile(path, []byte(tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(path)
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadConfig(%q) = %v, want ErrBadConfig mentioning %s", tt.in, err, tt.want)
			}
		})
	}
}
