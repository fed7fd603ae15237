package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportCommand(t *testing.T) {
	log := filepath.Join("testdata", "invalid-reuse.events.jsonl")
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.html")
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string // a substring; "" for none
		wantStderr string
		wantFile   string
	}{
		{"stdin to stdout", nil, string(data), exitOK, `"check":"CheckNoInvalidReuse"`, "", ""},
		{"file to stdout", []string{log}, "", exitOK, "invalid-reuse.events.jsonl", "", ""},
		{"file to -o", []string{"-o", out, "--title", "T1", log}, "", exitOK, "", "wrote " + out + ": 8 events", out},
		{"not a log", nil, "hello", exitError, "", "not a faultline event log", ""},
		{"missing file", []string{"no-such-file"}, "", exitError, "", "no-such-file", ""},
		{"two files", []string{log, log}, "", exitUsage, "", "at most one FILE", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := runReport(context.Background(), tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr.String())
			}
			if tt.wantStdout != "" && !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout lacks %q", tt.wantStdout)
			}
			if tt.wantStdout == "" && stdout.Len() != 0 {
				t.Errorf("stdout holds %d bytes, want none", stdout.Len())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantFile != "" {
				b, err := os.ReadFile(tt.wantFile)
				if err != nil || !strings.Contains(string(b), "CheckNoInvalidReuse") || !strings.Contains(string(b), "T1") {
					t.Errorf("%s: %v; want a report titled T1 with the violation", tt.wantFile, err)
				}
			}
		})
	}
}
