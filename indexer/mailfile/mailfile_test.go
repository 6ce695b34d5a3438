package mailfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// mkMaildir makes dir/{cur,new,tmp}.
func mkMaildir(t *testing.T, dir string) string {
	t.Helper()
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func msg(subject string) string {
	return "From: a@example.org\nSubject: " + subject + "\n\nbody of " + subject + "\n"
}

// walkAll collects everything Walk yields.
func walkAll(t *testing.T, m Mailbox) ([]Message, []error) {
	t.Helper()
	var msgs []Message
	var errs []error
	err := m.Walk(func(msg Message) error {
		msgs = append(msgs, msg)
		return nil
	}, func(err error) { errs = append(errs, err) })
	if err != nil {
		t.Fatalf("Walk(%s) = %v, want nil", m.Path, err)
	}
	return msgs, errs
}

func subjects(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		s := string(m.Raw)
		i := strings.Index(s, "Subject: ")
		if i < 0 {
			out = append(out, "?")
			continue
		}
		s = s[i+len("Subject: "):]
		out = append(out, strings.TrimRight(s[:strings.IndexByte(s, '\n')], "\r"))
	}
	return out
}

type mb struct {
	Name string
	Rel  string // path relative to the fixture root
	Kind Kind
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		name     string
		build    func(t *testing.T, root string) // fixture under root
		path     string                          // relative to root
		override string
		want     []mb
	}{
		{
			name:  "single maildir",
			build: func(t *testing.T, r string) { mkMaildir(t, filepath.Join(r, "md")) },
			path:  "md",
			want:  []mb{{"INBOX", "md", KindMaildir}},
		},
		{
			name:     "single maildir override",
			build:    func(t *testing.T, r string) { mkMaildir(t, filepath.Join(r, "md")) },
			path:     "md",
			override: "Work",
			want:     []mb{{"Work", "md", KindMaildir}},
		},
		{
			name: "maildir without tmp",
			build: func(t *testing.T, r string) {
				os.MkdirAll(filepath.Join(r, "md", "cur"), 0o755)
				os.MkdirAll(filepath.Join(r, "md", "new"), 0o755)
			},
			path: "md",
			want: []mb{{"INBOX", "md", KindMaildir}},
		},
		{
			name:  "maildir++ tree",
			build: buildMaildirPP,
			path:  "Maildir",
			want: []mb{
				{"INBOX", "Maildir", KindMaildir},
				{"Archive", "Maildir/.Archive", KindMaildir},
				{"Archive/2019", "Maildir/.Archive.2019", KindMaildir},
				{"Archive/2019/Q1", "Maildir/.Archive.2019.Q1", KindMaildir},
				{"Sent", "Maildir/.Sent", KindMaildir},
				{"Ärger & Co", "Maildir/.&AMQ-rger &- Co", KindMaildir},
			},
		},
		{
			name:     "maildir++ tree override",
			build:    buildMaildirPP,
			path:     "Maildir",
			override: "Old",
			want: []mb{
				{"Old", "Maildir", KindMaildir},
				{"Old/Archive", "Maildir/.Archive", KindMaildir},
				{"Old/Archive/2019", "Maildir/.Archive.2019", KindMaildir},
				{"Old/Archive/2019/Q1", "Maildir/.Archive.2019.Q1", KindMaildir},
				{"Old/Sent", "Maildir/.Sent", KindMaildir},
				{"Old/Ärger & Co", "Maildir/.&AMQ-rger &- Co", KindMaildir},
			},
		},
		{
			name:  "maildir++ folder given directly",
			build: buildMaildirPP,
			path:  "Maildir/.Archive.2019",
			want:  []mb{{"Archive/2019", "Maildir/.Archive.2019", KindMaildir}},
		},
		{
			name: "mbsync tree",
			build: func(t *testing.T, r string) {
				mkMaildir(t, filepath.Join(r, "Mail", "INBOX"))
				mkMaildir(t, filepath.Join(r, "Mail", "Sent"))
				mkMaildir(t, filepath.Join(r, "Mail", "Archive"))
				mkMaildir(t, filepath.Join(r, "Mail", "Archive", "2019"))
				mkMaildir(t, filepath.Join(r, "Mail", "Lists", "go-nuts")) // Lists itself is no mailbox
				writeFile(t, filepath.Join(r, "Mail", ".mbsyncstate"), "x")
				writeFile(t, filepath.Join(r, "Mail", "INBOX", ".uidvalidity"), "1\n")
				mkMaildir(t, filepath.Join(r, "Mail", ".notmuch", "xapian")) // private dot-dir
			},
			path: "Mail",
			want: []mb{
				{"Archive", "Mail/Archive", KindMaildir},
				{"Archive/2019", "Mail/Archive/2019", KindMaildir},
				{"INBOX", "Mail/INBOX", KindMaildir},
				{"Lists/go-nuts", "Mail/Lists/go-nuts", KindMaildir},
				{"Sent", "Mail/Sent", KindMaildir},
			},
		},
		{
			name: "mbsync tree override",
			build: func(t *testing.T, r string) {
				mkMaildir(t, filepath.Join(r, "Mail", "INBOX"))
				mkMaildir(t, filepath.Join(r, "Mail", "Sent"))
			},
			path:     "Mail",
			override: "alice",
			want: []mb{
				{"alice/INBOX", "Mail/INBOX", KindMaildir},
				{"alice/Sent", "Mail/Sent", KindMaildir},
			},
		},
		{
			name: "dovecot LAYOUT=fs",
			build: func(t *testing.T, r string) {
				mkMaildir(t, filepath.Join(r, "md"))
				mkMaildir(t, filepath.Join(r, "md", "Sent"))
				writeFile(t, filepath.Join(r, "md", "dovecot-uidlist"), "3 V1 N1\n")
				writeFile(t, filepath.Join(r, "md", "dovecot.index.log"), "\x00\x01")
			},
			path: "md",
			want: []mb{{"INBOX", "md", KindMaildir}, {"Sent", "md/Sent", KindMaildir}},
		},
		{
			name: "thunderbird profile",
			build: func(t *testing.T, r string) {
				writeFile(t, filepath.Join(r, "tb", "Inbox"), "From a Thu Aug 22 12:36:23 2002\n"+msg("x"))
				writeFile(t, filepath.Join(r, "tb", "Inbox.msf"), "// <!-- <mdb:mork:z v=\"1.4\"/> -->")
				writeFile(t, filepath.Join(r, "tb", "Trash"), "") // empty, no extension: skipped
				writeFile(t, filepath.Join(r, "tb", "notes.txt"), "hello\n")
				writeFile(t, filepath.Join(r, "tb", "Archives.sbd", "2019"), "From a Thu Aug 22 12:36:23 2002\n"+msg("y"))
				writeFile(t, filepath.Join(r, "tb", "Old.mbox"), "")
				writeFile(t, filepath.Join(r, "tb", "Apple.mbox", "mbox"), "From a Thu Aug 22 12:36:23 2002\n"+msg("z"))
				writeFile(t, filepath.Join(r, "tb", "Apple.mbox", "Info.plist"), "<plist/>")
			},
			path: "tb",
			want: []mb{
				{"Apple", "tb/Apple.mbox/mbox", KindMbox},
				{"Archives/2019", "tb/Archives.sbd/2019", KindMbox},
				{"Inbox", "tb/Inbox", KindMbox},
				{"Old", "tb/Old.mbox", KindMbox},
			},
		},
		{
			name:  "mbox file",
			build: func(t *testing.T, r string) { writeFile(t, filepath.Join(r, "Sent.mbox"), "From a\n"+msg("x")) },
			path:  "Sent.mbox",
			want:  []mb{{"Sent", "Sent.mbox", KindMbox}},
		},
		{
			name:     "mbox file override",
			build:    func(t *testing.T, r string) { writeFile(t, filepath.Join(r, "Sent.mbox"), "From a\n"+msg("x")) },
			path:     "Sent.mbox",
			override: "Old Sent",
			want:     []mb{{"Old Sent", "Sent.mbox", KindMbox}},
		},
		{
			name:  "mbox without extension",
			build: func(t *testing.T, r string) { writeFile(t, filepath.Join(r, "mail"), "\nFrom a\n"+msg("x")) },
			path:  "mail",
			want:  []mb{{"mail", "mail", KindMbox}},
		},
		{
			name:  "empty file is an empty mbox",
			build: func(t *testing.T, r string) { writeFile(t, filepath.Join(r, "empty"), "") },
			path:  "empty",
			want:  []mb{{"empty", "empty", KindMbox}},
		},
		{
			name:  "eml file",
			build: func(t *testing.T, r string) { writeFile(t, filepath.Join(r, "a.eml"), msg("x")) },
			path:  "a.eml",
			want:  []mb{{"INBOX", "a.eml", KindMessage}},
		},
		{
			name:     "eml file override",
			build:    func(t *testing.T, r string) { writeFile(t, filepath.Join(r, "a.eml"), msg("x")) },
			path:     "a.eml",
			override: "Evidence",
			want:     []mb{{"Evidence", "a.eml", KindMessage}},
		},
		{
			name: "symlink loop",
			build: func(t *testing.T, r string) {
				mkMaildir(t, filepath.Join(r, "t", "A"))
				if err := os.Symlink("..", filepath.Join(r, "t", "A", "up")); err != nil {
					t.Fatal(err)
				}
			},
			path: "t",
			want: []mb{{"A", "t/A", KindMaildir}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tt.build(t, root)
			got, err := Discover(filepath.Join(root, tt.path), tt.override)
			if err != nil {
				t.Fatalf("Discover(%q, %q) = %v", tt.path, tt.override, err)
			}
			var gotRel []mb
			for _, m := range got {
				rel, err := filepath.Rel(root, m.Path)
				if err != nil {
					t.Fatal(err)
				}
				gotRel = append(gotRel, mb{m.Name, filepath.ToSlash(rel), m.Kind})
			}
			if !reflect.DeepEqual(gotRel, tt.want) {
				t.Errorf("Discover(%q, %q) =\n\t%v\nwant\n\t%v", tt.path, tt.override, gotRel, tt.want)
			}
		})
	}
}

func buildMaildirPP(t *testing.T, r string) {
	t.Helper()
	md := mkMaildir(t, filepath.Join(r, "Maildir"))
	for _, f := range []string{".Sent", ".Archive", ".Archive.2019", ".Archive.2019.Q1", ".&AMQ-rger &- Co"} {
		mkMaildir(t, filepath.Join(md, f))
		writeFile(t, filepath.Join(md, f, "maildirfolder"), "")
	}
	os.MkdirAll(filepath.Join(md, ".git", "objects"), 0o755) // not a Maildir: skipped
	os.MkdirAll(filepath.Join(md, "courierimapkeywords"), 0o755)
	writeFile(t, filepath.Join(md, "dovecot-uidlist"), "3 V1 N1\n")
	writeFile(t, filepath.Join(md, "dovecot.index.cache"), "\x00")
	writeFile(t, filepath.Join(md, "subscriptions"), "Sent\n")
}

func TestDiscoverErrors(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "nope")
	_, err := Discover(missing, "")
	if want := fmt.Sprintf("import %q: no such file or directory", missing); err == nil || err.Error() != want {
		t.Errorf("Discover(missing) = %v, want %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Discover(missing) = %v, want errors.Is fs.ErrNotExist", err)
	}

	tests := []struct {
		name    string
		build   func(t *testing.T, path string)
		is      error
		contain string
	}{
		{"empty dir", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }, ErrNoMailbox, "point at a Maildir"},
		{"dir of text files", func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "a.txt"), "hello\n")
			writeFile(t, filepath.Join(p, "b.txt"), "")
		}, ErrNoMailbox, "no Maildir"},
		{"cur given", func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "cur", "1:2,S"), msg("x")) }, ErrNoMailbox, "point at its parent"},
		{"binary file", func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "x.bin"), "\x00\x01\x02") }, ErrNotMail, "NUL byte"},
		{"text file", func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "x.txt"), "just some text\n") }, ErrNotMail, ""},
		{"zstd file", func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "x.zst"), "\x28\xb5\x2f\xfd\x00") }, nil, "zstd: not supported"},
		{"duplicate names", func(t *testing.T, p string) {
			mkMaildir(t, filepath.Join(p, "Sent"))
			writeFile(t, filepath.Join(p, "Sent.mbox"), "From a\n"+msg("x"))
		}, ErrDuplicateName, `both "Sent"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			tt.build(t, dir)
			path := dir
			if tt.name == "cur given" {
				path = filepath.Join(dir, "cur")
			}
			if entries, _ := os.ReadDir(dir); len(entries) == 1 && !entries[0].IsDir() {
				path = filepath.Join(dir, entries[0].Name())
			}
			got, err := Discover(path, "")
			if err == nil {
				t.Fatalf("Discover(%q) = %v, nil; want error", path, got)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Discover(%q) = %v, want errors.Is %v", path, err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contain) || !strings.Contains(err.Error(), path) {
				t.Errorf("Discover(%q) = %v, want it to contain %q and the path", path, err, tt.contain)
			}
		})
	}
}

func TestMaildirWalk(t *testing.T) {
	md := mkMaildir(t, filepath.Join(t.TempDir(), "md"))
	files := []struct {
		rel     string
		subject string
	}{
		// Delivery times of different widths and Dovecot's M<usec>: the
		// order is numeric, not by bytes.
		{"cur/1000.M10P1.host:2,FS", "t1000-m10"},
		{"new/999.M1P1.host", "t999"},
		{"cur/1000.M9P1.host:2,RSa", "t1000-m9"},
		{"cur/1000.M9P2.host:2,", "t1000-m9-p2"},
		{"new/1001.M1P1.host", "t1001"},
		{"cur/1002.M1P1.host:2,TDPc", "t1002"},
		{"cur/1003_1.host!2,S", "t1003-bang"},
	}
	mtime := time.Date(2002, 8, 22, 12, 36, 23, 0, time.UTC)
	for _, f := range files {
		p := filepath.Join(md, f.rel)
		writeFile(t, p, msg(f.subject))
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// Not messages, skipped silently.
	writeFile(t, filepath.Join(md, "cur", ".hidden"), msg("hidden"))
	writeFile(t, filepath.Join(md, "tmp", "1.inprogress"), msg("tmp"))
	writeFile(t, filepath.Join(md, "cur", "dovecot-uidlist"), "3 V1 N1\n")
	writeFile(t, filepath.Join(md, "dovecot-keywords"), "0 $Label1\n1 Junk\n2 work item\n")

	m := Mailbox{Name: "INBOX", Path: md, Kind: KindMaildir}
	msgs, errs := walkAll(t, m)
	if len(errs) != 0 {
		t.Errorf("Walk errors = %v, want none", errs)
	}
	wantSubj := []string{"t999", "t1000-m9", "t1000-m9-p2", "t1000-m10", "t1001", "t1002", "t1003-bang"}
	if got := subjects(msgs); !reflect.DeepEqual(got, wantSubj) {
		t.Errorf("Walk order = %v, want %v", got, wantSubj)
	}
	wantFlags := map[string][]string{
		"t999":        nil,
		"t1000-m9":    {`\Seen`, `\Answered`, "$Label1"},
		"t1000-m9-p2": nil,
		"t1000-m10":   {`\Seen`, `\Flagged`},
		"t1001":       nil,
		"t1002":       {`\Deleted`, `\Draft`, "$Forwarded", "work item"},
		"t1003-bang":  {`\Seen`},
	}
	for i, s := range subjects(msgs) {
		if got := msgs[i].Flags; !reflect.DeepEqual(got, wantFlags[s]) {
			t.Errorf("%s: Flags = %q, want %q", s, got, wantFlags[s])
		}
		if !msgs[i].InternalDate.Equal(mtime) {
			t.Errorf("%s: InternalDate = %v, want %v", s, msgs[i].InternalDate, mtime)
		}
		if string(msgs[i].Raw) != msg(s) {
			t.Errorf("%s: Raw = %q, want %q", s, msgs[i].Raw, msg(s))
		}
		if !strings.HasPrefix(msgs[i].Source, md) || msgs[i].Note != "" {
			t.Errorf("%s: Source, Note = %q, %q; want a path under %s, no note", s, msgs[i].Source, msgs[i].Note, md)
		}
	}
	if n, err := Count(m); err != nil || n != len(files) {
		t.Errorf("Count = %d, %v; want %d, nil", n, err, len(files))
	}

	// Stable: a second walk gives the same sequence.
	again, _ := walkAll(t, m)
	if !reflect.DeepEqual(subjects(again), wantSubj) {
		t.Errorf("second Walk order = %v, want %v", subjects(again), wantSubj)
	}
}

func TestMaildirBadFiles(t *testing.T) {
	md := mkMaildir(t, filepath.Join(t.TempDir(), "md"))
	writeFile(t, filepath.Join(md, "cur", "1.a:2,S"), msg("one"))
	writeFile(t, filepath.Join(md, "cur", "2.empty:2,S"), "")
	writeFile(t, filepath.Join(md, "cur", "3.binary:2,S"), "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	writeFile(t, filepath.Join(md, "cur", "4.text:2,S"), "not a header line\n\nbody\n")
	writeFile(t, filepath.Join(md, "cur", "5.big:2,S"), msg("big")+strings.Repeat("x", 2000)+"\n")
	if err := os.Mkdir(filepath.Join(md, "cur", "6.dir:2,S"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Unreadable: a dangling symlink (open fails even for root).
	if err := os.Symlink(filepath.Join(md, "gone"), filepath.Join(md, "cur", "7.dangling:2,S")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(md, "new", "8.from"), "From someone Thu Aug 22 12:36:23 2002\n"+msg("eight"))
	writeFile(t, filepath.Join(md, "new", "9.b"), msg("nine"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(msg("ten")))
	zw.Close()
	writeFile(t, filepath.Join(md, "cur", "10.gz:2,SZ"), gz.String())

	m := Mailbox{Name: "INBOX", Path: md, Kind: KindMaildir, MaxBytes: 1000}
	msgs, errs := walkAll(t, m)
	if got, want := subjects(msgs), []string{"one", "eight", "nine", "ten"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Walk messages = %v, want %v", got, want)
	}
	if !strings.Contains(msgs[1].Note, `"From " line`) || !strings.Contains(msgs[3].Note, "gzip") {
		t.Errorf("Notes = %q, %q; want From line and gzip notes", msgs[1].Note, msgs[3].Note)
	}
	wantErrs := []string{"2.empty:2,S", "empty file", "3.binary:2,S", "NUL", "4.text:2,S", "not a header field",
		"5.big:2,S", "limit", "6.dir:2,S", "not a regular file", "7.dangling:2,S", "no such file"}
	if len(errs) != len(wantErrs)/2 {
		t.Fatalf("onErr got %d errors %v, want %d", len(errs), errs, len(wantErrs)/2)
	}
	for i, err := range errs {
		file, what := wantErrs[2*i], wantErrs[2*i+1]
		s := err.Error()
		if !strings.Contains(s, filepath.Join(md, "cur", file)) || !strings.Contains(s, what) || strings.Contains(s, "\n") {
			t.Errorf("onErr #%d = %q, want one line naming %s and %q", i, s, file, what)
		}
	}

	t.Run("chmod 000", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: permissions do not stop reads; the dangling symlink above covers unreadable files")
		}
		p := filepath.Join(md, "cur", "11.secret:2,S")
		writeFile(t, p, msg("secret"))
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		_, errs := walkAll(t, m)
		found := false
		for _, err := range errs {
			found = found || strings.Contains(err.Error(), p) && errors.Is(err, fs.ErrPermission)
		}
		if !found {
			t.Errorf("onErr = %v, want a permission error naming %s", errs, p)
		}
	})

	t.Run("nil onErr", func(t *testing.T) {
		n := 0
		err := m.Walk(func(Message) error { n++; return nil }, nil)
		if err == nil || !strings.Contains(err.Error(), "empty file") || n != 1 {
			t.Errorf("Walk(nil onErr) = %v after %d messages, want the empty-file error after 1", err, n)
		}
	})
}

func TestMaildirRenamedDuringWalk(t *testing.T) {
	md := mkMaildir(t, filepath.Join(t.TempDir(), "md"))
	writeFile(t, filepath.Join(md, "cur", "1.a:2,"), msg("one"))
	writeFile(t, filepath.Join(md, "new", "2.b"), msg("two"))
	m := Mailbox{Name: "INBOX", Path: md, Kind: KindMaildir}
	var got []Message
	err := m.Walk(func(msg Message) error {
		if len(got) == 0 {
			// A client reads message two meanwhile: new/ → cur/ with \Seen.
			if err := os.Rename(filepath.Join(md, "new", "2.b"), filepath.Join(md, "cur", "2.b:2,S")); err != nil {
				t.Fatal(err)
			}
		}
		got = append(got, msg)
		return nil
	}, func(err error) { t.Errorf("onErr(%v), want no error", err) })
	if err != nil || len(got) != 2 {
		t.Fatalf("Walk = %v with %d messages, want nil, 2", err, len(got))
	}
	if !reflect.DeepEqual(got[1].Flags, []string{`\Seen`}) || !strings.HasSuffix(got[1].Source, "cur/2.b:2,S") {
		t.Errorf("renamed message: Source %q Flags %q, want cur/2.b:2,S [\\Seen]", got[1].Source, got[1].Flags)
	}
}

func TestWalkStopsOnFnError(t *testing.T) {
	dir := t.TempDir()
	md := mkMaildir(t, filepath.Join(dir, "md"))
	writeFile(t, filepath.Join(md, "cur", "1:2,"), msg("one"))
	writeFile(t, filepath.Join(md, "cur", "2:2,"), msg("two"))
	mbox := filepath.Join(dir, "a.mbox")
	writeFile(t, mbox, "From a\n"+msg("one")+"\nFrom b\n"+msg("two")+"\n")
	stop := errors.New("stop here")
	for _, m := range []Mailbox{{Path: md, Kind: KindMaildir}, {Path: mbox, Kind: KindMbox}} {
		n := 0
		err := m.Walk(func(Message) error { n++; return stop }, nil)
		if err != stop || n != 1 {
			t.Errorf("Walk(%v) = %v after %d calls, want %v after 1", m.Kind, err, n, stop)
		}
	}
}

type wantMsg struct {
	raw  string
	note string // substring; "" means no note
	date time.Time
	src  string // offset suffix
}

func TestMbox(t *testing.T) {
	d := func(y int, mo time.Month, day, h, mi, s int) time.Time {
		return time.Date(y, mo, day, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		name  string
		in    string
		want  []wantMsg
		errs  []string // substrings of onErr errors, in order
		flags [][]string
	}{
		{
			name: "two messages",
			in: "From alice@example.org  Thu Aug 22 12:36:23 2002\nSubject: one\n\nbody 1\n\n" +
				"From bob@example.org Sun Aug  5 09:44:26 2001\nSubject: two\n\nbody 2\n\n",
			want: []wantMsg{
				{"Subject: one\n\nbody 1\n", "", d(2002, 8, 22, 12, 36, 23), "offset 0"},
				{"Subject: two\n\nbody 2\n", "", d(2001, 8, 5, 9, 44, 26), "offset 71"},
			},
		},
		{
			name: "mboxrd quoting",
			in: "From a Thu Aug 22 12:36:23 2002\nSubject: q\n\n>From here\n>>From there\n>>>From deep\n" +
				" >From not quoted\n>Fromage\nFrom mid-paragraph is no separator\n\n>From after blank\n",
			want: []wantMsg{{"Subject: q\n\nFrom here\n>From there\n>>From deep\n" +
				" >From not quoted\n>Fromage\nFrom mid-paragraph is no separator\n\nFrom after blank\n", "", d(2002, 8, 22, 12, 36, 23), "offset 0"}},
		},
		{
			name: "CRLF",
			in:   "From a Thu Aug 22 12:36:23 2002\r\nSubject: one\r\n\r\n>From x\r\n\r\nFrom b Thu Aug 22 12:36:24 2002\r\nSubject: two\r\n\r\nb\r\n\r\n",
			want: []wantMsg{
				{"Subject: one\r\n\r\nFrom x\r\n", "", d(2002, 8, 22, 12, 36, 23), "offset 0"},
				{"Subject: two\r\n\r\nb\r\n", "", d(2002, 8, 22, 12, 36, 24), "offset 60"},
			},
		},
		{
			name: "no trailing blank line",
			in:   "From a\nSubject: one\n\n1\n\nFrom b\nSubject: two\n\n2\n",
			want: []wantMsg{{"Subject: one\n\n1\n", "", time.Time{}, "offset 0"}, {"Subject: two\n\n2\n", "", time.Time{}, "offset 24"}},
		},
		{
			name: "truncated without final newline",
			in:   "From a\nSubject: one\n\n1\n\nFrom b\nSubject: two\n\nhalf a li",
			want: []wantMsg{{"Subject: one\n\n1\n", "", time.Time{}, "offset 0"}, {"Subject: two\n\nhalf a li", "final newline", time.Time{}, "offset 24"}},
		},
		{
			name: "truncated mid-header",
			in:   "From a\nSubject: one\n\n1\n\nFrom b\nSubject: two\nX-Cut: here\n",
			want: []wantMsg{{"Subject: one\n\n1\n", "", time.Time{}, "offset 0"}, {"Subject: two\nX-Cut: here\n", "no blank line ends the header", time.Time{}, "offset 24"}},
		},
		{
			name: "truncated mid-header-line",
			in:   "From a\nSubject: one\n\n1\n\nFrom b\nSubj",
			want: []wantMsg{{"Subject: one\n\n1\n", "", time.Time{}, "offset 0"}, {"Subj", "no blank line ends the header", time.Time{}, "offset 24"}},
		},
		{
			name: "leading blank lines",
			in:   "\n\r\nFrom a\nSubject: one\n\n1\n",
			want: []wantMsg{{"Subject: one\n\n1\n", "", time.Time{}, "offset 3"}},
		},
		{
			name: "text before the first From line",
			in:   "Subject: stray\n\nx\n\nFrom a\nSubject: one\n\n1\n",
			want: []wantMsg{{"Subject: stray\n\nx\n", "before the first", time.Time{}, "offset 0"}, {"Subject: one\n\n1\n", "", time.Time{}, "offset 19"}},
		},
		{
			name: "empty message",
			in:   "From a\n\nFrom b\nSubject: two\n\n2\n",
			want: []wantMsg{{"Subject: two\n\n2\n", "", time.Time{}, "offset 8"}},
			errs: []string{"offset 0: empty message"},
		},
		{
			name: "over the limit",
			in:   "From a\nSubject: big\n\n" + strings.Repeat("x", 300) + "\n\nFrom b\nSubject: two\n\n2\n",
			want: []wantMsg{{"Subject: two\n\n2\n", "", time.Time{}, "offset 323"}},
			errs: []string{"offset 0: message of 315 bytes is over the 200-byte limit"},
		},
		{
			name:  "status headers",
			in:    "From a\nStatus: RO\nX-Status: AF\n\n1\n\nFrom b\nX-Mozilla-Status: 1009\nX-Mozilla-Status2: 00000000\n\n2\n",
			want:  []wantMsg{{"Status: RO\nX-Status: AF\n\n1\n", "", time.Time{}, "offset 0"}, {"X-Mozilla-Status: 1009\nX-Mozilla-Status2: 00000000\n\n2\n", "", time.Time{}, "offset 35"}},
			flags: [][]string{{`\Seen`, `\Answered`, `\Flagged`}, {`\Seen`, `\Deleted`, "$Forwarded"}},
		},
		{
			name: "empty file",
			in:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.mbox")
			writeFile(t, path, tt.in)
			m := Mailbox{Name: "t", Path: path, Kind: KindMbox, MaxBytes: 200}
			msgs, errs := walkAll(t, m)
			if len(msgs) != len(tt.want) {
				t.Fatalf("Walk(%q) = %d messages %q, want %d", tt.in, len(msgs), msgs, len(tt.want))
			}
			for i, w := range tt.want {
				g := msgs[i]
				if string(g.Raw) != w.raw {
					t.Errorf("message %d Raw = %q, want %q", i, g.Raw, w.raw)
				}
				if w.note == "" && g.Note != "" || !strings.Contains(g.Note, w.note) {
					t.Errorf("message %d Note = %q, want %q", i, g.Note, w.note)
				}
				if !g.InternalDate.Equal(w.date) {
					t.Errorf("message %d InternalDate = %v, want %v", i, g.InternalDate, w.date)
				}
				if want := path + ":" + w.src; g.Source != want {
					t.Errorf("message %d Source = %q, want %q", i, g.Source, want)
				}
				if tt.flags != nil && !reflect.DeepEqual(g.Flags, tt.flags[i]) {
					t.Errorf("message %d Flags = %q, want %q", i, g.Flags, tt.flags[i])
				}
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("onErr got %v, want %q", errs, tt.errs)
			}
			for i, e := range tt.errs {
				if !strings.Contains(errs[i].Error(), e) || !strings.Contains(errs[i].Error(), path) {
					t.Errorf("onErr #%d = %v, want it to contain %q and the path", i, errs[i], e)
				}
			}
			if n, err := Count(m); err != nil || n != len(tt.want)+len(tt.errs) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(tt.want)+len(tt.errs))
			}
		})
	}
}

// TestMboxLongLines checks lines longer than the scanner's buffer: a "From "
// that starts a buffer chunk in the middle of a line is no separator.
func TestMboxLongLines(t *testing.T) {
	long := strings.Repeat("x", mboxBufSize)
	in := "From a\nSubject: one\n\n" + long + "From not a separator\n\n" + strings.Repeat("y", 3*mboxBufSize+7) + "\n\n" +
		"From b\nSubject: two\n\n2\n"
	path := filepath.Join(t.TempDir(), "long.mbox")
	writeFile(t, path, in)
	msgs, errs := walkAll(t, Mailbox{Path: path, Kind: KindMbox})
	if len(errs) != 0 || len(msgs) != 2 {
		t.Fatalf("Walk = %d messages, errors %v; want 2, none", len(msgs), errs)
	}
	if want := "Subject: one\n\n" + long + "From not a separator\n\n" + strings.Repeat("y", 3*mboxBufSize+7) + "\n"; string(msgs[0].Raw) != want {
		t.Errorf("message 0 has %d bytes, want %d", len(msgs[0].Raw), len(want))
	}
}

func TestMboxGzip(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("From a\n" + msg("one") + "\nFrom b\n" + msg("two") + "\n"))
	zw.Close()
	path := filepath.Join(t.TempDir(), "Old.mbox.gz")
	writeFile(t, path, gz.String())
	boxes, err := Discover(path, "")
	if err != nil || len(boxes) != 1 || boxes[0].Name != "Old" || boxes[0].Kind != KindMbox {
		t.Fatalf("Discover(%s) = %v, %v; want one mbox named Old", path, boxes, err)
	}
	msgs, errs := walkAll(t, boxes[0])
	if got := subjects(msgs); len(errs) != 0 || !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("Walk = %v, %v; want [one two], no errors", got, errs)
	}
}

func TestSingleMessageFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.eml")
	writeFile(t, path, msg("one"))
	boxes, err := Discover(path, "")
	if err != nil {
		t.Fatal(err)
	}
	msgs, errs := walkAll(t, boxes[0])
	if len(msgs) != 1 || string(msgs[0].Raw) != msg("one") || msgs[0].Source != path || len(errs) != 0 {
		t.Errorf("Walk(a.eml) = %v, %v; want the file as one message", msgs, errs)
	}
	if n, err := Count(boxes[0]); n != 1 || err != nil {
		t.Errorf("Count(a.eml) = %d, %v; want 1, nil", n, err)
	}
}

func TestDecodeMUTF7(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Sent", "Sent", true},
		{"&AMQ-rger", "Ärger", true},
		{"Tom &- Jerry", "Tom & Jerry", true},
		{"&ZeVnLIqe-", "日本語", true},
		{"&2D3eAA-", "😀", true},
		{"Ärger", "Ärger", false}, // UTF-8 on disk: kept
		{"&AMQ", "&AMQ", false},   // unterminated
		{"&AEE-", "&AEE-", false}, // encoded ASCII is invalid
		{"&2D0-", "&2D0-", false}, // lone surrogate
	}
	for _, tt := range tests {
		if got, ok := decodeMUTF7(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("decodeMUTF7(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCompareNatural(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"999.x", "1000.x", -1},
		{"1000.M9P1", "1000.M10P1", -1},
		{"0001.a", "1.a", 0},
		{"a", "a.b", -1},
		{"1000.M9P2", "1000.M9P10", -1},
		{"b", "a", 1},
	}
	for _, tt := range tests {
		got := compareNatural(tt.a, tt.b)
		if got > 0 {
			got = 1
		} else if got < 0 {
			got = -1
		}
		if got != tt.want {
			t.Errorf("compareNatural(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestFromLineDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"From exmh-workers-admin@redhat.com  Thu Aug 22 12:36:23 2002\n", time.Date(2002, 8, 22, 12, 36, 23, 0, time.UTC)},
		{"From zvfjenphuq@[1086695621] [ufa]  Sun Aug  5 09:51:15 2001\r\n", time.Date(2001, 8, 5, 9, 51, 15, 0, time.UTC)},
		{"From a Thu Aug 22 12:36:23 2002 +0200\n", time.Date(2002, 8, 22, 10, 36, 23, 0, time.UTC)},
		{"From a Thu Aug 22 12:36:23 +0200 2002\n", time.Date(2002, 8, 22, 10, 36, 23, 0, time.UTC)},
		{"From a Thu, 22 Aug 2002 12:36:23 -0000\n", time.Date(2002, 8, 22, 12, 36, 23, 0, time.UTC)},
		{"From MAILER-DAEMON\n", time.Time{}},
		{"From Thu Aug 22 12:36:23 2002\n", time.Time{}}, // no sender: the date is not where it should be
	}
	for _, tt := range tests {
		if got := fromLineDate([]byte(tt.in)); !got.Equal(tt.want) {
			t.Errorf("fromLineDate(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
