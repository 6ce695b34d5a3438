// Package corpustest is a test kit for the SpamAssassin corpus: where it is
// (scripts/fetch-corpus.sh lays it out under $MAILVAULT_CORPUS, by default
// $HOME/.cache/mailvault/corpus) and what is in it, counted here from the
// files and never from mailvault, so that tests can hold mailvault's answers
// against it: the folders of its Maildir++ tree, the files of each, the
// sha256 of every file, and single messages by the name of their file.
//
// Maildir fails the test when the corpus is missing under CI=true (a missing
// corpus must not pass silently) and skips it otherwise.
//
// It is imported by tests only: the end-to-end tests of cmd/mailvault, the
// harvester's Dovecot suites (harvest) and the IMAP SEARCH conformance suite
// (indexer).
package corpustest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Maildir returns the Maildir++ tree of the SpamAssassin corpus as laid out
// by scripts/fetch-corpus.sh: $MAILVAULT_CORPUS/maildir, by default
// $HOME/.cache/mailvault/corpus/maildir. When it is missing the test is
// skipped, or fails under CI=true, where a missing corpus must not pass
// silently.
func Maildir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MAILVAULT_CORPUS")
	if base == "" {
		home, err := os.UserHomeDir()
		if err == nil {
			base = filepath.Join(home, ".cache", "mailvault", "corpus")
		}
	}
	dir := filepath.Join(base, "maildir")
	if base == "" {
		dir = ""
	}
	if dir != "" {
		if st, err := os.Stat(filepath.Join(dir, "cur")); err == nil && st.IsDir() {
			return dir
		}
	}
	msg := "SpamAssassin corpus not found at " + dir + " ($MAILVAULT_CORPUS/maildir): run scripts/fetch-corpus.sh"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Folder is one Maildir of the tree with the files a reader must import.
type Folder struct {
	Dir     string   // the Maildir
	Mailbox string   // the mailbox name mailvault should give it
	Files   []string // cur/ and new/ message files, sorted by name
	SHA     []string // hex sha256 of each file's bytes, parallel to Files
}

// Corpus is what the tests know about the corpus from reading its files.
type Corpus struct {
	Root     string
	Folders  []*Folder // INBOX (the root) first, then the .folders by name
	Total    int       // message files
	Distinct int       // distinct sha256 over all files
	// Raw holds the contents of the files Scan was asked to keep, by path.
	Raw map[string][]byte
}

// Scan reads every message file under root, hashing it. keep lists
// substrings of file names whose contents are kept in Corpus.Raw for later
// inspection.
func Scan(t testing.TB, root string, keep ...string) *Corpus {
	t.Helper()
	c := &Corpus{Root: root, Raw: map[string][]byte{}}
	add := func(dir, mailbox string) {
		f := &Folder{Dir: dir, Mailbox: mailbox}
		for _, sub := range []string{"cur", "new"} {
			entries, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil && !os.IsNotExist(err) {
				t.Fatalf("read corpus: %v", err)
			}
			for _, e := range entries {
				if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
					f.Files = append(f.Files, filepath.Join(dir, sub, e.Name()))
				}
			}
		}
		slices.Sort(f.Files)
		for _, p := range f.Files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("read corpus: %v", err)
			}
			sum := sha256.Sum256(b)
			f.SHA = append(f.SHA, hex.EncodeToString(sum[:]))
			for _, k := range keep {
				if strings.Contains(filepath.Base(p), k) {
					c.Raw[p] = b
				}
			}
		}
		c.Folders = append(c.Folders, f)
	}
	add(root, "INBOX")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && len(e.Name()) > 1 {
			// Maildir++: ".A.B" is the mailbox "A/B".
			add(filepath.Join(root, e.Name()), strings.ReplaceAll(e.Name()[1:], ".", "/"))
		}
	}
	distinct := map[string]bool{}
	for _, f := range c.Folders {
		c.Total += len(f.Files)
		for _, h := range f.SHA {
			distinct[h] = true
		}
	}
	c.Distinct = len(distinct)
	return c
}

// Folder returns the folder of a mailbox.
func (c *Corpus) Folder(t testing.TB, mailbox string) *Folder {
	t.Helper()
	for _, f := range c.Folders {
		if f.Mailbox == mailbox {
			return f
		}
	}
	t.Fatalf("corpus has no folder for mailbox %q (has the layout of scripts/fetch-corpus.sh changed?)", mailbox)
	return nil
}

// Msg is one corpus message, named by its group and the id of its .txt file
// in the corpus ("spam-2", "00410.fb7b31cdd9d053f8b446da7ce89383fa").
type Msg struct{ Group, ID string }

func (m Msg) String() string { return m.Group + "/" + m.ID }

// Find returns the file of m, its sha256 and its UID (its 1-based position in
// the folder: import gives UIDs in file order).
func (c *Corpus) Find(t testing.TB, m Msg) (path, sha string, uid uint32) {
	t.Helper()
	f := c.Folder(t, m.Group)
	for i, p := range f.Files {
		if strings.Contains(filepath.Base(p), "."+m.ID) {
			return p, f.SHA[i], uint32(i + 1)
		}
	}
	t.Fatalf("corpus message %s not found in %s", m, f.Dir)
	return "", "", 0
}
