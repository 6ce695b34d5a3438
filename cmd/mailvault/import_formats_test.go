package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailvault/indexer/mailfile/psttest"
)

// The import command with the issue-16 formats, in process: a Takeout's
// labels as mailboxes (status), its category keyword searchable through
// IMAP SEARCH, --takeout/--no-takeout, and a real PST with --mailbox as
// the prefix of its folders.
func TestImportCommandFormats(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	from := "From 1588112345678901234@xxx Wed Apr 01 10:00:00 +0000 2020\n"
	m := func(labels, subject string) string {
		return from + "X-Gmail-Labels: " + labels + "\nFrom: a@example.org\nSubject: " + subject + "\n\nbody " + subject + "\n\n"
	}
	takeout := filepath.Join(dir, "All mail.mbox")
	if err := os.WriteFile(takeout, []byte(m("Inbox,Opened,Category Updates", "one")+m("Sent,Starred", "two")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := inProcess(t, "import", "--data", data, "--account", "g", "--json", takeout)
	if sum := parseImportSummary(t, r); r.code != 0 || sum.stored != 2 || sum.linked != 1 {
		t.Fatalf("import Takeout: code %d %+v, stderr %s", r.code, sum, r.stderr)
	}
	st := statusOf(t, inProcess, data, "g")
	for _, name := range []string{"INBOX", "Sent", "Starred"} {
		if st[name].Archived != 1 {
			t.Errorf("status: %s holds %d, want 1 (%v)", name, st[name].Archived, st)
		}
	}
	r = inProcess(t, "search", "--data", data, "--imap", "--account", "g", "--mailbox", "INBOX", "KEYWORD $Category_Updates")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "* SEARCH 1" {
		t.Errorf("search KEYWORD $Category_Updates: code %d %q %q", r.code, r.stdout, r.stderr)
	}
	// statusOf wants one account per data directory.
	dataP, dataH := filepath.Join(dir, "data-p"), filepath.Join(dir, "data-h")
	r = inProcess(t, "import", "--data", dataP, "--account", "p", "--no-takeout", "--json", takeout)
	if sum := parseImportSummary(t, r); r.code != 0 || sum.stored != 2 || sum.linked != 0 {
		t.Errorf("import --no-takeout: code %d %+v", r.code, sum)
	}
	if st := statusOf(t, inProcess, dataP, "p"); st["All mail"].Archived != 2 {
		t.Errorf("--no-takeout: status %v, want one mailbox 'All mail' of 2", st)
	}
	if r := inProcess(t, "import", "--data", data, "--account", "p", "--takeout", "--no-takeout", takeout); r.code != 2 ||
		!strings.Contains(r.stderr, "exclude each other") {
		t.Errorf("--takeout --no-takeout: code %d %q", r.code, r.stderr)
	}

	psttest.Readpst(t)
	pst := psttest.File(t, "support.pst")
	r = inProcess(t, "import", "--data", dataH, "--account", "ht", "--mailbox", "Outlook", "--json", pst)
	if sum := parseImportSummary(t, r); r.code != 0 || sum.stored+sum.linked != 17 {
		t.Fatalf("import PST: code %d %+v, stderr %s, status %v", r.code, sum, r.stderr, statusOf(t, inProcess, dataH, "ht"))
	}
	st = statusOf(t, inProcess, dataH, "ht")
	if st["Outlook/Sent Messages"].Archived != 11 || st["Outlook/Drafts"].Archived != 6 {
		t.Errorf("PST status %v", st)
	}
}

// Through a running serve, as jobs: a Takeout forced with --takeout (its
// first message has no labels) and a PST; the request's options reach the
// daemon, and the mail is searchable there.
func TestServeImportsTakeoutAndPST(t *testing.T) {
	psttest.Readpst(t)
	pst := psttest.File(t, "support.pst")
	bin := buildMailvault(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	from := "From 1588112345678901234@xxx Wed Apr 01 10:00:00 +0000 2020\n"
	mbox := filepath.Join(dir, "gmail.mbox")
	if err := os.WriteFile(mbox, []byte(from+"From: a@example.org\nSubject: nolabels\n\nx\n\n"+
		from+"X-Gmail-Labels: Inbox,Important\nFrom: a@example.org\nSubject: labelled\n\ny\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startServe(t, bin, data)
	r := runBinary(t, bin, 0, "import", "--data", data, "--account", "g", "--takeout", "--json", mbox)
	if sum := parseImportSummary(t, r); r.code != 0 || !strings.Contains(r.stderr, "runs in the running serve as job") || sum.stored != 2 || sum.linked != 1 {
		t.Fatalf("Takeout through serve: exit %d %+v\nstderr %s", r.code, sum, r.stderr)
	}
	r = runBinary(t, bin, 0, "import", "--data", data, "--account", "ht", "--mailbox", "Outlook", "--json", pst)
	if sum := parseImportSummary(t, r); r.code != 0 || sum.stored+sum.linked != 17 {
		t.Fatalf("PST through serve: exit %d %+v\nstderr %s", r.code, sum, r.stderr)
	}
	boxes := map[string]int{}
	waitUntilT(t, "the imports searchable", func() bool {
		boxes = map[string]int{}
		for _, h := range searchAll(t, binary(bin), data, "larger:0") {
			boxes[h.Account+" "+h.Mailbox]++
		}
		return len(boxes) == 5
	})
	want := map[string]int{"g Archived": 1, "g INBOX": 1, "g Important": 1, "ht Outlook/Drafts": 6, "ht Outlook/Sent Messages": 11}
	if fmt.Sprint(boxes) != fmt.Sprint(want) {
		t.Errorf("occurrences by mailbox %v, want %v", boxes, want)
	}
}
