package mime

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Address is one mailbox of an address field.
type Address struct {
	Name string // display name decoded to UTF-8; "" when absent
	Addr string // addr-spec as written (case kept), without angle brackets; "" when none was found
}

// Header is one field of the message's top-level header.
type Header struct {
	Key   string // field name as written
	Value string // value unfolded and RFC 2047-decoded to UTF-8
}

// Attachment is a non-body part of the message.
type Attachment struct {
	Filename    string // decoded file name (RFC 2231, RFC 2047 or plain); "" when none
	ContentType string // lowercased media type, e.g. "application/pdf"
	Size        int64  // decoded size in bytes
	Text        string // extracted UTF-8 text of text-like attachments, else ""
	// Data is the attachment's whole decoded content, byte for byte as the
	// sender attached it, when Parse ran with Limits.KeepData; else nil
	// (also when it could not be decoded).
	Data []byte `json:"-"`
}

// Limits bounds the work Parse does on one message. A nil *Limits, and any
// field that is zero or negative, means the default.
type Limits struct {
	// MaxDepth is the deepest nesting of multiparts and message/rfc822
	// parts that is descended into (default 20).
	MaxDepth int
	// MaxParts is the number of MIME entities processed (default 1000).
	MaxParts int
	// MaxHeaderBytes is the size of one header block that is parsed; the
	// rest of that block is skipped (default 256 KiB).
	MaxHeaderBytes int
	// MaxDecodedBytes is the total of bytes decoded from transfer encodings
	// for text extraction (default 64 MiB). Binary attachments are sized
	// without being decoded and do not count.
	MaxDecodedBytes int64
	// MaxTextBytes is the total of text kept in Message.Text and
	// Attachment.Text (default 4 MiB).
	MaxTextBytes int
	// KeepData fills Attachment.Data: one parse gives the text and every
	// attachment's bytes (the export's natives), where AttachmentData
	// would parse the message again per attachment. The data is decoded
	// whole, not bounded by MaxDecodedBytes (it is at most the size of
	// the message).
	KeepData bool
	// KeepDataIf, with KeepData, fills Data only for the attachments it
	// returns true for; it sees each as parsed (name, type, size, text),
	// Data not yet decoded. nil: every attachment. The extractor of
	// attachment text (indexer, issue 15) decodes only what it will read:
	// not a message's 200 MB video, nor a PDF over its size limit.
	KeepDataIf func(Attachment) bool
	// Fields, when set, limits the decoding of the message's own header
	// to the fields it returns true for (by name as written): the other
	// fields are not in Message.Headers and fill none of Message's fields.
	// An mbox export wants From and Date alone; decoding every field
	// was most of its parse.
	Fields func(name string) bool
}

const (
	defaultMaxDepth        = 20
	defaultMaxParts        = 1000
	defaultMaxHeaderBytes  = 256 << 10
	defaultMaxDecodedBytes = 64 << 20
	defaultMaxTextBytes    = 4 << 20

	// maxProblems caps Message.Problems; a hostile message could otherwise
	// produce one per part.
	maxProblems = 50
)

func (l *Limits) withDefaults() Limits {
	var out Limits
	if l != nil {
		out = *l
	}
	if out.MaxDepth <= 0 {
		out.MaxDepth = defaultMaxDepth
	}
	if out.MaxParts <= 0 {
		out.MaxParts = defaultMaxParts
	}
	if out.MaxHeaderBytes <= 0 {
		out.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if out.MaxDecodedBytes <= 0 {
		out.MaxDecodedBytes = defaultMaxDecodedBytes
	}
	if out.MaxTextBytes <= 0 {
		out.MaxTextBytes = defaultMaxTextBytes
	}
	return out
}

// Message is the document extracted from one raw message. Parse returns a
// new Message that shares no memory with raw or with other Messages; the
// caller owns it.
type Message struct {
	Headers []Header // top-level header fields in order

	From, Sender, ReplyTo, To, Cc, Bcc []Address

	Subject string
	// Date is the Date header's time in the zone written there; zero when
	// the header is absent or unparseable (the latter is a problem).
	Date       time.Time
	MessageID  string   // without angle brackets
	InReplyTo  []string // without angle brackets
	References []string // without angle brackets

	// Text is the decoded body text; see the package doc for what goes in.
	Text        string
	Attachments []Attachment
	Parts       int // MIME entities seen

	// Problems describes, in short lowercase phrases, everything that was
	// malformed, salvaged or cut by a limit.
	Problems []string
	LimitHit bool // some Limits value was exceeded
}

// ParseError returns the problems joined with "; ", or "" when there are none.
func (m *Message) ParseError() string {
	return strings.Join(m.Problems, "; ")
}

// HasAttachments reports whether the message has any non-body part.
func (m *Message) HasAttachments() bool {
	return len(m.Attachments) > 0
}

// Parse extracts the document from raw, an RFC 5322 message with CRLF or LF
// line endings. lim may be nil. Parse does not keep or modify raw.
func Parse(raw []byte, lim *Limits) *Message {
	p := &parser{m: &Message{}, lim: lim.withDefaults(), wantAtt: -1}
	p.textLeft = p.lim.MaxTextBytes
	p.decodedLeft = p.lim.MaxDecodedBytes
	p.run(raw)
	return p.m
}

// parser holds the state of one Parse call. Scratch buffers are reused from
// part to part; a slice returned into one of them is only valid until the
// next call that uses the same buffer.
type parser struct {
	m   *Message
	lim Limits

	text        strings.Builder // Message.Text being built
	textLeft    int             // text budget left, shared with Attachment.Text
	decodedLeft int64           // decode budget left

	top            *entity // the message itself, once read
	hdrCharset     string  // charset for raw 8-bit header bytes; "" means windows-1252
	hdrCharsetDone bool    // hdrCharset has been chosen
	warned8bit     bool

	dec  []byte // transfer-decoding scratch
	conv []byte // charset-conversion scratch
	html []byte // HTML-to-text scratch

	wantAtt int    // AttachmentData returns the content of this attachment (index in Message.Attachments)
	attData []byte // its decoded content, once found
}

func (p *parser) run(raw []byte) {
	defer func() {
		// Belt and braces: a bug must cost one message its text, not the
		// indexer its process.
		if r := recover(); r != nil {
			p.problem("internal error: %v", r)
		}
		p.finish()
	}()
	e := p.readEntity(raw, "", 0, "text/plain", entityTop)
	if e == nil {
		return
	}
	p.top = e
	p.envelope(e)
	p.walk(e, false)
}

func (p *parser) finish() {
	t := p.text.String()
	if !utf8.ValidString(t) {
		t = strings.ToValidUTF8(t, "\uFFFD")
		p.problem("internal error: invalid utf-8 in text repaired")
	}
	p.m.Text = t
}

// problem records a problem once.
func (p *parser) problem(format string, args ...any) {
	m := p.m
	if len(m.Problems) > maxProblems {
		return
	}
	if len(m.Problems) == maxProblems {
		m.Problems = append(m.Problems, "more problems omitted")
		return
	}
	s := fmt.Sprintf(format, args...)
	for _, q := range m.Problems {
		if q == s {
			return
		}
	}
	m.Problems = append(m.Problems, s)
}

// limit records that a limit was exceeded.
func (p *parser) limit(format string, args ...any) {
	p.m.LimitHit = true
	p.problem("limit exceeded: "+format, args...)
}

// quote quotes s for a problem message, shortened so that a hostile value
// cannot blow up the problem list.
func quote(s string) string {
	const max = 60
	if len(s) > max {
		i := max
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// AttachmentData returns attachment i (as listed in Parse's Message.Attachments)
// of raw with its content decoded from its transfer encoding, byte for
// byte as the sender attached it. ok is false when there is no such
// attachment.
func AttachmentData(raw []byte, i int) (a Attachment, data []byte, ok bool) {
	p := &parser{m: &Message{}, lim: (&Limits{MaxDecodedBytes: 1 << 40, MaxTextBytes: 1}).withDefaults(), wantAtt: i}
	p.textLeft = p.lim.MaxTextBytes
	p.decodedLeft = p.lim.MaxDecodedBytes
	p.run(raw)
	if i < 0 || i >= len(p.m.Attachments) || p.attData == nil {
		return Attachment{}, nil, false
	}
	return p.m.Attachments[i], p.attData, true
}
