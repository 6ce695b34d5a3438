package mailfile

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Inbox,Important,Opened", []string{"Inbox", "Important", "Opened"}},
		{" Inbox , Sent ", []string{"Inbox", "Sent"}},
		{`Archived,"Clients, 2019",Opened`, []string{"Archived", "Clients, 2019", "Opened"}},
		{`"say \"hi\"",x`, []string{`say "hi"`, "x"}},
		{"Work/Projects/Q1,Category Updates", []string{"Work/Projects/Q1", "Category Updates"}},
		{"=?UTF-8?Q?=C3=84rger?=,Inbox", []string{"Ärger", "Inbox"}},
		{"=?UTF-8?B?w4RyZ2VyLEluYm94?=", []string{"Ärger", "Inbox"}}, // "Ärger,Inbox" encoded whole
		{"=?ISO-8859-1?Q?Caf=E9?=", []string{"Café"}},
		{"=?bogus?Q?x?=", []string{"=?bogus?Q?x?="}},
		{"Inbox,\r\n Sent", []string{"Inbox", "Sent"}},
		{",,, ,", nil},
		{`"unterminated, quote`, []string{"unterminated, quote"}},
		{"", nil},
	} {
		if got := ParseLabels(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLabels(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTakeoutPlacement(t *testing.T) {
	for _, tc := range []struct {
		labels, boxes, flags []string
		prefix               string
	}{
		{[]string{"Inbox", "Important", "Opened"}, []string{"INBOX", "Important"}, []string{`\Seen`}, ""},
		{[]string{"Sent", "Unread", "Opened"}, []string{"Sent"}, nil, ""},
		{[]string{"Starred", "Inbox", "Category Promotions", "Category Personal"}, []string{"Starred", "INBOX"},
			[]string{`\Flagged`, "$Category_Personal", "$Category_Promotions"}, ""},
		{[]string{"Opened", "Category Updates"}, []string{"Archived"}, []string{`\Seen`, "$Category_Updates"}, ""},
		{nil, []string{"Archived"}, nil, ""},
		{[]string{"/a//b/", "inbox", "Inbox", "x\x01y"}, []string{"a/b", "INBOX", "xy"}, nil, ""},
		{[]string{"Inbox", "Work"}, []string{"gmail/INBOX", "gmail/Work"}, nil, "gmail"},
	} {
		boxes, flags := takeoutPlacement(tc.labels, tc.prefix)
		if !reflect.DeepEqual(boxes, tc.boxes) || !reflect.DeepEqual(flags, tc.flags) {
			t.Errorf("takeoutPlacement(%q, %q) = %q %q, want %q %q", tc.labels, tc.prefix, boxes, flags, tc.boxes, tc.flags)
		}
	}
}

func FuzzParseLabels(f *testing.F) {
	for _, s := range []string{"Inbox,Important", `"a, b",c`, "=?UTF-8?Q?=C3=84?=", `"\"`, "\r\n \t,", "=?UTF-8?B?", strings.Repeat("x,", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		labels := ParseLabels(s)
		if len(labels) > maxLabels {
			t.Fatalf("ParseLabels: %d labels, over %d", len(labels), maxLabels)
		}
		for _, l := range labels {
			if l == "" || strings.TrimSpace(l) != l {
				t.Fatalf("ParseLabels(%q): label %q blank or not trimmed", s, l)
			}
		}
		boxes, flags := takeoutPlacement(labels, "")
		if len(boxes) == 0 {
			t.Fatalf("takeoutPlacement(%q): no mailbox", labels)
		}
		for _, b := range boxes {
			if b == "" || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") || strings.Contains(b, "//") {
				t.Fatalf("takeoutPlacement(%q): mailbox %q", labels, b)
			}
		}
		for _, fl := range flags {
			if strings.ContainsAny(fl, " (){%*\"\\]") && !strings.HasPrefix(fl, `\`) {
				t.Fatalf("takeoutPlacement(%q): keyword %q is not an atom", labels, fl)
			}
		}
	})
}

// Labels quoted by the rules Takeout writes come back as they were.
func FuzzLabelsRoundTrip(f *testing.F) {
	f.Add("Clients, 2019", "Work/Q1")
	f.Add(`say "hi"`, `back\slash`)
	f.Fuzz(func(t *testing.T, a, b string) {
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		if a == "" || b == "" || !utf8.ValidString(a+b) || strings.ContainsAny(a+b, "\r\n") ||
			strings.Contains(a+b, "=?") {
			return
		}
		q := func(s string) string {
			return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
		}
		got := ParseLabels(q(a) + "," + q(b))
		if !reflect.DeepEqual(got, []string{a, b}) {
			t.Fatalf("ParseLabels(%s,%s) = %q", q(a), q(b), got)
		}
	})
}

const takeoutFrom = "From 1588112345678901234@xxx Wed Apr 01 10:00:00 +0000 2020\n"

func takeoutMsg(labels, subject string) string {
	return takeoutFrom + "X-GM-THRID: 1588112345678901234\nX-Gmail-Labels: " + labels + "\n" + msg(subject) + "\n"
}

func TestTakeoutWalk(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "All mail Including Spam and Trash.mbox")
	huge := strings.Repeat("Label,", 1<<20/6) // a 1 MB label line
	writeFile(t, p, takeoutMsg("Inbox,Important,Opened", "one")+
		takeoutMsg(`Starred,Unread,"Clients, 2019"`, "two")+
		takeoutFrom+msg("three")+"\n"+ // no labels
		takeoutMsg(huge, "four"))
	boxes, err := Discover(p, "")
	if err != nil || len(boxes) != 1 || boxes[0].Kind != KindTakeout || boxes[0].Name != "" {
		t.Fatalf("Discover = %+v, %v", boxes, err)
	}
	msgs, errs := walkAll(t, boxes[0])
	if len(errs) != 0 || len(msgs) != 4 {
		t.Fatalf("Walk: %d messages, %v", len(msgs), errs)
	}
	want := []struct{ boxes, flags []string }{
		{[]string{"INBOX", "Important"}, []string{`\Seen`}},
		{[]string{"Starred", "Clients, 2019"}, []string{`\Flagged`}},
		{[]string{"Archived"}, nil},
		{[]string{"Label"}, nil},
	}
	for i, w := range want {
		if !reflect.DeepEqual(msgs[i].Mailboxes, w.boxes) || !reflect.DeepEqual(msgs[i].Flags, w.flags) {
			t.Errorf("message %d: %q %q, want %q %q", i, msgs[i].Mailboxes, msgs[i].Flags, w.boxes, w.flags)
		}
	}
	if !strings.Contains(msgs[2].Note, "no X-Gmail-Labels") || !strings.Contains(msgs[3].Note, "labels past that ignored") {
		t.Errorf("notes %q, %q", msgs[2].Note, msgs[3].Note)
	}
	// Stored whole: the 1 MB label line is in the message.
	if len(msgs[3].Raw) < 1<<20 {
		t.Errorf("message with a 1 MB label line has %d bytes", len(msgs[3].Raw))
	}

	// A plain mbox is not a Takeout unless forced; the override prefixes.
	plain := filepath.Join(dir, "plain.mbox")
	writeFile(t, plain, takeoutFrom+msg("x")+"\n"+takeoutMsg("Inbox", "y"))
	if boxes, _ := Discover(plain, ""); len(boxes) != 1 || boxes[0].Kind != KindMbox {
		t.Errorf("Discover(plain) = %+v", boxes)
	}
	boxes, err = DiscoverOptions(plain, Options{Mailbox: "gmail", Takeout: true})
	if err != nil || boxes[0].Kind != KindTakeout {
		t.Fatalf("DiscoverOptions(plain, takeout) = %+v, %v", boxes, err)
	}
	// NoTakeout keeps a Takeout a plain mbox.
	if boxes, _ := DiscoverOptions(p, Options{NoTakeout: true}); len(boxes) != 1 || boxes[0].Kind != KindMbox {
		t.Errorf("DiscoverOptions(takeout, NoTakeout) = %+v", boxes)
	}
	msgs, _ = walkAll(t, boxes[0])
	if !reflect.DeepEqual(msgs[0].Mailboxes, []string{"gmail/Archived"}) || !reflect.DeepEqual(msgs[1].Mailboxes, []string{"gmail/INBOX"}) {
		t.Errorf("forced Takeout: %q %q", msgs[0].Mailboxes, msgs[1].Mailboxes)
	}
}
