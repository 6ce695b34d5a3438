package journal

// Exchange envelope journal reports (issue 16 item 2).
//
// Exchange 2007 and later, and Exchange Online, journal by sending the
// journal mailbox a *report*: a new message, marked with the header
// X-MS-Journal-Report, whose first part is text/plain listing the
// original's envelope one field a line, and whose second part is the
// original, unaltered, as a message/rfc822 attachment. The body's grammar
// (Microsoft's "Journal report format" page, and [MS-XJRNL]):
//
//	Sender: <smtp-address>
//	Subject: <subject>
//	Message-ID: <message-id>
//	[On-Behalf-Of: <smtp-address>]
//	1*( ("To" | "Cc" | "Bcc" | "Recipient") ": " <address>
//	      [", " ("Expanded" | "Forwarded") ": " <source-address>] )
//
// "To: member@x, Expanded: dl@x" says the original went To dl@x, a group
// the categorizer expanded to member@x (and others, each on its own line);
// "Cc: fwd@x, Forwarded: user@x" that user@x was Cc'd and the mail went
// to fwd@x, an alternate recipient. "Recipient:" is a recipient whose
// header field Exchange could not verify (anonymous SMTP submission): it
// is an envelope recipient all the same.
//
// Decisions:
//   - Unwrap is pure: bytes in, a Report out. Storing is the listener's
//     (and store.go's) business.
//   - The original is returned byte-exact (invariant 3): the attached
//     part's bytes as they are between its header and the boundary, or
//     transfer-decoded when the report encoded them (base64, or
//     quoted-printable, which RFC 2046 forbids on message/rfc822 but
//     which a relay can add). Nothing is re-rendered.
//   - A message is a report when it carries X-MS-Journal-Report (or the
//     organisation-internal X-MS-Exchange-Organization-Journal-Report that
//     survives in some exports), or, without the header (a relay that
//     strips X-headers), when its shape is a report's through and through:
//     multipart/mixed, a first text/plain part that parses as a report
//     with a Sender, a Message-ID and at least one recipient, and a
//     message/rfc822 part. A plain message with a line "Sender: …" is not.
//   - A message that claims to be a report (the header) but does not
//     parse gives an error: the caller archives it as it came, flagged
//     (parse_error), and still acknowledges it: the bytes are durable,
//     and a retry would bring the same bytes (invariant 8: bad input never
//     stops the line). A message without the header that does not parse
//     as a report is simply not one (ok=false, no error).
//   - TNEF. When Exchange journals to an Exchange mailbox it can carry the
//     original inside the report as an embedded MAPI message (a TNEF
//     application/ms-tnef part, attAttachment with an embedded-message
//     method), not as RFC 5322 bytes. Those bytes do not exist to return
//     (building RFC 5322 from MAPI properties would be a re-rendering, not
//     the original), so such a report is an error (ErrTNEFOriginal) and
//     is archived whole and flagged; its winmail.dat is then extracted
//     like any other (indexer/extract's TNEF reader). An original that
//     itself carries a winmail.dat is an ordinary message/rfc822 part and
//     unwraps byte-exact.
//   - Unknown "Name: value" lines in the report body are ignored (Exchange
//     Online adds fields over time); a line that is not a field at all is
//     an error naming its line number.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// Kinds of a report recipient: the header field the original named it in
// ("recipient": one Exchange could not verify the field of).
const (
	KindTo        = "to"
	KindCc        = "cc"
	KindBcc       = "bcc"
	KindRecipient = "recipient"
)

// Redirections of a report recipient.
const (
	RedirectExpanded  = "expanded"  // a distribution group expanded to Addr
	RedirectForwarded = "forwarded" // an alternate recipient: mail to From went to Addr
)

// ReportRecipient is one recipient line of a journal report.
type ReportRecipient struct {
	Addr string // the address the message was delivered to
	Kind string // KindTo, KindCc, KindBcc or KindRecipient
	// Redirect is "" for a recipient the sender addressed, else
	// RedirectExpanded or RedirectForwarded, and From is the address the
	// sender used (the group, or the forwarding recipient).
	Redirect string
	From     string
}

// Report is an unwrapped journal report.
type Report struct {
	// Original is the journaled message, byte-exact (see the package
	// comment on transfer encodings).
	Original   []byte
	Sender     string // MAIL FROM as the report gives it; "" for the null sender <>
	OnBehalfOf string
	Subject    string
	MessageID  string // as the report gives it, with its angle brackets
	Recipients []ReportRecipient
}

// Envelope returns the report's envelope: the sender and every recipient
// address in the order of the report, each once (a member reached through
// two groups is one envelope recipient).
func (r Report) Envelope() (from string, rcpts []string) {
	seen := map[string]bool{}
	for _, rc := range r.Recipients {
		k := strings.ToLower(rc.Addr)
		if !seen[k] {
			seen[k] = true
			rcpts = append(rcpts, rc.Addr)
		}
	}
	return r.Sender, rcpts
}

// ErrTNEFOriginal is (wrapped in) the error of a report whose original is
// an embedded MAPI message in a TNEF part: there are no RFC 5322 bytes to
// unwrap.
var ErrTNEFOriginal = errors.New("the original is an embedded MAPI message in a TNEF part (application/ms-tnef), not RFC 5322 bytes: not unwrapped")

// Bounds: a report has two parts; anything with more than maxReportParts
// top-level parts or a report body over maxReportText is not parsed
// further.
const (
	maxReportParts = 64
	maxReportText  = 4 << 20
	maxHeaderBytes = 1 << 20
)

// Unwrap recognises an Exchange journal report and unwraps it. ok is false
// for a message that is not a report (archive it as it is); err is non-nil
// for one that claims to be a report and does not parse (archive it as it
// is, flagged). It never panics on any input.
func Unwrap(raw []byte) (r Report, ok bool, err error) {
	claimed := hasJournalHeader(raw)
	if !claimed && !containsFold(raw, "message/rfc822") {
		// Without the header only a report's exact shape counts, and that
		// has a message/rfc822 part: ordinary journal mail stops here,
		// its header not even parsed.
		return Report{}, false, nil
	}
	hdr, body, herr := splitHeader(raw)
	fail := func(format string, a ...any) (Report, bool, error) {
		if !claimed {
			return Report{}, false, nil
		}
		return Report{}, false, fmt.Errorf("journal report: "+format, a...)
	}
	if herr != nil {
		return fail("%v", herr)
	}
	ct := hdr.Get("Content-Type")
	mt, params, perr := mime.ParseMediaType(ct)
	if perr != nil {
		return fail("content-type %q: %v", ct, perr)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return fail("content-type %s: a report is multipart/mixed with the original attached", mt)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return fail("content-type %s has no boundary", mt)
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var text []byte
	var haveText, haveOriginal, tnef bool
	for i := 0; ; i++ {
		if i == maxReportParts {
			return fail("more than %d parts", maxReportParts)
		}
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail("part %d: %v", i+1, err)
		}
		pmt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if pmt == "" {
			pmt = "text/plain" // RFC 2045's default
		}
		cte := strings.ToLower(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")))
		if !claimed && i == 0 && pmt != "text/plain" {
			// Without the header only a report's exact shape counts, and
			// it starts with the report text: most journal mail stops
			// here, without reading its parts.
			return Report{}, false, nil
		}
		switch {
		case !haveText && !haveOriginal && pmt == "text/plain":
			b, err := readDecoded(p, cte, maxReportText)
			if err != nil {
				return fail("report text (part %d): %v", i+1, err)
			}
			text, haveText = b, true
			if !claimed {
				if err := parseReportText(text, &r); err != nil {
					return Report{}, false, nil // not a report: the rest is not read
				}
			}
		case !haveOriginal && pmt == "message/rfc822":
			b, err := readDecoded(p, cte, -1)
			if err != nil {
				return fail("original (part %d): %v", i+1, err)
			}
			if len(b) == 0 {
				return fail("original (part %d) is empty", i+1)
			}
			r.Original, haveOriginal = b, true
		case pmt == "application/ms-tnef" || pmt == "application/vnd.ms-tnef":
			tnef = true
		}
	}
	if !haveText {
		return fail("no text/plain report part before the original")
	}
	if claimed {
		if err := parseReportText(text, &r); err != nil {
			return fail("%v", err)
		}
	}
	if !haveOriginal {
		if tnef {
			return fail("%w", ErrTNEFOriginal)
		}
		return fail("no message/rfc822 part: the original is not attached")
	}
	// The report's envelope (its Bcc list above all) belongs to the message
	// the report names: attached to another one it would say that message
	// went to people it never went to (review of issue 16). Exchange
	// stamps a Message-ID on everything it transports and the report names
	// it, so an original whose Message-ID is not the report's, or has none,
	// is a report that does not parse: archived whole and flagged, its
	// envelope given to no message.
	switch id := originalMessageID(r.Original); {
	case id == "":
		return fail("the report names Message-ID %s, the attached original has none", r.MessageID)
	case !sameMessageID(id, r.MessageID):
		return fail("the report names Message-ID %s, the attached original's is %s", r.MessageID, id)
	}
	return r, true, nil
}

// originalMessageID is the Message-ID field of raw's header ("" when the
// header does not parse or has none).
func originalMessageID(raw []byte) string {
	hdr, _, err := splitHeader(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(hdr.Get("Message-Id"))
}

// sameMessageID compares two Message-IDs without their angle brackets and
// surrounding space, case-insensitively (as the fingerprint lower-cases
// them: a relay that changes a Message-ID's case has not made it another).
func sameMessageID(a, b string) bool {
	norm := func(s string) string { return strings.Trim(strings.TrimSpace(s), "<>") }
	return strings.EqualFold(norm(a), norm(b))
}

// hasJournalHeader reports whether the top-level header block names the
// journal report header, scanning the raw lines so that a header block
// net/textproto would refuse still counts as a claim.
func hasJournalHeader(raw []byte) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return false // end of the header block
		}
		name, _, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		switch strings.ToLower(string(bytes.TrimSpace(name))) {
		case "x-ms-journal-report", "x-ms-exchange-organization-journal-report":
			return true
		}
	}
	return false
}

// splitHeader parses the top-level header (bounded) and returns the body's
// bytes, which start after the blank line.
func splitHeader(raw []byte) (textproto.MIMEHeader, []byte, error) {
	end, sep := -1, 0
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		end, sep = i, 4
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 && (end < 0 || i < end) {
		end, sep = i, 2
	}
	if end < 0 {
		return nil, nil, errors.New("no end of the header block")
	}
	if end > maxHeaderBytes {
		return nil, nil, fmt.Errorf("header block over %d bytes", maxHeaderBytes)
	}
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw[:end+sep])))
	h, err := tr.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("header: %v", err)
	}
	return h, raw[end+sep:], nil
}

// readDecoded reads a raw part and undoes its transfer encoding; limit < 0
// is no limit (the raw message bounds it already).
func readDecoded(p *multipart.Part, cte string, limit int) ([]byte, error) {
	var r io.Reader = p
	switch cte {
	case "", "7bit", "8bit", "binary":
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &newlineStripper{r: p})
	case "quoted-printable":
		r = quotedprintable.NewReader(p)
	default:
		return nil, fmt.Errorf("unknown content-transfer-encoding %q", cte)
	}
	if limit >= 0 {
		r = io.LimitReader(r, int64(limit)+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if limit >= 0 && len(b) > limit {
		return nil, fmt.Errorf("over %d bytes", limit)
	}
	return b, nil
}

// newlineStripper drops CR and LF so base64's decoder sees one run (it
// skips them itself, but not a lone CR in every Go version's reading).
type newlineStripper struct{ r io.Reader }

func (s *newlineStripper) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// parseReportText parses the report body into r.
func parseReportText(text []byte, r *Report) error {
	var haveSender, haveMsgID bool
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), maxReportText)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, found := strings.Cut(line, ":")
		if !found || name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("report line %d %q: not a field", n, clip(line))
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "sender":
			a, err := reportAddr(value, true)
			if err != nil {
				return fmt.Errorf("report line %d: sender: %v", n, err)
			}
			r.Sender, haveSender = a, true
		case "on-behalf-of":
			a, err := reportAddr(value, false)
			if err != nil {
				return fmt.Errorf("report line %d: on-behalf-of: %v", n, err)
			}
			r.OnBehalfOf = a
		case "subject":
			r.Subject = value
		case "message-id":
			r.MessageID, haveMsgID = value, value != ""
		case "to", "cc", "bcc", "recipient":
			rc, err := recipientLine(strings.ToLower(name), value)
			if err != nil {
				return fmt.Errorf("report line %d: %v", n, err)
			}
			r.Recipients = append(r.Recipients, rc)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("report text: %v", err)
	}
	switch {
	case !haveSender:
		return errors.New("report text has no Sender line")
	case !haveMsgID:
		return errors.New("report text has no Message-ID line")
	case len(r.Recipients) == 0:
		return errors.New("report text names no recipient (To, Cc, Bcc or Recipient)")
	}
	return nil
}

// recipientLine parses "addr" or "addr, Expanded: src" / "addr, Forwarded: src".
func recipientLine(kind, value string) (ReportRecipient, error) {
	rc := ReportRecipient{Kind: kind}
	addr, rest, redirected := strings.Cut(value, ",")
	a, err := reportAddr(addr, false)
	if err != nil {
		return rc, fmt.Errorf("%s: %v", kind, err)
	}
	rc.Addr = a
	if redirected {
		how, src, found := strings.Cut(strings.TrimSpace(rest), ":")
		if !found {
			return rc, fmt.Errorf("%s %s: %q is not Expanded: or Forwarded:", kind, a, clip(rest))
		}
		switch strings.ToLower(strings.TrimSpace(how)) {
		case "expanded":
			rc.Redirect = RedirectExpanded
		case "forwarded":
			rc.Redirect = RedirectForwarded
		default:
			return rc, fmt.Errorf("%s %s: unknown redirection %q (want Expanded or Forwarded)", kind, a, clip(how))
		}
		if rc.From, err = reportAddr(src, false); err != nil {
			return rc, fmt.Errorf("%s %s: %s: %v", kind, a, rc.Redirect, err)
		}
	}
	return rc, nil
}

// reportAddr checks one SMTP address of a report: angle brackets are
// taken off, "<>" is the null sender when nullOK.
func reportAddr(s string, nullOK bool) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		if nullOK {
			return "", nil
		}
		return "", errors.New("empty address")
	}
	if strings.ContainsAny(s, " \t<>,") || !strings.Contains(s, "@") {
		return "", fmt.Errorf("%q is not an SMTP address", clip(s))
	}
	return s, nil
}

// containsFold reports whether b contains lower, an ASCII lower-case
// string starting with a letter, in any case, without allocating and in
// time linear in len(b): the next position of each case of the first byte
// is found once and reused until passed.
func containsFold(b []byte, lower string) bool {
	n := len(lower)
	last := len(b) - n + 1 // a match starts before last
	lo, up := lower[0], lower[0]-'a'+'A'
	nextLo, nextUp := -1, -1
	for i := 0; i < last; i++ {
		if nextLo < i {
			if x := bytes.IndexByte(b[i:last], lo); x < 0 {
				nextLo = last
			} else {
				nextLo = i + x
			}
		}
		if nextUp < i {
			if x := bytes.IndexByte(b[i:last], up); x < 0 {
				nextUp = last
			} else {
				nextUp = i + x
			}
		}
		if i = min(nextLo, nextUp); i >= last {
			return false
		}
		match := true
		for k := 1; k < n; k++ {
			c := b[i+k]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[k] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
