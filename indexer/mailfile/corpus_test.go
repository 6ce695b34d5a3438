package mailfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorpus reads the SpamAssassin corpus laid out by scripts/fetch-corpus.sh
// both as a Maildir++ tree and as mbox files, and checks that both give the
// same messages. It is skipped unless MAILVAULT_CORPUS names a finished
// corpus (scripts/test.sh sets it up).
func TestCorpus(t *testing.T) {
	dir := os.Getenv("MAILVAULT_CORPUS")
	if dir == "" {
		t.Skip("MAILVAULT_CORPUS not set (scripts/fetch-corpus.sh makes the corpus)")
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		t.Skipf("no finished corpus in %s: run scripts/fetch-corpus.sh", dir)
	}
	boxes, err := Discover(filepath.Join(dir, "maildir"), "")
	if err != nil {
		t.Fatal(err)
	}
	groups := []string{"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}
	if len(boxes) != len(groups)+1 || boxes[0].Name != "INBOX" {
		t.Fatalf("Discover(maildir) = %v, want INBOX and %v", boxes, groups)
	}
	total := 0
	for i, g := range groups {
		md := boxes[i+1]
		if md.Name != g {
			t.Fatalf("mailbox %d = %q, want %q", i+1, md.Name, g)
		}
		mboxes, err := Discover(filepath.Join(dir, "mbox", g+".mbox"), "")
		if err != nil || len(mboxes) != 1 || mboxes[0].Name != g {
			t.Fatalf("Discover(%s.mbox) = %v, %v", g, mboxes, err)
		}
		fromMaildir, errs := walkAll(t, md)
		if len(errs) != 0 {
			t.Errorf("%s maildir: onErr %v", g, errs)
		}
		fromMbox, errs := walkAll(t, mboxes[0])
		if len(errs) != 0 {
			t.Errorf("%s mbox: onErr %v", g, errs)
		}
		if len(fromMaildir) != len(fromMbox) {
			t.Fatalf("%s: %d messages in the Maildir, %d in the mbox", g, len(fromMaildir), len(fromMbox))
		}
		for _, m := range []Mailbox{md, mboxes[0]} {
			if n, err := Count(m); err != nil || n != len(fromMaildir) {
				t.Errorf("Count(%s %v) = %d, %v; want %d", g, m.Kind, n, err, len(fromMaildir))
			}
		}
		for j, a := range fromMaildir {
			b := fromMbox[j]
			want := a.Raw
			if !bytes.HasSuffix(want, []byte("\n")) {
				want = append(bytes.Clone(want), '\n') // mbox cannot keep a missing final newline
			}
			if !bytes.Equal(want, b.Raw) {
				t.Errorf("%s: %s and %s differ", g, a.Source, b.Source)
			}
			if !a.InternalDate.Equal(b.InternalDate) || a.InternalDate.Year() < 1990 {
				t.Errorf("%s: %s mtime %v, %s From_ date %v", g, a.Source, a.InternalDate, b.Source, b.InternalDate)
			}
			if a.Note != "" || strings.Contains(b.Note, "newline") || strings.Contains(b.Note, "before the first") {
				t.Errorf("%s: notes %q (%s), %q (%s)", g, a.Note, a.Source, b.Note, b.Source)
			}
		}
		total += len(fromMaildir)
	}
	if total != 6046 {
		t.Errorf("corpus has %d messages, want 6046", total)
	}
}
