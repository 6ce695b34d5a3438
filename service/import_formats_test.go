package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/mailfile/psttest"
)

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fmtMsg(subject string) string {
	return "From: a@example.org\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@x>\nSubject: " + subject + "\n\nbody of " + subject + "\n"
}

// occs lists the occurrences of account as "mailbox uid flags sha-prefix".
func occs(t *testing.T, a *indexer.Archive, account string) []string {
	t.Helper()
	all, err := a.Occurrences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range all {
		if o.Account == account {
			out = append(out, fmt.Sprintf("%s %d %v %s", o.Mailbox, o.UID, o.Flags, o.SHA256[:8]))
		}
	}
	sort.Strings(out)
	return out
}

func runImport(t *testing.T, a *indexer.Archive, req ImportRequest) *ImportSummary {
	t.Helper()
	sum, err := Import(context.Background(), a, req, nil, nil)
	if err != nil {
		t.Fatalf("Import(%v) = %v (%+v)", req.Paths, err, sum)
	}
	return sum
}

// Loose .eml and .emlx trees: mailboxes by directory, UIDs in file-name
// order, a re-run adds nothing, a new file gets the next UID.
func TestImportLooseFiles(t *testing.T) {
	a, _ := newArchive(t)
	root := t.TempDir()
	writeTestFile(t, filepath.Join(root, "1.eml"), fmtMsg("one"))
	writeTestFile(t, filepath.Join(root, "2.eml"), fmtMsg("two"))
	writeTestFile(t, filepath.Join(root, "Sent", "1.eml"), fmtMsg("one")) // same content elsewhere: linked
	m := fmtMsg("apple")
	writeTestFile(t, filepath.Join(root, "Work.mbox", "Messages", "7.emlx"),
		fmt.Sprintf("%d\n%s<?xml version=\"1.0\"?>\n<plist><dict><key>flags</key><integer>17</integer></dict></plist>\n", len(m), m))
	writeTestFile(t, filepath.Join(root, "Work.mbox", "Messages", "8.partial.emlx"), fmt.Sprintf("%d\n%s", len(fmtMsg("partial")), fmtMsg("partial")))
	req := ImportRequest{Account: "alice", Paths: []string{root}}
	sum := runImport(t, a, req)
	if sum.Stored != 4 || sum.Linked != 1 || sum.FileErrors != 0 {
		t.Fatalf("first import %+v", sum)
	}
	partialNotes := 0
	for _, n := range sum.Notes {
		if strings.Contains(n, ".partial.emlx") {
			partialNotes++
		}
	}
	if partialNotes != 1 {
		t.Errorf("notes %q: want one note about the partial .emlx", sum.Notes)
	}
	first := occs(t, a, "alice")
	var boxes []string
	for _, o := range first {
		boxes = append(boxes, strings.Join(strings.Fields(o)[:2], " "))
	}
	if want := []string{"INBOX 1", "INBOX 2", "Sent 1", "Work 1", "Work 2"}; !reflect.DeepEqual(boxes, want) {
		t.Fatalf("occurrences %q, want %q", first, want)
	}
	if !strings.Contains(first[3], `[\Seen \Flagged]`) {
		t.Errorf("emlx flags: %q", first[3])
	}
	if sum := runImport(t, a, req); sum.Imported() != 0 || sum.Present != 5 {
		t.Errorf("second import %+v, want 5 present", sum)
	}
	writeTestFile(t, filepath.Join(root, "0.eml"), fmtMsg("zero")) // sorts first
	if sum := runImport(t, a, req); sum.Stored != 1 || sum.Present != 5 {
		t.Errorf("third import %+v", sum)
	}
	after := occs(t, a, "alice")
	if len(after) != 6 {
		t.Fatalf("after a new file: %q", after)
	}
	for _, o := range first {
		if !contains(after, o) {
			t.Errorf("occurrence %q changed after a new file came", o)
		}
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

const tkFrom = "From 1588112345678901234@xxx Wed Apr 01 10:00:00 +0000 2020\n"

func tkMsg(labels, subject string) string {
	return tkFrom + "X-GM-THRID: 1588112345678901234\nX-Gmail-Labels: " + labels + "\n" + fmtMsg(subject) + "\n"
}

// A Takeout mbox: one blob per message, an occurrence per label mailbox,
// flags from the labels, re-runs and overlapping newer Takeouts.
func TestImportTakeout(t *testing.T) {
	a, _ := newArchive(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "All mail Including Spam and Trash.mbox")
	takeout := tkMsg("Inbox,Important,Opened,Category Updates", "one") +
		tkMsg(`Starred,Unread,"Clients, 2019",Work/Q1`, "two") +
		tkMsg("Sent,Opened", "three")
	writeTestFile(t, p, takeout)
	req := ImportRequest{Account: "g", Paths: []string{p}}
	sum := runImport(t, a, req)
	if sum.Stored != 3 || sum.Linked != 3 {
		t.Fatalf("import %+v: want 3 stored (one blob per message), 3 linked", sum)
	}
	got := occs(t, a, "g")
	var want []string
	for _, o := range got {
		f := strings.Fields(o)
		want = append(want, strings.Join(f[:len(f)-1], " "))
	}
	if exp := []string{
		"Clients, 2019 1 [\\Flagged]",
		"INBOX 1 [\\Seen $Category_Updates]",
		"Important 1 [\\Seen $Category_Updates]",
		"Sent 1 [\\Seen]",
		"Starred 1 [\\Flagged]",
		"Work/Q1 1 [\\Flagged]",
	}; !reflect.DeepEqual(want, exp) {
		t.Fatalf("occurrences\n%q\nwant\n%q", want, exp)
	}
	if sum := runImport(t, a, req); sum.Imported() != 0 || sum.Present != 6 {
		t.Errorf("re-import %+v, want 6 present", sum)
	}
	// A newer Takeout of the same account: the old mail plus one new message.
	newer := filepath.Join(dir, "newer.mbox")
	writeTestFile(t, newer, takeout+tkMsg("Inbox,Unread", "four"))
	if sum := runImport(t, a, ImportRequest{Account: "g", Paths: []string{newer}}); sum.Stored != 1 || sum.Linked != 0 || sum.Present != 6 {
		t.Errorf("newer Takeout %+v, want 1 stored, 6 present", sum)
	}
	// A label naming a harvested mailbox of the account: that label is left
	// out (noted, counted as unreadable), the rest is imported.
	if _, err := a.EnsureMailbox(context.Background(), "k", "Sent", catalog.SourceIMAP, 7); err != nil {
		t.Fatal(err)
	}
	sum, err := Import(context.Background(), a, ImportRequest{Account: "k", Paths: []string{p}}, nil, nil)
	if err != nil || sum.Imported() != 5 || sum.FileErrors != 1 || len(sum.Notes) != 1 || !strings.Contains(sum.Notes[0], `"Sent"`) {
		t.Errorf("Takeout with a harvested Sent: %+v, %v", sum, err)
	}

	// --takeout forces it on an mbox whose first message has no labels.
	plain := filepath.Join(dir, "plain.mbox")
	writeTestFile(t, plain, tkFrom+fmtMsg("five")+"\n"+tkMsg("Inbox", "six"))
	if sum := runImport(t, a, ImportRequest{Account: "h", Paths: []string{plain}, Takeout: true}); sum.Stored != 2 {
		t.Errorf("forced Takeout %+v", sum)
	}
	if got := occs(t, a, "h"); len(got) != 2 || !strings.HasPrefix(got[0], "Archived 1") || !strings.HasPrefix(got[1], "INBOX 1") {
		t.Errorf("forced Takeout occurrences %q", got)
	}
}

// A real PST through readpst: its folders become mailboxes, every message
// is imported, a re-import adds nothing; bad and unreadable PSTs are noted.
func TestImportPST(t *testing.T) {
	psttest.Readpst(t)
	pst := psttest.File(t, "support.pst")
	a, _ := newArchive(t)
	req := ImportRequest{Account: "ht", Paths: []string{pst}}
	sum := runImport(t, a, req)
	if sum.Imported() != 17 || sum.FileErrors != 0 {
		t.Fatalf("import %+v, want 17", sum)
	}
	boxes := map[string]int{}
	for _, o := range occs(t, a, "ht") {
		f := strings.Fields(o)
		boxes[strings.Join(f[:len(f)-3], " ")]++
	}
	if !reflect.DeepEqual(boxes, map[string]int{"Drafts": 6, "Sent Messages": 11}) {
		t.Errorf("mailboxes %v", boxes)
	}
	if sum := runImport(t, a, req); sum.Imported() != 0 || sum.Present != 17 {
		t.Errorf("re-import %+v, want 17 present", sum)
	}

	// A PST found in a tree: its folders below its relative path.
	tree := t.TempDir()
	writeTestFile(t, filepath.Join(tree, "1.eml"), fmtMsg("beside the pst"))
	if err := os.MkdirAll(filepath.Join(tree, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pst, filepath.Join(tree, "archive", "old.pst")); err != nil {
		t.Fatal(err)
	}
	if sum := runImport(t, a, ImportRequest{Account: "tree", Paths: []string{tree}}); sum.Imported() != 18 || sum.FileErrors != 0 {
		t.Errorf("tree with a PST: %+v", sum)
	}
	boxes = map[string]int{}
	for _, o := range occs(t, a, "tree") {
		f := strings.Fields(o)
		boxes[strings.Join(f[:len(f)-3], " ")]++
	}
	if !reflect.DeepEqual(boxes, map[string]int{"INBOX": 1, "archive/old/Drafts": 6, "archive/old/Sent Messages": 11}) {
		t.Errorf("tree with a PST: mailboxes %v", boxes)
	}

	// A PST holding a calendar item only: nothing imported, both said.
	sum = runImport(t, a, ImportRequest{Account: "ht", Paths: []string{psttest.File(t, "32-bit.pst")}})
	if sum.Imported() != 0 || sum.FileErrors != 0 || len(sum.Notes) != 2 ||
		!strings.Contains(sum.Notes[0], "1 of readpst's files are not mail") || !strings.Contains(sum.Notes[1], "found no mail") {
		t.Errorf("calendar-only PST: %+v", sum)
	}

	bad := filepath.Join(t.TempDir(), "bad.pst")
	writeTestFile(t, bad, "!BDN"+strings.Repeat("\x00", 4096))
	sum, err := Import(context.Background(), a, ImportRequest{Account: "ht", Paths: []string{bad}}, nil, nil)
	if err != nil || sum.FileErrors != 1 || len(sum.Notes) != 1 || !strings.Contains(sum.Notes[0], "readpst rejected it") {
		t.Errorf("bad PST: %+v, %v", sum, err)
	}
	t.Setenv("PATH", t.TempDir())
	sum, err = Import(context.Background(), a, ImportRequest{Account: "ht", Paths: []string{pst}}, nil, nil)
	if err != nil || sum.FileErrors != 1 || len(sum.Notes) != 1 || !strings.Contains(sum.Notes[0], "apt-get install pst-utils") {
		t.Errorf("no readpst: %+v, %v", sum, err)
	}
}

// Review (issue 16): readpst writes the whole PST out as .eml files before
// the import reads them, so a large PST needs about its size again (more:
// attachments come out base64) in the temporary directory, which may be a
// small tmpfs. A (sparse) 4 TiB PST is refused before readpst starts, with
// an error naming the space it needs and where, not after filling the disk.
func TestImportPSTNeedsTempSpace(t *testing.T) {
	psttest.Readpst(t)
	a, _ := newArchive(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	huge := filepath.Join(t.TempDir(), "huge.pst")
	writeTestFile(t, huge, "!BDN"+strings.Repeat("\x00", 4096))
	if err := os.Truncate(huge, 4<<40); err != nil {
		t.Skipf("no sparse 4 TiB file here: %v", err)
	}
	sum, err := Import(context.Background(), a, ImportRequest{Account: "ht", Paths: []string{huge}}, nil, nil)
	if err != nil || sum.FileErrors != 1 || len(sum.Notes) != 1 ||
		!strings.Contains(sum.Notes[0], "free in "+tmp) || !strings.Contains(sum.Notes[0], "TMPDIR") {
		t.Fatalf("4 TiB PST: %+v, %v; want one file error naming the free space in %s and TMPDIR", sum, err, tmp)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the refused conversion left %d entries in the temporary directory", len(ents))
	}
}
