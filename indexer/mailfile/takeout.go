package mailfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"strings"

	"github.com/emersion/go-message/charset"
)

// Gmail Takeout mbox ("All mail Including Spam and Trash.mbox"): one mbox
// holding every message once, its Gmail labels in an X-Gmail-Labels header
// ("Inbox,Important,Opened,Category Updates,\"a, b\""). Each label becomes an
// occurrence of the message in a mailbox of that name; the message is one
// blob (invariant 4: the importer stores the first occurrence and links the
// others to the same content).
//
// Labels to mailboxes and flags (takeoutPlacement):
//   - "Inbox" → INBOX; "Sent", "Drafts", "Spam", "Trash", "Important",
//     "Chat", "Archived" and user labels → a mailbox of that name, "/" as the
//     hierarchy separator (Gmail shows nested labels "a/b" the same way);
//     empty components are dropped.
//   - "Starred" → mailbox "Starred" and the \Flagged flag on every occurrence.
//   - "Opened" → \Seen; "Unread" → no \Seen (Unread wins when both appear).
//     Neither is a mailbox.
//   - "Category Updates" etc. (Gmail's inbox tabs) → the keyword
//     "$Category_Updates" on every occurrence, not a mailbox: nearly every
//     inbox message has one, so as mailboxes they would double the occurrence
//     rows and clutter the mailbox list with what is a property of the
//     message, and Gmail's IMAP shows no category folders either, so a
//     Takeout import and an IMAP harvest of the same account agree.
//   - A message with no mailbox label (only Opened/Unread/categories, or no
//     header) goes to "Archived", Takeout's own name for mail out of the
//     inbox: every message gets at least one occurrence.
//
// Keys: each label mailbox gets UIDs in mbox order and the importer decides
// what is already there by content, so re-importing the same Takeout adds
// nothing. A newer Takeout of the same account adds the messages whose bytes
// are new: new mail, and mail whose labels changed since (X-Gmail-Labels is
// part of the message's bytes, so such a message is a new blob; invariant 3
// forbids editing the old one). X-GM-MSGID appears only on the From_ line,
// which is not part of the stored bytes, so it is not used as a key.

const (
	// maxLabelHeader bounds the X-Gmail-Labels value parsed; a longer one is
	// cut there (the message is stored whole regardless).
	maxLabelHeader = 64 << 10
	// maxLabels bounds the labels taken from one message.
	maxLabels = 500
)

// ParseLabels splits an X-Gmail-Labels value into labels: comma-separated,
// a label with a comma or quote in double quotes (with \" and \\ escapes),
// RFC 2047 encoded words decoded (per label, or over the whole value when
// it is one run of encoded words). Blank labels are dropped. It never fails:
// malformed quoting ends the label at the end of the value, undecodable
// encoded words are kept as written.
func ParseLabels(value string) []string {
	v := strings.TrimSpace(unfold(value))
	if strings.HasPrefix(v, "=?") && strings.HasSuffix(v, "?=") && !strings.Contains(v, ",") {
		if d, err := wordDecoder.DecodeHeader(v); err == nil {
			v = d
		}
	}
	var out []string
	var cur strings.Builder
	quoted, wasQuoted := false, false
	flush := func() {
		l := strings.TrimSpace(cur.String())
		cur.Reset()
		if !wasQuoted && strings.Contains(l, "=?") {
			if d, err := wordDecoder.DecodeHeader(l); err == nil {
				l = strings.TrimSpace(d)
			}
		}
		wasQuoted = false
		if l != "" && len(out) < maxLabels {
			out = append(out, l)
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted && c == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case c == '"':
			quoted = !quoted
			wasQuoted = true
		case c == ',' && !quoted:
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// unfold removes header folding (CRLF/LF followed by white space).
func unfold(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' }), "")
}

// takeoutPlacement maps labels to mailbox names (prefixed with prefix + "/"
// when prefix is not "") and flags; see the file comment.
func takeoutPlacement(labels []string, prefix string) (mailboxes, flags []string) {
	seen, unread := false, false
	have := map[string]bool{}
	add := func(name string) {
		if prefix != "" {
			name = prefix + "/" + name
		}
		if !have[name] {
			have[name] = true
			mailboxes = append(mailboxes, name)
		}
	}
	for _, l := range labels {
		switch {
		case strings.EqualFold(l, "Inbox"):
			add("INBOX")
		case strings.EqualFold(l, "Opened"):
			seen = true
		case strings.EqualFold(l, "Unread"):
			unread = true
		case strings.EqualFold(l, "Starred"):
			add("Starred")
			flags = append(flags, `\Flagged`)
		case len(l) > len("Category ") && strings.EqualFold(l[:len("Category ")], "Category "):
			flags = append(flags, categoryKeyword(l[len("Category "):]))
		default:
			if n := labelMailbox(l); n != "" {
				add(n)
			}
		}
	}
	if seen && !unread {
		flags = append(flags, `\Seen`)
	}
	if len(mailboxes) == 0 {
		add("Archived")
	}
	return mailboxes, sortFlags(flags)
}

// labelMailbox cleans a label into a mailbox name: "/"-separated, no empty
// or blank components, no control characters.
func labelMailbox(l string) string {
	var parts []string
	for _, p := range strings.Split(l, "/") {
		p = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, p)
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	n := strings.Join(parts, "/")
	if strings.EqualFold(n, "INBOX") {
		return "INBOX"
	}
	return n
}

// categoryKeyword makes an IMAP keyword (an atom) of a Gmail category:
// "Updates" → "$Category_Updates"; characters an atom cannot hold become "_".
func categoryKeyword(c string) string {
	var b strings.Builder
	b.WriteString("$Category_")
	for _, r := range strings.TrimSpace(c) {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`(){%*"\]`, r) {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// headerValue returns the raw (folded) value of the first header field name
// in raw's header, looking at most max bytes of the value; found reports
// whether the field is there, cut whether the value was longer.
func headerValue(raw []byte, name string, max int) (value string, found, cut bool) {
	b := raw
	for len(b) > 0 {
		line := b
		i := bytes.IndexByte(b, '\n')
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		l := bytes.TrimSuffix(line, []byte("\r"))
		if len(l) == 0 {
			return "", false, false // end of header
		}
		n, v, ok := bytes.Cut(l, []byte(":"))
		if !ok || !strings.EqualFold(string(bytes.TrimRight(n, " \t")), name) {
			continue
		}
		val := append([]byte(nil), v...)
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') && len(val) <= max {
			j := bytes.IndexByte(b, '\n')
			if j < 0 {
				j = len(b) - 1
			}
			val = append(val, bytes.TrimSuffix(b[:j], []byte("\r"))...)
			b = b[j+1:]
		}
		if len(val) > max {
			return string(val[:max]), true, true
		}
		return string(val), true, false
	}
	return "", false, false
}

// isTakeout reports whether the mbox at path is a Gmail Takeout: its first
// message's header has an X-Gmail-Labels field.
func isTakeout(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	r, _, err := decompressor(f)
	if err != nil {
		return false
	}
	head := make([]byte, headerPeek)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false
	}
	head = bytes.TrimLeft(head[:n], "\r\n")
	if !hasFromPrefix(head) {
		return false
	}
	i := bytes.IndexByte(head, '\n')
	if i < 0 {
		return false
	}
	_, found, _ := headerValue(head[i+1:], "X-Gmail-Labels", 16)
	return found
}

func (m Mailbox) walkTakeout(fn func(Message) error, report func(error), stop func() bool) error {
	mb := Mailbox{Path: m.Path, Kind: KindMbox, MaxBytes: m.MaxBytes}
	return mb.walkMbox(func(msg Message) error {
		v, found, cut := headerValue(msg.Raw[:min(len(msg.Raw), maxLabelHeader*2)], "X-Gmail-Labels", maxLabelHeader)
		labels := ParseLabels(v)
		var flags []string
		msg.Mailboxes, flags = takeoutPlacement(labels, m.Name)
		msg.Flags = sortFlags(append(msg.Flags, flags...))
		switch {
		case !found:
			msg.Note = joinNote(msg.Note, "no X-Gmail-Labels header: put in Archived")
		case cut:
			msg.Note = joinNote(msg.Note, fmt.Sprintf("X-Gmail-Labels longer than %d bytes: labels past that ignored (the message is stored whole)", maxLabelHeader))
		case len(labels) == maxLabels:
			msg.Note = joinNote(msg.Note, fmt.Sprintf("more than %d labels: the rest ignored", maxLabels))
		}
		return fn(msg)
	}, report, stop)
}
