package query

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Node is a node of the query AST. Both parsers of this package produce
// it and Bleve translates it. The set of node types is closed: only the
// types of this package implement Node.
//
// String returns a canonical form in the human syntax. For every tree
// returned by ParseHuman, ParseHuman(n.String()) returns an equal tree.
// Nodes that the human syntax cannot express (MatchSubstring, internal
// dates, multi-word MatchWords values) print in a debug form that does not
// parse.
type Node interface {
	String() string
	node()
}

// And matches messages that match every node in Nodes; an empty And matches
// every message.
type And struct{ Nodes []Node }

// Or matches messages that match at least one node in Nodes; an empty Or
// matches nothing.
type Or struct{ Nodes []Node }

// Not matches every message that Node does not match: the complement is
// taken over all messages, so a query of negations alone is "all messages
// except ...".
type Not struct{ Node Node }

// All matches every message (IMAP ALL).
type All struct{}

// Field names the part of a message a Text node searches.
type Field int

const (
	FieldText       Field = iota // any text field: addresses, subject, body, attachment names and text
	FieldFrom                    // From: addresses
	FieldTo                      // To: addresses
	FieldCc                      // Cc: addresses
	FieldBcc                     // Bcc: addresses
	FieldSubject                 // Subject:
	FieldBody                    // body text
	FieldAttachment              // attachment file names and extracted attachment text
	FieldFilename                // attachment file names only
	FieldList                    // List-Id: header (list:)
	FieldRcpt                    // any recipient: To, Cc, Bcc headers and envelope RCPT TO (rcpt:)
	// FieldBccHeader and FieldRcptHeader are bcc: and rcpt: without the
	// envelope fields: what the service layer searches, beside EnvelopeIn,
	// for a caller who does not see every account. No human key.
	FieldBccHeader
	FieldRcptHeader
)

var fieldKeys = [...]string{
	FieldText:       "text",
	FieldFrom:       "from",
	FieldTo:         "to",
	FieldCc:         "cc",
	FieldBcc:        "bcc",
	FieldSubject:    "subject",
	FieldBody:       "body",
	FieldAttachment: "attachment",
	FieldFilename:   "filename",
	FieldList:       "list",
	FieldRcpt:       "rcpt",
	FieldBccHeader:  "bcc_header",
	FieldRcptHeader: "rcpt_header",
}

// String returns the human-syntax key of f ("from", ...); FieldText is "text".
func (f Field) String() string {
	if f >= 0 && int(f) < len(fieldKeys) {
		return fieldKeys[f]
	}
	return "Field(" + strconv.Itoa(int(f)) + ")"
}

// Match says how a Text value matches.
type Match int

const (
	// MatchWords: Value is split at white space into words; every word must
	// occur (in any order). A word that the analyser splits into several
	// tokens ("alice@example.org" → alice, example.org) matches only with
	// those tokens adjacent and in order.
	MatchWords Match = iota
	// MatchPhrase: the analysed tokens of Value occur adjacent and in order.
	MatchPhrase
	// MatchPrefix: some token starts with Value (case-insensitively).
	MatchPrefix
	// MatchSubstring: Value is a case-insensitive substring of the decoded
	// field (IMAP SEARCH semantics). Reserved for the IMAP SEARCH parser;
	// Bleve does not translate it yet.
	MatchSubstring
)

var matchNames = [...]string{
	MatchWords:     "words",
	MatchPhrase:    "phrase",
	MatchPrefix:    "prefix",
	MatchSubstring: "substring",
}

func (m Match) String() string {
	if m >= 0 && int(m) < len(matchNames) {
		return matchNames[m]
	}
	return "Match(" + strconv.Itoa(int(m)) + ")"
}

// Text matches text in a field of the message.
type Text struct {
	Field Field
	Value string
	Match Match
}

// DateOp compares a message's day with a Date's day.
type DateOp int

const (
	DateBefore DateOp = iota // day < date
	DateOn                   // day = date
	DateSince                // day >= date
)

var dateKeys = [...]string{DateBefore: "before", DateOn: "on", DateSince: "after"}

// Date compares a day of the message with a calendar day. Times and time
// zones are disregarded, as in IMAP: the message's day is the day written in
// its own zone.
type Date struct {
	Op    DateOp
	Year  int
	Month time.Month
	Day   int
	// Internal selects the INTERNALDATE of an occurrence (IMAP BEFORE, ON,
	// SINCE) instead of the sent date of the Date: header (SENTBEFORE, ...).
	// The human syntax only produces sent dates.
	Internal bool
}

// Size compares the size of the raw message (RFC822.SIZE) strictly:
// Larger means size > Bytes, otherwise size < Bytes.
type Size struct {
	Larger bool
	Bytes  int64
}

// HasAttachment matches messages with at least one attachment.
type HasAttachment struct{}

// Account matches messages with an occurrence in the account Name (exact,
// case-sensitive).
type Account struct{ Name string }

// Mailbox matches messages with an occurrence in a mailbox named Name
// (exact, case-sensitive except for INBOX), in any account.
type Mailbox struct{ Name string }

// Place matches messages with an occurrence in mailbox Mailbox of account
// Account. No parser produces it: the service layer writes a caller's
// mailbox: terms as places in the accounts they may see, so that a term can
// never match through another account's mailbox of the same name.
type Place struct{ Account, Mailbox string }

// EnvelopeIn matches a message with a journaled copy in one of Accounts
// whose envelope names Addr as a recipient (Blind: as a recipient no
// header names), the whole address, case-insensitively. The service layer
// writes bcc: and rcpt: this way for a caller who does not see every
// account (IndexEnvelope says why). The human syntax has no key for it.
type EnvelopeIn struct {
	Blind    bool
	Addr     string
	Accounts []string
}

// Age compares the sent date (Date: header, to the second) with a time
// relative to the moment the query is translated (query.Bleve): Newer
// (newer_than:7d) means sent at or after now minus Count Units, otherwise
// (older_than:1y) before it. Unit is 'd' (days of 24 hours), 'w' (weeks),
// 'm' (calendar months) or 'y' (calendar years). A message without a valid
// Date: matches neither.
type Age struct {
	Newer bool
	Count int
	Unit  byte
}

// Cutoff returns the time that n compares sent dates with, for a query
// asked at now.
func (n Age) Cutoff(now time.Time) time.Time {
	switch n.Unit {
	case 'd':
		return now.AddDate(0, 0, -n.Count)
	case 'w':
		return now.AddDate(0, 0, -7*n.Count)
	case 'm':
		return now.AddDate(0, -n.Count, 0)
	}
	return now.AddDate(-n.Count, 0, 0)
}

// FlagIn matches messages with an occurrence in one of Places that has the
// flag or keyword Flag. No parser produces it: the indexer writes each Flag
// of a human-syntax query as a FlagIn over the places in the search's scope
// (the caller's accounts, the account: and mailbox: conjuncts, the
// search's own narrowing), so that is:unread asks about the copies the
// caller sees and the hit lists, not about another account's copy. An
// empty Places matches nothing.
type FlagIn struct {
	Flag   string
	Places []Place
}

func (And) node()           {}
func (Or) node()            {}
func (Not) node()           {}
func (All) node()           {}
func (Text) node()          {}
func (Date) node()          {}
func (Size) node()          {}
func (HasAttachment) node() {}
func (Account) node()       {}
func (Mailbox) node()       {}
func (Place) node()         {}
func (Age) node()           {}
func (FlagIn) node()        {}
func (EnvelopeIn) node()    {}

func (n And) String() string {
	if len(n.Nodes) == 0 {
		return "ALL"
	}
	parts := make([]string, len(n.Nodes))
	for i, c := range n.Nodes {
		// OR binds tighter than the implicit AND: only a nested And
		// needs parentheses, and the parser never nests one.
		parts[i] = group(c, false)
	}
	return strings.Join(parts, " ")
}

func (n Or) String() string {
	if len(n.Nodes) == 0 {
		return "NONE"
	}
	parts := make([]string, len(n.Nodes))
	for i, c := range n.Nodes {
		parts[i] = group(c, true)
	}
	return strings.Join(parts, " OR ")
}

func (n Not) String() string {
	return "-" + group(n.Node, true)
}

// group prints c, in parentheses where it would otherwise bind wrongly.
func group(c Node, orToo bool) string {
	switch c := c.(type) {
	case And:
		if len(c.Nodes) > 1 {
			return "(" + c.String() + ")"
		}
	case Or:
		if orToo && len(c.Nodes) > 1 {
			return "(" + c.String() + ")"
		}
	case nil:
		return "<nil>"
	}
	return c.String()
}

// String prints "ALL", which the human syntax does not parse: an All only
// appears inside trees built by other parsers.
func (All) String() string { return "ALL" }

func (n Text) String() string {
	key := ""
	if n.Field != FieldText {
		key = n.Field.String() + ":"
	}
	switch n.Match {
	case MatchWords:
		if bareValue(n.Value) && !strings.HasSuffix(n.Value, "*") && (key != "" || bareFreeWord(n.Value)) {
			return key + n.Value
		}
		return key + "words(" + quote(n.Value) + ")"
	case MatchPhrase:
		return key + quote(n.Value)
	case MatchPrefix:
		if w := n.Value + "*"; bareValue(w) && (key != "" || bareFreeWord(w)) {
			return key + w
		}
		return key + "prefix(" + quote(n.Value) + ")"
	case MatchSubstring:
		return key + "substring(" + quote(n.Value) + ")"
	}
	return key + n.Match.String() + "(" + quote(n.Value) + ")"
}

func (n Date) String() string {
	key := "?"
	if n.Op >= 0 && int(n.Op) < len(dateKeys) {
		key = dateKeys[n.Op]
	}
	if n.Internal {
		key = "internal-" + key
	}
	return fmt.Sprintf("%s:%04d-%02d-%02d", key, n.Year, int(n.Month), n.Day)
}

func (n Size) String() string {
	if n.Larger {
		return "larger:" + strconv.FormatInt(n.Bytes, 10)
	}
	return "smaller:" + strconv.FormatInt(n.Bytes, 10)
}

func (HasAttachment) String() string { return "has:attachment" }

func (n Account) String() string { return "account:" + nameValue(n.Name) }

func (n Mailbox) String() string { return "mailbox:" + nameValue(n.Name) }

func (n Age) String() string {
	key := "older_than:"
	if n.Newer {
		key = "newer_than:"
	}
	return key + strconv.Itoa(n.Count) + string(n.Unit)
}

// String is a debug form: the human syntax has no term for it.
func (n FlagIn) String() string {
	parts := make([]string, len(n.Places))
	for i, p := range n.Places {
		parts[i] = p.String()
	}
	return "flag-in:" + nameValue(n.Flag) + "(" + strings.Join(parts, " ") + ")"
}

// String is a debug form: the human syntax has no place term.
func (n Place) String() string { return "place:" + nameValue(n.Account) + "/" + nameValue(n.Mailbox) }

// String is a debug form (the human syntax has no such key).
func (n EnvelopeIn) String() string {
	key := "envelope-rcpt:"
	if n.Blind {
		key = "envelope-bcc:"
	}
	return key + nameValue(n.Addr) + "@[" + strings.Join(n.Accounts, ",") + "]"
}

func nameValue(s string) string {
	if bareValue(s) && !strings.ContainsAny(s, "*%") {
		return s
	}
	return quote(s)
}

// bareValue reports whether s can follow "key:" unquoted and parse back as
// itself.
func bareValue(s string) bool {
	if s == "" || s[0] == '"' || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if isDelim(r) {
			return false
		}
	}
	return true
}

// bareFreeWord reports whether a bare value s also parses back as itself
// where a term may start: not an operator, not negated, not a key.
func bareFreeWord(s string) bool {
	if s[0] == '-' || s == "OR" || s == "AND" || s == "NOT" {
		return false
	}
	if k := keyLen(s); k > 0 {
		return false
	}
	return true
}

// quote returns s as a quoted string of the human syntax: backslash and
// double quote are escaped with a backslash, nothing else is.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isDelim reports whether r ends a bare word: white space and parentheses.
func isDelim(r rune) bool {
	return r == '(' || r == ')' || unicode.IsSpace(r)
}

// Scope returns the values of the account: and mailbox: terms that every
// hit of n satisfies: those that are n itself or positive conjuncts of a
// top-level And, and those of a top-level conjunct that is an Or of Account
// nodes only (or Mailbox nodes only). A caller uses them to choose which
// occurrences of a hit to show. Names are returned once each, in query
// order; mailbox names in canonical form (CanonicalMailbox).
func Scope(n Node) (accounts, mailboxes []string) {
	var conj []Node
	switch n := n.(type) {
	case And:
		conj = n.Nodes
	default:
		conj = []Node{n}
	}
	add := func(list []string, v string) []string {
		for _, x := range list {
			if x == v {
				return list
			}
		}
		return append(list, v)
	}
	for _, c := range conj {
		switch c := c.(type) {
		case Account:
			accounts = add(accounts, c.Name)
		case Mailbox:
			mailboxes = add(mailboxes, CanonicalMailbox(c.Name))
		case Place:
			accounts = add(accounts, c.Account)
			mailboxes = add(mailboxes, CanonicalMailbox(c.Mailbox))
		case Or:
			if len(c.Nodes) == 0 {
				continue
			}
			// An Or of places counts as an Or of their accounts and one of
			// their mailboxes (the service layer writes mailbox:M as M in
			// each account a caller may see).
			var acc, mbox []string
			for _, d := range c.Nodes {
				switch d := d.(type) {
				case Account:
					acc = append(acc, d.Name)
				case Mailbox:
					mbox = append(mbox, CanonicalMailbox(d.Name))
				case Place:
					acc = append(acc, d.Account)
					mbox = append(mbox, CanonicalMailbox(d.Mailbox))
				}
			}
			if len(acc) == len(c.Nodes) {
				for _, a := range acc {
					accounts = add(accounts, a)
				}
			}
			if len(mbox) == len(c.Nodes) {
				for _, m := range mbox {
					mailboxes = add(mailboxes, m)
				}
			}
		}
	}
	return accounts, mailboxes
}

// Rewrite returns n with every node below its And, Or and Not nodes
// replaced by leaf(node), the tree's shape kept: the one walk of the
// rewrites that scope a query (service's restrict, the archive's flag
// places).
func Rewrite(n Node, leaf func(Node) Node) Node {
	switch n := n.(type) {
	case And:
		out := make([]Node, len(n.Nodes))
		for i, c := range n.Nodes {
			out[i] = Rewrite(c, leaf)
		}
		return And{Nodes: out}
	case Or:
		out := make([]Node, len(n.Nodes))
		for i, c := range n.Nodes {
			out[i] = Rewrite(c, leaf)
		}
		return Or{Nodes: out}
	case Not:
		return Not{Node: Rewrite(n.Node, leaf)}
	}
	return leaf(n)
}
