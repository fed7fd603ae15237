package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/faultline-proxy/faultline/internal/report"
	"github.com/faultline-proxy/faultline/testkit"
)

// runReport is "faultline report [-o FILE] [--title T] [FILE]": an event
// log (FILE, else stdin) in, one self-contained HTML page out.
func runReport(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var out, title string
	fs := newFlagSet("report")
	fs.StringVar(&out, "o", "", "write the page to this file instead of stdout")
	fs.StringVar(&title, "title", "", "the page's title (default: the log's file name)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageError(fs, stdout, stderr, err)
	}
	if len(pos) > 1 {
		return usageError(fs, stdout, stderr, errors.New("report: want at most one FILE"))
	}
	in, name := stdin, "stdin"
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return failure(stderr, err)
		}
		defer f.Close()
		in, name = f, filepath.Base(pos[0])
	}
	if title == "" {
		title = name
	}
	events, err := report.Read(in)
	if err != nil {
		return failure(stderr, fmt.Errorf("%s: %w", name, err))
	}
	w := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return failure(stderr, err)
		}
		defer f.Close()
		w = f
	}
	if err := testkit.WriteReport(w, title, events); err != nil {
		return failure(stderr, err)
	}
	if f, ok := w.(*os.File); ok && out != "" {
		if err := f.Close(); err != nil {
			return failure(stderr, err)
		}
		fmt.Fprintf(stderr, "wrote %s: %d events\n", out, len(events))
	}
	return exitOK
}
