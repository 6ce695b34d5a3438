package query

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseHuman(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical String() of the tree
	}{
		{"invoice", "invoice"},
		{"  invoice  ", "invoice"},
		{"Invoice Receipt", "Invoice Receipt"},
		{`"to be or not to be"`, `"to be or not to be"`},
		{`inv*`, `inv*`},
		{`from:alice@example.org`, `from:alice@example.org`},
		{`FROM:alice`, `from:alice`},
		{`From:Ali*`, `from:Ali*`},
		{`to:bob cc:carol bcc:dave`, `to:bob cc:carol bcc:dave`},
		{`subject:"quarterly report"`, `subject:"quarterly report"`},
		{`body:"out of office"`, `body:"out of office"`},
		{`attachment:report.pdf`, `attachment:report.pdf`},
		{`filename:q3*`, `filename:q3*`},
		{`before:2024-03-01`, `before:2024-03-01`},
		{`after:2024/03/01`, `after:2024-03-01`},
		{`on:2024-02-29`, `on:2024-02-29`},
		{`larger:100k`, `larger:102400`},
		{`larger:100K`, `larger:102400`},
		{`smaller:2M`, `smaller:2097152`},
		{`smaller:1g`, `smaller:1073741824`},
		{`larger:0`, `larger:0`},
		{`has:attachment`, `has:attachment`},
		{`HAS:Attachment`, `has:attachment`},
		{`account:alice`, `account:alice`},
		{`account:Alice@Example.org`, `account:Alice@Example.org`},
		{`mailbox:Archive/2024.Q1`, `mailbox:Archive/2024.Q1`},
		{`mailbox:"Sent Items"`, `mailbox:"Sent Items"`},
		{`mailbox:"50%"`, `mailbox:"50%"`},
		{`mailbox:inbox`, `mailbox:INBOX`},
		{`mailbox:InBox/sub`, `mailbox:InBox/sub`},
		{`-from:bob`, `-from:bob`},
		{`-"out of office"`, `-"out of office"`},
		{`NOT from:bob`, `-from:bob`},
		{`--x`, `--x`},
		{`from:a OR from:b`, `from:a OR from:b`},
		{`a b OR c d`, `a b OR c d`},
		{`a AND b`, `a b`},
		{`(a b) OR c`, `(a b) OR c`},
		{`(a OR b) OR c`, `a OR b OR c`},
		{`a OR (b OR c)`, `a OR b OR c`},
		{`((a b) c)`, `a b c`},
		{`(from:a OR from:b) subject:report`, `from:a OR from:b subject:report`},
		{`-(a b)`, `-(a b)`},
		{`-(a OR b)`, `-(a OR b)`},
		{`NOT(a)`, `-a`},
		{`a OR -b`, `a OR -b`},
		{`a OR NOT b`, `a OR -b`},
		{`(a)(b)`, `a b`},
		{`http://example.org/x`, `http://example.org/x`},
		{`10:30`, `10:30`},
		{`x-y:z`, `x-y:z`},
		{`e-mail`, `e-mail`},
		{`or and not`, `or and not`},
		{`"OR"`, `"OR"`},
		{`-OR-`, `-OR-`},
		{`a*b`, `a*b`},
		{`foo"bar`, `foo"bar`},
		{`"say \"hi\""`, `"say \"hi\""`},
		{`"back\slash"`, `"back\\slash"`},
		{`"re:meeting"`, `"re:meeting"`},
		{`from:"x" to:y`, `from:"x" to:y`},
		{`subject:-x`, `subject:-x`},
		{`subject:OR`, `subject:OR`},
		{"a\tb\nc\u00a0d", "a b c d"},
		{`東京`, `東京`},
		{`"a"`, `"a"`},
		{`example.or*`, `example.or*`},
		{`don't*`, `don't*`},
		{`(OR*)`, `OR*`},
		{`x1:ab*`, `x1:ab*`},
	}
	for _, tt := range tests {
		n, err := ParseHuman(tt.in)
		if err != nil {
			t.Errorf("ParseHuman(%q) = error %v, want %s", tt.in, err, tt.want)
			continue
		}
		if got := n.String(); got != tt.want {
			t.Errorf("ParseHuman(%q) = %s, want %s", tt.in, got, tt.want)
		}
		// The canonical form parses back to the same tree.
		n2, err := ParseHuman(n.String())
		if err != nil || !reflect.DeepEqual(n, n2) {
			t.Errorf("ParseHuman(%q) = %#v, %v; want %#v", n.String(), n2, err, n)
		}
	}
}

func TestParseHumanTree(t *testing.T) {
	tests := []struct {
		in   string
		want Node
	}{
		{"invoice", Text{Field: FieldText, Value: "invoice", Match: MatchWords}},
		{`"to be"`, Text{Field: FieldText, Value: "to be", Match: MatchPhrase}},
		{`Inv*`, Text{Field: FieldText, Value: "Inv", Match: MatchPrefix}},
		{`from:alice@example.org`, Text{Field: FieldFrom, Value: "alice@example.org", Match: MatchWords}},
		{`subject:"q report"`, Text{Field: FieldSubject, Value: "q report", Match: MatchPhrase}},
		{`before:2024-03-01`, Date{Op: DateBefore, Year: 2024, Month: time.March, Day: 1}},
		{`after:2024-03-01`, Date{Op: DateSince, Year: 2024, Month: time.March, Day: 1}},
		{`on:2024-12-31`, Date{Op: DateOn, Year: 2024, Month: time.December, Day: 31}},
		{`larger:100k`, Size{Larger: true, Bytes: 102400}},
		{`smaller:10`, Size{Larger: false, Bytes: 10}},
		{`has:attachment`, HasAttachment{}},
		{`account:a`, Account{Name: "a"}},
		{`mailbox:"Sent Items"`, Mailbox{Name: "Sent Items"}},
		{`mailbox:"100% * more"`, Mailbox{Name: "100% * more"}},
		{`-from:bob`, Not{Node: Text{Field: FieldFrom, Value: "bob", Match: MatchWords}}},
		{`a b OR c`, And{Nodes: []Node{
			Text{Value: "a"},
			Or{Nodes: []Node{Text{Value: "b"}, Text{Value: "c"}}},
		}}},
		{`-a -b`, And{Nodes: []Node{Not{Node: Text{Value: "a"}}, Not{Node: Text{Value: "b"}}}}},
	}
	for _, tt := range tests {
		n, err := ParseHuman(tt.in)
		if err != nil || !reflect.DeepEqual(n, tt.want) {
			t.Errorf("ParseHuman(%q) = %#v, %v, want %#v", tt.in, n, err, tt.want)
		}
	}
}

func TestParseHumanErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", `parse "": empty query (at offset 0)`},
		{"ab\xffc", `parse "ab\xffc": query is not valid UTF-8 (at offset 2)`},
		{"  \t", `parse "  \t": empty query (at offset 0)`},
		{"from:", `parse "from:": from: needs a value (at offset 5)`},
		{"from: alice", `parse "from: alice": from: needs a value (at offset 5)`},
		{"subject:)", `parse "subject:)": subject: needs a value (at offset 8)`},
		{"before:2024-13-01", `parse "before:2024-13-01": bad date "2024-13-01", want YYYY-MM-DD (at offset 7)`},
		{"before:2023-02-29", `parse "before:2023-02-29": bad date "2023-02-29", want YYYY-MM-DD (at offset 7)`},
		{"after:2024-3-1", `parse "after:2024-3-1": bad date "2024-3-1", want YYYY-MM-DD (at offset 6)`},
		{"on:0000-01-01", `parse "on:0000-01-01": bad date "0000-01-01", want YYYY-MM-DD (at offset 3)`},
		{"on:2024-01/01", `parse "on:2024-01/01": bad date "2024-01/01", want YYYY-MM-DD (at offset 3)`},
		{"foo:bar", `parse "foo:bar": unknown key "foo" (known: from, to, cc, bcc, rcpt, subject, body, attachment, filename, list, before, after, on, newer_than, older_than, larger, smaller, has, is, account, mailbox, in; quote a word that contains a colon) (at offset 0)`},
		{"a Re: x", `parse "a Re: x": unknown key "re" (known: from, to, cc, bcc, rcpt, subject, body, attachment, filename, list, before, after, on, newer_than, older_than, larger, smaller, has, is, account, mailbox, in; quote a word that contains a colon) (at offset 2)`},
		{`"abc`, `parse "\"abc": unterminated quote (at offset 0)`},
		{`subject:"abc\"`, `parse "subject:\"abc\\\"": unterminated quote (at offset 8)`},
		{`"a"b`, `parse "\"a\"b": closing quote must be followed by a space or ")" (at offset 3)`},
		{`"a"(b)`, `parse "\"a\"(b)": closing quote must be followed by a space or ")" (at offset 3)`},
		{`""`, `parse "\"\"": empty phrase (at offset 0)`},
		{`from:"  "`, `parse "from:\"  \"": empty phrase (at offset 5)`},
		{`"..."`, `parse "\"...\"": "..." has no letters or digits to search for (at offset 0)`},
		{`a & b`, `parse "a & b": "&" has no letters or digits to search for (at offset 2)`},
		{`(a b`, `parse "(a b": unclosed "(" (at offset 0)`},
		{`a (b (c)`, `parse "a (b (c)": unclosed "(" (at offset 2)`},
		{`a b)`, `parse "a b)": unmatched ")" (at offset 3)`},
		{`)`, `parse ")": unmatched ")" (at offset 0)`},
		{`()`, `parse "()": empty parentheses (at offset 0)`},
		{`a ( )`, `parse "a ( )": empty parentheses (at offset 2)`},
		{`a OR`, `parse "a OR": OR needs a term on each side (at offset 2)`},
		{`OR a`, `parse "OR a": OR needs a term on each side (at offset 0)`},
		{`a OR OR b`, `parse "a OR OR b": OR needs a term on each side (at offset 2)`},
		{`(a OR) b`, `parse "(a OR) b": OR needs a term on each side (at offset 3)`},
		{`a AND`, `parse "a AND": AND needs a term on each side (at offset 2)`},
		{`AND a`, `parse "AND a": AND needs a term on each side (at offset 0)`},
		{`a OR AND b`, `parse "a OR AND b": OR needs a term on each side (at offset 2)`},
		{`-`, `parse "-": "-" needs a term right after it (at offset 0)`},
		{`a -`, `parse "a -": "-" needs a term right after it (at offset 2)`},
		{`- a`, `parse "- a": "-" needs a term right after it (at offset 0)`},
		{`(a -)`, `parse "(a -)": "-" needs a term right after it (at offset 3)`},
		{`-OR a`, `parse "-OR a": "-" needs a term right after it, not OR (at offset 0)`},
		{`NOT`, `parse "NOT": NOT needs a term after it (at offset 0)`},
		{`a NOT OR b`, `parse "a NOT OR b": NOT needs a term after it (at offset 2)`},
		{`*`, `parse "*": prefix "*" is too short, give at least 2 characters before * (at offset 0)`},
		{`a*`, `parse "a*": prefix "a*" is too short, give at least 2 characters before * (at offset 0)`},
		{`from:a*`, `parse "from:a*": prefix "a*" is too short, give at least 2 characters before * (at offset 5)`},
		{`from:alice@ex*`, `parse "from:alice@ex*": prefix "alice@ex*" must be one word, "@" splits words (use a phrase or a shorter prefix) (at offset 5)`},
		{`foo**`, `parse "foo**": prefix "foo**" must be one word, "*" splits words (use a phrase or a shorter prefix) (at offset 0)`},
		{`.net*`, `parse ".net*": prefix ".net*" must be one word, "." splits words (use a phrase or a shorter prefix) (at offset 0)`},
		{`東京*`, `parse "東京*": prefix "東京*": CJK characters are indexed one by one, search without * (at offset 0)`},
		{`공부*`, `parse "공부*": prefix "공부*": CJK characters are indexed one by one, search without * (at offset 0)`},
		{`larger:`, `parse "larger:": larger: needs a value (at offset 7)`},
		{`larger:10x`, `parse "larger:10x": bad size "10x", want a number of bytes, optionally with suffix k, M or G (at offset 7)`},
		{`larger:k`, `parse "larger:k": bad size "k", want a number of bytes, optionally with suffix k, M or G (at offset 7)`},
		{`smaller:-1`, `parse "smaller:-1": bad size "-1", want a number of bytes, optionally with suffix k, M or G (at offset 8)`},
		{`larger:99999999999999999999`, `parse "larger:99999999999999999999": size "99999999999999999999" is too large (at offset 7)`},
		{`larger:9999999999G`, `parse "larger:9999999999G": size "9999999999G" is too large (at offset 7)`},
		{`has:pdf`, `parse "has:pdf": unknown has: value "pdf" (known: attachment) (at offset 4)`},
		{`account:""`, `parse "account:\"\"": account: needs a value (at offset 8)`},
		{`mailbox:Archive/*`, `parse "mailbox:Archive/*": mailbox: takes one exact name, wildcards * and % are not supported (quote the name if it contains them) (at offset 8)`},
		{strings.Repeat("(", 101) + "a" + strings.Repeat(")", 101), `parse "` + strings.Repeat("(", 101) + "a" + strings.Repeat(")", 101) + `": query nested too deeply (more than 100 levels) (at offset 100)`},
		{strings.Repeat("-", 101) + "a", `parse "` + strings.Repeat("-", 101) + `a": query nested too deeply (more than 100 levels) (at offset 100)`},
	}
	for _, tt := range tests {
		n, err := ParseHuman(tt.in)
		if err == nil {
			t.Errorf("ParseHuman(%q) = %s, want error %s", tt.in, n, tt.want)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("ParseHuman(%q) = error\n\t%s\nwant\n\t%s", tt.in, got, tt.want)
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Query != tt.in {
			t.Errorf("ParseHuman(%q) = error %#v, want *ParseError for the query", tt.in, err)
		}
	}
}

func TestScope(t *testing.T) {
	tests := []struct {
		in                  string
		accounts, mailboxes []string
	}{
		{"invoice", nil, nil},
		{"account:a", []string{"a"}, nil},
		{"mailbox:inbox", nil, []string{"INBOX"}},
		{"account:a mailbox:X invoice account:a", []string{"a"}, []string{"X"}},
		{"account:a OR account:b x", []string{"a", "b"}, nil},
		{"(mailbox:a OR mailbox:b) account:c", []string{"c"}, []string{"a", "b"}},
		{"mailbox:a OR x", nil, nil},
		{"mailbox:a OR account:b", nil, nil},
		{"-account:a", nil, nil},
		{"-(account:a b)", nil, nil},
	}
	for _, tt := range tests {
		n, err := ParseHuman(tt.in)
		if err != nil {
			t.Fatalf("ParseHuman(%q): %v", tt.in, err)
		}
		acc, mbox := Scope(n)
		if !reflect.DeepEqual(acc, tt.accounts) || !reflect.DeepEqual(mbox, tt.mailboxes) {
			t.Errorf("Scope(%s) = %q, %q, want %q, %q", n, acc, mbox, tt.accounts, tt.mailboxes)
		}
	}
}

func TestStringDebugForms(t *testing.T) {
	tests := []struct {
		n    Node
		want string
	}{
		{All{}, "ALL"},
		{And{}, "ALL"},
		{Or{}, "NONE"},
		{Text{Field: FieldBody, Value: "nsubscri", Match: MatchSubstring}, `body:substring("nsubscri")`},
		{Text{Field: FieldText, Value: "a b", Match: MatchWords}, `words("a b")`},
		{Text{Field: FieldText, Value: "OR", Match: MatchWords}, `words("OR")`},
		{Text{Field: FieldFrom, Value: "OR", Match: MatchWords}, `from:OR`},
		{Date{Op: DateSince, Year: 2024, Month: 3, Day: 1, Internal: true}, "internal-after:2024-03-01"},
		{And{Nodes: []Node{Text{Value: "a"}, And{Nodes: []Node{Text{Value: "b"}, Text{Value: "c"}}}}}, "a (b c)"},
		{Not{Node: Or{Nodes: []Node{Text{Value: "a"}, Text{Value: "b"}}}}, "-(a OR b)"},
		{Account{Name: "a b"}, `account:"a b"`},
	}
	for _, tt := range tests {
		if got := tt.n.String(); got != tt.want {
			t.Errorf("%#v.String() = %s, want %s", tt.n, got, tt.want)
		}
	}
}

func FuzzParseHuman(f *testing.F) {
	for _, s := range []string{
		"invoice", `"to be or not to be"`, "inv*", "from:alice@example.org",
		`subject:"quarterly report"`, "before:2024-03-01 after:2024/01/01 on:2024-02-29",
		"larger:100k smaller:2M", "has:attachment", `account:a mailbox:"Sent Items"`,
		"-from:bob", `-"out of office"`, "(from:a OR from:b) -x", "a AND NOT b",
		"http://x.org", `"a\"b\\c"`, "(((a)))", "a OR", "foo:bar", "東京 ひら*",
		"in:inbox is:unread", "-is:read OR is:flagged", "newer_than:07d older_than:1Y",
		`list:"Talk" list:a.b* filename:x.pdf`, "is:answered -is:unanswered",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseHuman(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(s) || pe.Query != s {
				t.Fatalf("ParseHuman(%q) = error %#v, want a *ParseError within the query", s, err)
			}
			return
		}
		if n == nil {
			t.Fatalf("ParseHuman(%q) = nil, nil", s)
		}
		str := n.String()
		n2, err := ParseHuman(str)
		if err != nil {
			t.Fatalf("ParseHuman(%q) = %s; ParseHuman(%q) = error %v", s, str, str, err)
		}
		if !reflect.DeepEqual(n, n2) {
			t.Fatalf("ParseHuman(%q) = %#v; ParseHuman(%q) = %#v", s, n, str, n2)
		}
		if _, err := Bleve(n); err != nil {
			t.Fatalf("Bleve(%s) = %v", str, err)
		}
		Scope(n)
	})
}
