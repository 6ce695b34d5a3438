package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestParseArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		json bool
	}{
		{[]string{"invoice"}, []string{"invoice"}, false},
		{[]string{"invoice", "--json", "2024"}, []string{"invoice", "2024"}, true},
		{[]string{"--", "-from:bob", "invoice"}, []string{"-from:bob", "invoice"}, false},
		{[]string{"--json", "--", "subject:x", "-mailbox:spam"}, []string{"subject:x", "-mailbox:spam"}, true},
		{[]string{"subject:x", "--", "-a", "-b"}, []string{"subject:x", "-a", "-b"}, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		j := fs.Bool("json", false, "")
		got, err := parse(fs, tc.args)
		if err != nil || !slices.Equal(got, tc.want) || *j != tc.json {
			t.Errorf("parse(%q) = %q, json %v, %v; want %q, json %v", tc.args, got, *j, err, tc.want, tc.json)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMainHelp: help that was asked for goes to stdout with exit 0, for
// mailvault itself and for every command; a wrong command line gets the
// usage on stderr with exit 2.
func TestMainHelp(t *testing.T) {
	ctx := context.Background()
	call := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(ctx, &env{stdout: &out, stderr: &errs}, args)
		return code, out.String(), errs.String()
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errs := call(args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errs != "" {
			t.Errorf("mailvault %q: exit %d, stdout %q, stderr %q; want the usage on stdout, exit 0", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{}, {"no-such-command"}} {
		code, out, errs := call(args...)
		if code != 2 || !strings.Contains(errs, "Usage:") || out != "" {
			t.Errorf("mailvault %q: exit %d, stdout %q, stderr %q; want the usage on stderr, exit 2", args, code, out, errs)
		}
	}
	if len(commands) == 0 {
		t.Fatal("no commands")
	}
	for _, c := range commands {
		want := "Usage: mailvault " + c.name
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			code, out, errs := call(args...)
			if code != 0 || !strings.HasPrefix(out, want) || errs != "" {
				t.Errorf("mailvault %q: exit %d, stdout %q, stderr %q; want %q... on stdout, exit 0", args, code, out, errs, want)
			}
		}
		code, out, errs := call(c.name, "--no-such-flag")
		if code != 2 || !strings.Contains(errs, want) || out != "" {
			t.Errorf("mailvault %s --no-such-flag: exit %d, stdout %q, stderr %q; want the usage on stderr, exit 2", c.name, code, out, errs)
		}
	}
	// A "--help" after "--" is a positional argument, not a request for help.
	if helpAsked([]string{"--", "--help"}) || !helpAsked([]string{"invoice", "--help"}) || !helpAsked([]string{"-help=true"}) {
		t.Error("helpAsked")
	}
	// The search help describes attachment: and filename: as the query parser does.
	_, out, _ := call("search", "--help")
	for _, s := range []string{"attachment:WORD", "extracted text", "filename:WORD", "k, M and G"} {
		if !strings.Contains(out, s) {
			t.Errorf("search --help lacks %q:\n%s", s, out)
		}
	}
}
