package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig feeds arbitrary files to the config loader. It must not
// panic, and every refusal wraps ErrBadConfig and names the file.
//
// make test runs the seeds; search for more with
//
//	go test -run '^$' -fuzz FuzzLoadConfig -fuzztime 5m ./cmd/faultline/
func FuzzLoadConfig(f *testing.F) {
	if b, err := os.ReadFile("testdata/faultline.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"proxies: [\n",
		"- a\n",
		"proxies:\n  - {name: a, upstream: x:1, faults: [{kind: latency, delay: 150}]}\n",
		"proxies:\n  - name: a\n    upstream: x:1\n    faults:\n      - kind: corrupt\n        prob: .nan\n",
		"proxies:\n  - name: a\n    upstream: x:1\n    faults: {kind: stall}\n",
		"proxies:\n  - &a {name: a, upstream: x:1}\n  - *a\n",
		"proxies:\n  - {name: a, upstream: x:1, pool: {size: -1}}\n",
		"proxies:\n  - {name: a, upstream: x:1, faults: [{kind: latency, name: ..}]}\n",
		"proxies:\n  - {name: a, upstream: x:1, faults: [{? [1, 2] : x}]}\n",
		"control: [1]\ntoken: {a: b}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		path := filepath.Join(t.TempDir(), "f.yaml")
		if err := os.WriteFile(path, in, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		switch {
		case err == nil && cfg == nil:
			t.Fatalf("loadConfig(%q): no config and no error", in)
		case err != nil && !errors.Is(err, ErrBadConfig):
			t.Fatalf("loadConfig(%q) = %v: does not wrap ErrBadConfig", in, err)
		case err != nil && !strings.HasPrefix(err.Error(), path):
			t.Fatalf("loadConfig(%q) = %v: does not name the file", in, err)
		}
	})
}
