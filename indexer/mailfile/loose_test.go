package mailfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// emlx builds an .emlx file: the byte count, the message, Mail's plist.
func emlx(message string, flags int64, received int64) string {
	return fmt.Sprintf("%d       \n%s<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"+
		"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"+
		"<plist version=\"1.0\">\n<dict>\n\t<key>date-received</key>\n\t<integer>%d</integer>\n"+
		"\t<key>flags</key>\n\t<integer>%d</integer>\n</dict>\n</plist>\n", len(message), message, received, flags)
}

func TestDiscoverLoose(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "10.eml"), msg("ten"))
	writeFile(t, filepath.Join(root, "2.eml"), msg("two"))
	writeFile(t, filepath.Join(root, "notes.txt"), "not mail\n")
	writeFile(t, filepath.Join(root, "Projects", "a.EML"), msg("pa"))
	writeFile(t, filepath.Join(root, "Projects", "2019", "b.eml"), "From someone Thu Aug 22 12:36:23 2002\n"+msg("pb"))
	// Apple Mail V2+: X.mbox/<UUID>/Data/…/Messages/N.emlx, nested X.mbox.
	writeFile(t, filepath.Join(root, "Mail", "Work.mbox", "1B2C", "Data", "1", "Messages", "1.emlx"), emlx(msg("w1"), 1, 1_000_000_000))
	writeFile(t, filepath.Join(root, "Mail", "Work.mbox", "1B2C", "Data", "Messages", "2.partial.emlx"), emlx(msg("w2"), 0, 0))
	writeFile(t, filepath.Join(root, "Mail", "Work.mbox", "Info.plist"), "<plist/>\n")
	writeFile(t, filepath.Join(root, "Mail", "Work.mbox", "Clients.mbox", "Messages", "3.emlx"), emlx(msg("c3"), 0x14, 0))
	// Beside them, the formats that were there before keep their names.
	md := mkMaildir(t, filepath.Join(root, "Old"))
	writeFile(t, filepath.Join(md, "cur", "1.x:2,S"), msg("old"))
	writeFile(t, filepath.Join(root, "Lists.mbox"), "From a Thu Aug 22 12:36:23 2002\n"+msg("l1"))

	boxes, err := Discover(root, "")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name string
		Kind Kind
		N    int
	}
	var got []row
	for _, b := range boxes {
		n, err := Count(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row{b.Name, b.Kind, n})
	}
	want := []row{
		{"INBOX", KindLoose, 2},
		{"Lists", KindMbox, 1},
		{"Mail/Work", KindLoose, 2},
		{"Mail/Work/Clients", KindLoose, 1},
		{"Old", KindMaildir, 1},
		{"Projects", KindLoose, 1},
		{"Projects/2019", KindLoose, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Discover = %+v\nwant %+v", got, want)
	}
	for _, b := range boxes {
		wantNote := b.Name == "Mail/Work"
		if (b.Note != "") != wantNote || wantNote && !strings.Contains(b.Note, "1 of 2 messages are .partial.emlx") {
			t.Errorf("%s: Note = %q", b.Name, b.Note)
		}
	}

	// Walk order is natural by relative path; .emlx gives the counted bytes
	// and the plist's flags and date.
	msgs, errs := walkAll(t, boxes[0])
	if len(errs) != 0 || !reflect.DeepEqual(subjects(msgs), []string{"two", "ten"}) {
		t.Fatalf("INBOX: %v %v", subjects(msgs), errs)
	}
	msgs, errs = walkAll(t, boxes[2])
	if len(errs) != 0 || len(msgs) != 2 {
		t.Fatalf("Work: %d messages, %v", len(msgs), errs)
	}
	// "1B2C/Data/1/Messages/1.emlx" sorts before "1B2C/Data/Messages/…".
	if string(msgs[0].Raw) != msg("w1") || string(msgs[1].Raw) != msg("w2") {
		t.Errorf("Work raw = %q, %q", msgs[0].Raw, msgs[1].Raw)
	}
	if !reflect.DeepEqual(msgs[0].Flags, []string{`\Seen`}) || !msgs[0].InternalDate.Equal(time.Unix(1_000_000_000, 0)) {
		t.Errorf("1.emlx: flags %v date %v", msgs[0].Flags, msgs[0].InternalDate)
	}
	msgs, _ = walkAll(t, boxes[3])
	if !reflect.DeepEqual(msgs[0].Flags, []string{`\Answered`, `\Flagged`}) {
		t.Errorf("3.emlx flags = %v, want answered+flagged", msgs[0].Flags)
	}
	// An .eml starting with a From_ line is one message (kept whole), not an mbox.
	msgs, _ = walkAll(t, boxes[6])
	if len(msgs) != 1 || !strings.HasPrefix(string(msgs[0].Raw), "From someone") || msgs[0].Note == "" {
		t.Errorf("Projects/2019: %+v", msgs)
	}

	// --mailbox prefixes a tree; the root of loose files is the override.
	boxes, err = Discover(filepath.Join(root, "Projects"), "P")
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 2 || boxes[0].Name != "P" || boxes[1].Name != "P/2019" {
		t.Errorf("Discover(Projects, P) = %+v", boxes)
	}
	// An Apple X.mbox given directly is named after it.
	boxes, err = Discover(filepath.Join(root, "Mail", "Work.mbox"), "")
	if err != nil || len(boxes) != 2 || boxes[0].Name != "Work" || boxes[1].Name != "Clients" {
		t.Errorf("Discover(Work.mbox) = %+v, %v", boxes, err)
	}
	// A single .emlx given directly.
	boxes, err = Discover(filepath.Join(root, "Mail", "Work.mbox", "Clients.mbox", "Messages", "3.emlx"), "X")
	if err != nil || len(boxes) != 1 || boxes[0].Kind != KindMessage {
		t.Fatalf("Discover(3.emlx) = %+v, %v", boxes, err)
	}
	msgs, _ = walkAll(t, boxes[0])
	if len(msgs) != 1 || string(msgs[0].Raw) != msg("c3") {
		t.Errorf("3.emlx given directly: %+v", msgs)
	}
}

func TestParseEMLX(t *testing.T) {
	m := msg("hello")
	good := emlx(m, 1|4|16, 1_200_000_000)
	for _, tc := range []struct {
		name      string
		in        string
		raw       string
		flags     []string
		note, err string
	}{
		{"good", good, m, []string{`\Seen`, `\Answered`, `\Flagged`}, "", ""},
		{"crlf count line", strings.Replace(good, "       \n", "\r\n", 1), m, []string{`\Seen`, `\Answered`, `\Flagged`}, "", ""},
		{"every flag", emlx(m, 1|2|4|16|64|256|1<<10|1<<24, 0), m, []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, "$Forwarded"}, "", ""},
		{"no plist", fmt.Sprintf("%d\n%s", len(m), m), m, nil, "", ""},
		{"binary plist", fmt.Sprintf("%d\n%sbplist00\x00\x01", len(m), m), m + "bplist00\x00\x01", nil, "bad .emlx byte count", ""},
		{"truncated", good[:30], good[len(fmt.Sprint(len(m)))+8 : 30], nil, "truncated .emlx", ""},
		{"cut in the plist", good[:len(m)+60], m, nil, "", ""},
		{"count too small", strings.Replace(good, fmt.Sprint(len(m)), fmt.Sprint(len(m)-10), 1), m, []string{`\Seen`, `\Answered`, `\Flagged`}, "bad .emlx byte count", ""},
		{"no count line", m, m, nil, "no byte count line", ""},
		{"bad count", "12x\n" + m, "", nil, "", "first line is not a byte count"},
		{"negative count", "-5\n" + m, "", nil, "", "first line is not a byte count"},
		{"garbage", "\x00\x01\x02 not mail at all", "", nil, "", "first line is not a byte count"},
		{"empty", "", "", nil, "", "first line is not a byte count"},
	} {
		e, err := ParseEMLX([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: ParseEMLX err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: ParseEMLX err = %v", tc.name, err)
			continue
		}
		if string(e.Raw) != tc.raw || !reflect.DeepEqual(e.Flags, tc.flags) {
			t.Errorf("%s: ParseEMLX = %q %v, want %q %v", tc.name, e.Raw, e.Flags, tc.raw, tc.flags)
		}
		if (tc.note == "") != (e.Note == "") || !strings.Contains(e.Note, tc.note) {
			t.Errorf("%s: Note = %q, want %q", tc.name, e.Note, tc.note)
		}
	}
}

// Bad .emlx files in a mailbox: each is a message with a note or one onErr
// line naming the file; the others are imported.
func TestWalkLooseBadFiles(t *testing.T) {
	dir := t.TempDir()
	m := msg("ok")
	writeFile(t, filepath.Join(dir, "1.emlx"), emlx(m, 0, 0))
	writeFile(t, filepath.Join(dir, "2.emlx"), emlx(m, 0, 0)[:40])    // truncated
	writeFile(t, filepath.Join(dir, "3.emlx"), "99999999\n"+m)        // count past the end
	writeFile(t, filepath.Join(dir, "4.emlx"), "not a count\nbinary") // not mail
	writeFile(t, filepath.Join(dir, "5.eml"), "")                     // empty
	writeFile(t, filepath.Join(dir, "6.eml"), msg("six"))
	boxes, err := Discover(dir, "")
	if err != nil || len(boxes) != 1 {
		t.Fatalf("Discover = %+v, %v", boxes, err)
	}
	msgs, errs := walkAll(t, boxes[0])
	if len(msgs) != 4 || len(errs) != 2 {
		t.Fatalf("Walk: %d messages, errors %v; want 4 and 2", len(msgs), errs)
	}
	for i, want := range []string{"", "truncated .emlx", "truncated .emlx", ""} {
		if !strings.Contains(msgs[i].Note, want) || (want == "") != (msgs[i].Note == "") {
			t.Errorf("message %d (%s): Note = %q, want %q", i, msgs[i].Source, msgs[i].Note, want)
		}
	}
	for i, name := range []string{"4.emlx", "5.eml"} {
		if !strings.Contains(errs[i].Error(), name) {
			t.Errorf("error %d = %v, want it to name %s", i, errs[i], name)
		}
	}
}

func FuzzParseEMLX(f *testing.F) {
	m := msg("fuzz")
	f.Add([]byte(emlx(m, 17, 5)))
	f.Add([]byte(emlx(m, 17, 5)[:30]))
	f.Add([]byte("3\nabc"))
	f.Add([]byte("0\n<?xml"))
	f.Add([]byte(m))
	f.Add([]byte("  12  \r\nSubject: x\n\n\n<plist><key>flags</key><real>3.0</real>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEMLX(b)
		if err != nil {
			return
		}
		// Nothing invented: Raw is a piece of the file.
		if !bytes.Contains(b, e.Raw) {
			t.Fatalf("ParseEMLX(%q): Raw %q is not in the input", b, e.Raw)
		}
		for _, fl := range e.Flags {
			if !strings.HasPrefix(fl, `\`) && fl != "$Forwarded" {
				t.Fatalf("ParseEMLX(%q): flag %q", b, fl)
			}
		}
	})
}

// A file of a well-formed .emlx always gives back exactly its message.
func FuzzEMLXRoundTrip(f *testing.F) {
	f.Add("Subject: a\n\nbody\n", int64(1))
	f.Add("Subject: a\r\n\r\n<?xml in the body\r\n", int64(0))
	f.Fuzz(func(t *testing.T, message string, flags int64) {
		in := emlx(message, flags, 0)
		e, err := ParseEMLX([]byte(in))
		if err != nil || string(e.Raw) != message || e.Note != "" {
			t.Fatalf("ParseEMLX(emlx(%q)) = %q, %q, %v", message, e.Raw, e.Note, err)
		}
	})
}

func TestLooseKeysStable(t *testing.T) {
	// A new file sorting first still leaves the others' walk order; the
	// importer's content rule gives it the next UID (service tests).
	dir := t.TempDir()
	for i := 1; i <= 3; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("%d.eml", i*10)), msg(fmt.Sprint(i)))
	}
	b := Mailbox{Name: "INBOX", Path: dir, Kind: KindLoose}
	msgs, _ := walkAll(t, b)
	if got := subjects(msgs); !reflect.DeepEqual(got, []string{"1", "2", "3"}) {
		t.Fatalf("walk order %v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "5.eml"), []byte(msg("new")), 0o644); err != nil {
		t.Fatal(err)
	}
	msgs, _ = walkAll(t, b)
	if got := subjects(msgs); !reflect.DeepEqual(got, []string{"new", "1", "2", "3"}) {
		t.Fatalf("walk order %v", got)
	}
}
