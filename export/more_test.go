package export

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
)

func hasProblem(t *testing.T, dir string, kind ProblemKind, path string) {
	t.Helper()
	r, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK {
		t.Fatalf("Verify passed, want a %s problem on %s", kind, path)
	}
	for _, p := range r.Problems {
		if p.Kind == kind && p.Path == path {
			return
		}
	}
	t.Fatalf("Verify problems = %v, want %s on %s", r.Problems, kind, path)
}

func TestVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(dir string) error
		kind  ProblemKind
		path  string
	}{
		{"flipped byte", func(dir string) error {
			p := filepath.Join(dir, "NATIVES/0001/MV00000004.eml")
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[10] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, ProblemAltered, "NATIVES/0001/MV00000004.eml"},
		{"deleted file", func(dir string) error { return os.Remove(filepath.Join(dir, "TEXT/0001/MV00000002.txt")) }, ProblemMissing, "TEXT/0001/MV00000002.txt"},
		{"extra file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "NATIVES/extra.exe"), []byte("x"), 0o644)
		}, ProblemExtra, "NATIVES/extra.exe"},
		{"no manifest", func(dir string) error { return os.Remove(filepath.Join(dir, ManifestName)) }, ProblemIncomplete, ManifestName},
		{"no SHA256SUMS", func(dir string) error { return os.Remove(filepath.Join(dir, SumsName)) }, ProblemIncomplete, SumsName},
		{"manifest edited", func(dir string) error {
			p := filepath.Join(dir, ManifestName)
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, bytes.Replace(b, []byte(`"by": "auditor"`), []byte(`"by": "mallory"`), 1), 0o644)
		}, ProblemAltered, CustodyName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := write(t, &memSource{msgs: corpus()}, Options{By: "auditor"})
			mustVerify(t, dir)
			if err := tc.spoil(dir); err != nil {
				t.Fatal(err)
			}
			hasProblem(t, dir, tc.kind, tc.path)
		})
	}
}

func TestNativeAgainstArchive(t *testing.T) {
	// A manifest whose archive sha256 disagrees with the native (an export
	// made from altered mail, then re-hashed to look consistent) fails.
	dir, _ := write(t, &memSource{msgs: corpus()}, Options{})
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Files[0].ArchiveSHA256 == "" {
		t.Fatalf("first file %+v has no archive sha256", m.Files[0])
	}
	p := filepath.Join(dir, ManifestName)
	b, _ := os.ReadFile(p)
	b = bytes.Replace(b, []byte(`"archive_sha256": "`+m.Files[0].ArchiveSHA256), []byte(`"archive_sha256": "`+strings.Repeat("0", 64)), 1)
	b = bytes.Replace(b, []byte(`"archive_sha256":"`+m.Files[0].ArchiveSHA256), []byte(`"archive_sha256":"`+strings.Repeat("0", 64)), 1)
	os.WriteFile(p, b, 0o644)
	hasProblem(t, dir, ProblemNative, m.Files[0].Path)
}

func TestWriteRefuses(t *testing.T) {
	ctx := context.Background()
	src := &memSource{msgs: corpus()}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if _, err := Write(ctx, src, Options{Dir: full}); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Write into a non-empty dir: %v, want ErrNotEmpty", err)
	}
	for _, o := range []Options{{Format: "pdf"}, {Dedup: "family"}, {Encoding: "latin9"}, {Prefix: "../x"}} {
		o.Dir = filepath.Join(t.TempDir(), "o")
		if _, err := Write(ctx, src, o); err == nil || !strings.Contains(err.Error(), "export:") {
			t.Errorf("Write(%+v) = %v, want a clear error", o, err)
		}
	}
	// An empty existing dir is fine.
	if _, err := Write(ctx, src, Options{Dir: t.TempDir()}); err != nil {
		t.Errorf("Write into an empty dir: %v", err)
	}
}

func TestCorruptStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "o")
	src := &memSource{msgs: corpus(), err: fmt.Errorf("blob 1234: %w", ErrCorrupt)}
	if _, err := Write(context.Background(), src, Options{Dir: dir}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Write = %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
		t.Fatal("manifest written for a stopped export")
	}
	hasProblem(t, dir, ProblemIncomplete, ManifestName)

	// Bytes that do not match their sha256 stop it too.
	bad := corpus()
	bad[1].Raw = append([]byte(nil), bad[1].Raw...)
	bad[1].Raw[0] ^= 1
	if _, err := Write(context.Background(), &memSource{msgs: bad}, Options{Dir: filepath.Join(t.TempDir(), "o")}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Write of altered bytes = %v, want ErrCorrupt", err)
	}
}

func TestDedup(t *testing.T) {
	for _, tc := range []struct {
		d          Dedup
		docs       int
		custs, fps string
	}{
		{DedupNone, 15, "alice", "alice/INBOX"},
		{DedupGlobal, 13, "alice; bob", "alice/INBOX; bob/INBOX; bob/Archive"},
		{DedupCustodian, 14, "alice", "alice/INBOX"},
	} {
		dir, m := write(t, &memSource{msgs: corpus()}, Options{Dedup: tc.d})
		mustVerify(t, dir)
		if m.Counts.Documents != tc.docs {
			t.Errorf("%s: %d documents, want %d", tc.d, m.Counts.Documents, tc.docs)
		}
		b, _ := os.ReadFile(filepath.Join(dir, DATName))
		rows := readDAT(t, b)
		if got := rows[1][7]; got != tc.custs {
			t.Errorf("%s: ALLCUSTODIANS = %q, want %q", tc.d, got, tc.custs)
		}
		if got := rows[1][19]; got != tc.fps {
			t.Errorf("%s: FOLDERPATH = %q, want %q", tc.d, got, tc.fps)
		}
		if tc.d == DedupCustodian && (rows[2][6] != "bob" || rows[2][19] != "bob/INBOX; bob/Archive") {
			t.Errorf("custodian dedup second row = %q", rows[2])
		}
	}
}

func TestStableNumbering(t *testing.T) {
	a, _ := write(t, &memSource{msgs: corpus()}, Options{Prefix: "ABC", Start: 100, Width: 5})
	b, _ := write(t, &memSource{msgs: corpus()}, Options{Prefix: "ABC", Start: 100, Width: 5})
	da, _ := os.ReadFile(filepath.Join(a, DATName))
	db, _ := os.ReadFile(filepath.Join(b, DATName))
	if !bytes.Equal(da, db) {
		t.Error("two runs of the same source differ")
	}
	if !bytes.Contains(da, []byte("þABC00100þ")) {
		t.Error("numbering does not start at ABC00100")
	}
}

func TestManyAttachmentsAndDeepNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@example.com\nSubject: many\nContent-Type: multipart/mixed; boundary=\"m\"\n\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "--m\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"../same.txt\"\n\n%d\n", i)
	}
	b.WriteString("--m--\n")
	deep := "From: d@example.com\nSubject: level 0\n\nbottom\n"
	for i := 1; i <= 30; i++ {
		deep = fmt.Sprintf("From: d@example.com\nSubject: level %d\nContent-Type: multipart/mixed; boundary=\"d%d\"\n\n--d%d\nContent-Type: message/rfc822\n\n%s\n--d%d--\n", i, i, i, deep, i)
	}
	dir, m := write(t, &memSource{msgs: []Message{msg(b.String(), occ("a", "INBOX", 1)), msg(deep, occ("a", "INBOX", 2))}}, Options{})
	mustVerify(t, dir)
	if m.Counts.Excluded < 2 || m.Exclusions[0].DocID != "MV00000001" {
		t.Errorf("no exclusions recorded: %+v", m.Counts)
	}
	if m.Counts.Documents > 2*MaxFamily {
		t.Errorf("%d documents: the family limit did not hold", m.Counts.Documents)
	}
	dat, _ := os.ReadFile(filepath.Join(dir, DATName))
	rows := readDAT(t, dat)
	for _, r := range rows[1:] {
		if len(r) != len(Fields()) {
			t.Fatalf("row with %d fields", len(r))
		}
	}
	t.Logf("%d documents, %d excluded: %v", m.Counts.Documents, m.Counts.Excluded, m.Exclusions[len(m.Exclusions)-1])
}

func TestCP1252(t *testing.T) {
	dir, m := write(t, &memSource{msgs: corpus()}, Options{Encoding: EncodingCP1252})
	mustVerify(t, dir)
	b, _ := os.ReadFile(filepath.Join(dir, DATName))
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) || !bytes.HasPrefix(b, []byte("\xfeBEGDOC\xfe\x14\xfeENDDOC\xfe")) {
		t.Errorf("cp1252 DAT starts %q", b[:20])
	}
	if !bytes.Contains(b, []byte("R\xe9sum\xe9 plain")) {
		t.Error("é not written as 0xE9")
	}
	if m.Counts.Unmappable == 0 {
		t.Error("no unmappable characters counted (U+FFFD in the hostile subject)")
	}
}

// unquote undoes mboxrd quoting of one message.
func unquote(b []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(">")) && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
			line = line[1:]
		}
		out = append(out, line...)
	}
	return out
}

func TestMbox(t *testing.T) {
	src := &memSource{msgs: corpus()}
	dir, m := write(t, src, Options{Format: FormatMbox, Dedup: DedupGlobal})
	mustVerify(t, dir)
	if m.Counts.Emails != 4 {
		t.Errorf("%d messages in mbox", m.Counts.Emails)
	}
	path := filepath.Join(dir, "messages.mbox")
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv("CI") == "true" {
		t.Fatal("python3 is needed under CI")
	} else if err == nil {
		script := `import mailbox, sys, json
mb = mailbox.mbox(sys.argv[1], create=False)
print(json.dumps([m.get_from() for m in mb]), len(mb))
for m in mb: print(repr(m.get("Message-ID")))`
		out, err := exec.Command("python3", "-c", script, path).CombinedOutput()
		if err != nil {
			t.Fatalf("python mailbox: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if !strings.HasSuffix(lines[0], " 4") || !strings.Contains(lines[1], "plain-1@example.com") || !strings.Contains(lines[2], "multi-1@example.com") {
			t.Errorf("python mailbox read:\n%s", out)
		}
	}
	// Split by "From " lines, unquote, compare with the raw messages, and
	// read each with go-message.
	b, _ := os.ReadFile(path)
	var msgs [][]byte
	for _, part := range bytes.Split(b, []byte("\n\nFrom "))[0:] {
		msgs = append(msgs, part)
	}
	if len(msgs) != 4 {
		t.Fatalf("%d mbox parts", len(msgs))
	}
	for i, p := range msgs {
		if i == 0 {
			p = bytes.TrimPrefix(p, []byte("From "))
		}
		_, body, _ := bytes.Cut(p, []byte("\n"))
		body = unquote(body)
		want := src.msgs[i].Raw
		if i == len(msgs)-1 {
			body = bytes.TrimSuffix(body, []byte("\n")) // the blank line after the last message
		} else {
			body = append(body, '\n') // the split took the message's last newline
		}
		if !bytes.HasSuffix(want, []byte("\n")) {
			body = bytes.TrimSuffix(body, []byte("\n"))
		}
		if !bytes.Equal(body, want) {
			t.Errorf("mbox message %d differs from the raw message:\n%q\n%q", i, body, want)
		}
		if i < 3 {
			r, err := mail.CreateReader(bufio.NewReader(bytes.NewReader(body)))
			if err != nil {
				t.Errorf("go-message message %d: %v", i, err)
				continue
			}
			if id, _ := r.Header.MessageID(); id == "" {
				t.Errorf("go-message message %d: no Message-ID", i)
			}
		}
	}
}

func TestEML(t *testing.T) {
	src := &memSource{msgs: corpus()}
	dir, _ := write(t, src, Options{Format: FormatEML})
	mustVerify(t, dir)
	for i, want := range []int{0, 0, 0, 1, 2, 3} {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("EML/MV%08d.eml", i+1)))
		if err != nil || !bytes.Equal(b, src.msgs[want].Raw) {
			t.Errorf("EML %d differs (%v)", i+1, err)
		}
	}
}
