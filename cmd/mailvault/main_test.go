package main

import (
	"bytes"
	"flag"
	"io"
	"slices"
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
