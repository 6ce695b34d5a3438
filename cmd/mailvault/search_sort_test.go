package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSearchSortAndOperators: `mailvault search --sort` takes every order
// (newest is the default, date its old name), pages past --limit in that
// order, names the orders on a bad one, and the new operators reach the
// archive from the command line.
func TestSearchSortAndOperators(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mbox := filepath.Join(t.TempDir(), "in.mbox")
	var b strings.Builder
	for i, m := range []struct {
		from string
		day  int
		pad  int
	}{{"carol@example.org", 10, 300}, {"alice@example.org", 12, 100}, {"bob@example.org", 11, 500}, {"dave@example.org", 13, 0}} {
		fmt.Fprintf(&b, "From %s Mon Mar  4 10:00:00 2024\nFrom: %s\nSubject: s%d\nDate: Sun, %d Mar 2024 10:00:00 +0000\n"+
			"List-Id: Budget Talk <budget-talk.lists.example.org>\n\nbudget %s\n\n", m.from, m.from, i+1, m.day, strings.Repeat("x", m.pad))
	}
	if err := os.WriteFile(mbox, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	mv := func(args ...string) cliResult {
		t.Helper()
		return inProcess(t, append([]string{args[0], "--data", data}, args[1:]...)...)
	}
	if r := mv("import", "--account", "a", "--mailbox", "INBOX", mbox); r.code != 0 {
		t.Fatalf("import: %d %s", r.code, r.stderr)
	}
	subjects := func(args ...string) string {
		t.Helper()
		r := mv(append([]string{"search", "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("search %v: %d %s", args, r.code, r.stderr)
		}
		var out []string
		for _, line := range nonEmptyLines(r.stdout) {
			var h hitJSON
			if err := json.Unmarshal([]byte(line), &h); err != nil {
				t.Fatal(err)
			}
			out = append(out, h.Subject)
		}
		return strings.Join(out, " ")
	}
	for _, tt := range []struct{ sort, want string }{
		{"", "s4 s2 s3 s1"},
		{"date", "s4 s2 s3 s1"},
		{"oldest", "s1 s3 s2 s4"},
		{"largest", "s3 s1 s2 s4"},
		{"smallest", "s4 s2 s1 s3"},
		{"sender", "s2 s3 s1 s4"},
	} {
		args := []string{"budget"}
		if tt.sort != "" {
			args = []string{"--sort", tt.sort, "budget"}
		}
		if got := subjects(args...); got != tt.want {
			t.Errorf("--sort %q: [%s], want [%s]", tt.sort, got, tt.want)
		}
	}
	if got := subjects("--imap", "--sort", "largest", "BODY budget"); got != "s3 s1 s2 s4" {
		t.Errorf("--imap --sort largest: [%s]", got)
	}
	if got := subjects("--imap", "BODY budget"); got != "s1 s2 s3 s4" {
		t.Errorf("--imap: [%s], want UID order", got)
	}
	if got := subjects("list:budget-talk.lists.example.org", "in:INBOX", "is:unread", "older_than:1d"); got != "s4 s2 s3 s1" {
		t.Errorf("operators: [%s]", got)
	}
	if got := subjects("is:read"); got != "" {
		t.Errorf("is:read of imported mail without flags: [%s]", got)
	}
	r := mv("search", "--sort", "size", "budget")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown sort "size" (known: newest, oldest, largest, smallest, sender, relevance)`) {
		t.Errorf("--sort size: %d %q", r.code, r.stderr)
	}
	r = mv("search", "is:new")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown is: value "new" (known: read, unread, flagged, unflagged, answered, unanswered)`) {
		t.Errorf("is:new: %d %q", r.code, r.stderr)
	}
}
