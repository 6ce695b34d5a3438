package query

import (
	"reflect"
	"testing"
	"time"
)

func TestParseIMAP(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Node
	}{
		{"ALL", All{}},
		{"all", All{}},
		{"SEEN", Flag{Name: `\Seen`}},
		{"unseen", Not{Node: Flag{Name: `\Seen`}}},
		{"KEYWORD $Important", Flag{Name: "$Important"}},
		{"UNKEYWORD Project-X", Not{Node: Flag{Name: "Project-X"}}},
		{"NEW", And{Nodes: []Node{Recent{}, Not{Node: Flag{Name: `\Seen`}}}}},
		{"OLD", Not{Node: Recent{}}},
		{`FROM alice`, Text{Field: FieldFrom, Value: "alice", Match: MatchSubstring}},
		{`SUBJECT "re: \"x\" \\ y"`, Text{Field: FieldSubject, Value: `re: "x" \ y`, Match: MatchSubstring}},
		{"BODY {5}\r\nhello", Text{Field: FieldBody, Value: "hello", Match: MatchSubstring}},
		{"BODY {5+}\nhe\"lo", Text{Field: FieldBody, Value: `he"lo`, Match: MatchSubstring}},
		{`TEXT "日本"`, Text{Field: FieldText, Value: "日本", Match: MatchSubstring}},
		{`HEADER X-Mailer ""`, Header{Name: "X-Mailer", Value: ""}},
		{`HEADER "List-Id" ilug`, Header{Name: "List-Id", Value: "ilug"}},
		{"SENTON 1-Mar-2024", Date{Op: DateOn, Year: 2024, Month: time.March, Day: 1}},
		{`SINCE "29-feb-2024"`, Date{Op: DateSince, Year: 2024, Month: time.February, Day: 29, Internal: true}},
		{"BEFORE 01-Jan-2000", Date{Op: DateBefore, Year: 2000, Month: time.January, Day: 1, Internal: true}},
		{"LARGER 1000", Size{Larger: true, Bytes: 1000}},
		{"SMALLER 0", Size{Bytes: 0}},
		{"UID 1:10,20,30:*", UIDs{Set: []UIDRange{{1, 10}, {20, 20}, {30, 0}}}},
		{"1,3:5", Seqs{Set: []UIDRange{{1, 1}, {3, 5}}}},
		{"*", Seqs{Set: []UIDRange{{0, 0}}}},
		{"OR SEEN FLAGGED", Or{Nodes: []Node{Flag{Name: `\Seen`}, Flag{Name: `\Flagged`}}}},
		{"NOT (SEEN FLAGGED)", Not{Node: And{Nodes: []Node{Flag{Name: `\Seen`}, Flag{Name: `\Flagged`}}}}},
		{"(SEEN)", Flag{Name: `\Seen`}},
		{"CHARSET UTF-8 SEEN DRAFT", And{Nodes: []Node{Flag{Name: `\Seen`}, Flag{Name: `\Draft`}}}},
		{"  SEEN   DRAFT ", And{Nodes: []Node{Flag{Name: `\Seen`}, Flag{Name: `\Draft`}}}},
		{"OR (SEEN DRAFT) NOT 1:5", Or{Nodes: []Node{And{Nodes: []Node{Flag{Name: `\Seen`}, Flag{Name: `\Draft`}}},
			Not{Node: Seqs{Set: []UIDRange{{1, 5}}}}}}},
	} {
		got, err := ParseIMAP(tt.in)
		if err != nil {
			t.Errorf("ParseIMAP(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseIMAP(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		again, err := ParseIMAP(IMAPString(got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseIMAP(IMAPString(%q) = %q) = %#v, %v", tt.in, IMAPString(got), again, err)
		}
	}
}

func TestParseIMAPErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", `parse "": no search criteria (ALL matches every message) (at offset 0)`},
		{"OR FROM x", `parse "OR FROM x": OR needs two search keys (at offset 9)`},
		{"FROM", `parse "FROM": FROM needs a string (at offset 4)`},
		{"FRO x", `parse "FRO x": unknown search key "FRO" (at offset 0)`},
		{"(SEEN", `parse "(SEEN": unclosed parenthesis (at offset 0)`},
		{"()", `parse "()": empty parentheses: a list needs at least one search key (at offset 0)`},
		{"SEEN)", `parse "SEEN)": unexpected ) (at offset 4)`},
		{"NOT", `parse "NOT": NOT needs a search key (at offset 3)`},
		{`SUBJECT "abc`, `parse "SUBJECT \"abc": unterminated quoted string (at offset 8)`},
		{`SUBJECT "a\b"`, `parse "SUBJECT \"a\\b\"": in a quoted string, \ may only escape " and \ (at offset 10)`},
		{"BODY {10}\r\nabc", `parse "BODY {10}\r\nabc": literal of 10 bytes, but only 3 follow (at offset 5)`},
		{"BODY {3}abc", `parse "BODY {3}abc": a literal's {n} must be followed by a line break (at offset 8)`},
		{"SINCE 2024-03-01", `parse "SINCE 2024-03-01": SINCE needs a date like 1-Feb-2024 (day-month-year, English month abbreviation), got "2024-03-01" (at offset 6)`},
		{"SENTON 30-Feb-2024", `parse "SENTON 30-Feb-2024": SENTON: February has no day 30 in 2024 (at offset 7)`},
		{"LARGER big", `parse "LARGER big": LARGER needs a number of bytes (at offset 7)`},
		{"LARGER 99999999999999999999", `parse "LARGER 99999999999999999999": LARGER: "99999999999999999999" is too large (at offset 7)`},
		{"UID 0:5", `parse "UID 0:5": bad UID set "0:5": want numbers from 1 (or *), ranges a:b, separated by commas (at offset 4)`},
		{"UID 1:x", `parse "UID 1:x": bad UID set "1:x": want numbers from 1 (or *), ranges a:b, separated by commas (at offset 6)`},
		{"1,", `parse "1,": bad sequence set "1,": want numbers from 1 (or *), ranges a:b, separated by commas (at offset 2)`},
		{"CHARSET KOI8-R SEEN", `parse "CHARSET KOI8-R SEEN": [BADCHARSET (UTF-8 US-ASCII)] charset "KOI8-R" is not supported; send the criteria in UTF-8 (at offset 8)`},
		{"SEEN CHARSET UTF-8", `parse "SEEN CHARSET UTF-8": CHARSET must come first (at offset 5)`},
		{"KEYWORD \\Seen", `parse "KEYWORD \\Seen": KEYWORD needs a keyword (an atom such as $Forwarded; system flags have keys of their own) (at offset 8)`},
		{"HEADER : x", `parse "HEADER : x": HEADER needs a field name (like X-Mailer), then a string (at offset 7)`},
		{"MODSEQ 5", `parse "MODSEQ 5": MODSEQ is not supported: the archive does not keep mod-sequences (at offset 0)`},
		{"$", `parse "$": $ (the saved result of an earlier SEARCH in a session) is not supported: there is no session (at offset 0)`},
	} {
		_, err := ParseIMAP(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseIMAP(%q) error:\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestParseIMAPDepth(t *testing.T) {
	deep := ""
	for range maxDepth + 1 {
		deep += "NOT "
	}
	if _, err := ParseIMAP(deep + "SEEN"); err == nil {
		t.Error("no error for NOT nested deeper than maxDepth")
	}
}

func FuzzParseIMAP(f *testing.F) {
	for _, s := range []string{"ALL", "OR SEEN (FLAGGED NOT DRAFT)", `HEADER X-Mailer ""`, "UID 1:*,5",
		"BODY {3}\r\nabc", `SUBJECT "a\"b"`, "SENTSINCE 1-Jan-2002 LARGER 100", "CHARSET UTF-8 TEXT café", "1:5,*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseIMAP(s)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("ParseIMAP(%q): error of type %T", s, err)
			}
			return
		}
		out := IMAPString(n)
		again, err := ParseIMAP(out)
		if err != nil {
			t.Fatalf("ParseIMAP(%q) = %q, which does not parse: %v", s, out, err)
		}
		if !reflect.DeepEqual(again, n) {
			t.Fatalf("ParseIMAP(%q) = %#v, printed %q, parsed again %#v", s, n, out, again)
		}
	})
}
