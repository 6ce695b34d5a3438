package harvest

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// Gmail's IMAP extension X-GM-EXT-1, implemented from Google's published
// description (developers.google.com/gmail/imap/imap-extensions) and tested
// against harvest/gmailtest, a server written from the same description;
// not against Gmail.
//
// Gmail shows every label as a folder and every message (but spam and
// trash) in "[Gmail]/All Mail" besides, so harvesting an account's folders
// meets one message once per label. The archive stores its bytes once
// anyway (content addressing); what X-GM-EXT-1 saves is the download:
//
//   - X-GM-MSGID is a message's identity across the account's folders.
//     Before a chunk's bodies are fetched, a connection of its own (the
//     QRESYNC connection's reader, qresync.go: go-imap's client cannot
//     parse these items) asks for each UID's X-GM-MSGID, X-GM-THRID,
//     X-GM-LABELS, FLAGS, INTERNALDATE and RFC822.SIZE. A message whose
//     X-GM-MSGID the archive already holds in this account
//     (GmailSink.GmailKnown), with the same size, is handed to the Sink
//     without its bytes (Message.Raw nil): the Sink
//     records the occurrence of the message it has. Only the others are
//     downloaded. Google documents the ID as the message's, in every
//     folder; an archive that did not trust it would simply download.
//   - A server that lies about X-GM-MSGID (gives a UID the ID of another
//     message of the same size: another size is downloaded) gets that
//     other message recorded at the UID, its bytes not compared with the
//     server's. The harm stays in the account:
//     GmailKnown answers only with messages this account's server
//     delivered before, so the server can make its occurrences name
//     content it sent earlier (which it could send again anyway), never
//     another account's, and the content itself is untouched.
//   - A known message whose bytes the archive cannot give (a blob corrupt
//     or gone) fails its chunk's store: nothing is acknowledged, and the
//     Sink no longer counts it as known, so the next try downloads it.
//   - X-GM-LABELS is recorded with the message (the catalog's
//     gmail_messages), as of its latest sighting, and shown with it: the
//     labels are the message's mailboxes in Gmail's own terms, system
//     labels as \Inbox, \Sent, \Important, \Starred, \Draft.
//   - Everything else is the ordinary harvest: each folder is its own
//     mailbox with its own UIDs, checkpoint, flags and expunges.
//
// When the side connection cannot be had (the account's TLS mode is
// starttls, credentials or the folder name are not printable ASCII, the
// server refuses it), the chunk is harvested as on any server: downloaded,
// stored once by content, no labels. Nothing depends on the extension for
// completeness.
const capGmail = imap.Cap("X-GM-EXT-1")

// Gmail is what X-GM-EXT-1 says of a message.
type Gmail struct {
	MsgID, ThrID uint64
	Labels       []string // decoded from modified UTF-7, in the server's order
}

// GmailSink is a Sink that keeps Gmail's message IDs. With it, a message
// met again under another label is not downloaded again: Store gets it
// with Raw nil and Gmail set, and records the message it holds.
type GmailSink interface {
	Sink
	// GmailKnown returns, of msgids, those whose message the archive
	// holds for account, with the message's size in bytes (checked
	// against the server's RFC822.SIZE). One whose bytes a Store could
	// not read must not be returned again, or that Store fails for ever.
	GmailKnown(ctx context.Context, account string, msgids []uint64) (map[uint64]int64, error)
}

// gmailMinBatch is the fewest messages a catch-up must have to open the
// side connection: below it, downloading costs less than another login
// (and Gmail limits logins as well as bandwidth).
const gmailMinBatch = 10

// gmailInfo is one message's answer to the side connection's FETCH.
type gmailInfo struct {
	Gmail
	flags        []string
	internalDate time.Time
	size         int64
}

// gmailConn is the side connection of one mailbox's catch-up.
type gmailConn struct {
	q  *qconn
	mb string
	// own is the label the mailbox stands for (ownLabel), added to each
	// message's labels when the server leaves it out.
	own string
}

// ownLabel is the label whose folder mb is: a user label's folder has
// the label's name, INBOX and the system folders stand for \Inbox,
// \Sent, ...; All Mail, Spam and Trash for none. Whether X-GM-LABELS
// lists the selected folder's own label is not documented (reports
// differ), so the harvester adds it: every sighting then gives the same
// labels, whatever folder it was made in.
func ownLabel(mb string) string {
	if strings.EqualFold(mb, "INBOX") {
		return `\Inbox`
	}
	for _, root := range []string{"[Gmail]/", "[Google Mail]/"} {
		if name, ok := strings.CutPrefix(mb, root); ok {
			switch name {
			case "Sent Mail":
				return `\Sent`
			case "Drafts":
				return `\Draft`
			case "Starred":
				return `\Starred`
			case "Important":
				return `\Important`
			}
			return ""
		}
	}
	return mb
}

// gmailSide opens the side connection for mailbox mb (epoch uidvalidity),
// or returns nil when the account, mailbox or server cannot have one; why
// is logged.
func (h *Harvester) gmailSide(ctx context.Context, cn *conn, mb string, uidvalidity uint32) *gmailConn {
	if _, ok := h.sink.(GmailSink); !ok || !cn.c.Caps().Has(capGmail) {
		return nil
	}
	log := h.log.With("mailbox", mb)
	switch {
	case h.acct.tlsMode() != "implicit" && h.acct.tlsMode() != "none":
		log.Info("gmail: X-GM-MSGID not used with tls: starttls; every message is downloaded")
		return nil
	case !quotable(h.acct.Username) || (h.acct.Auth != "xoauth2" && !quotable(h.acct.Password)):
		log.Info("gmail: X-GM-MSGID not used: credentials are not printable ASCII; every message is downloaded")
		return nil
	case !quotable(mb) || strings.Contains(mb, "&"):
		log.Info("gmail: X-GM-MSGID not used for a folder whose name is not printable ASCII; its messages are downloaded")
		return nil
	}
	q, err := h.qdial(ctx)
	if err == nil {
		if err = q.login(h); err == nil {
			if _, err = q.command("EXAMINE " + quote(mb)); err == nil && q.res.uidValidity != uidvalidity {
				err = fmt.Errorf("UIDVALIDITY is %d, not %d", q.res.uidValidity, uidvalidity)
			}
		}
		if err != nil {
			q.close()
		}
	}
	if err != nil {
		log.Warn("gmail: no side connection for X-GM-MSGID; this catch-up downloads every message", "err", err)
		return nil
	}
	q.gmail = true
	return &gmailConn{q: q, mb: mb, own: ownLabel(mb)}
}

func (g *gmailConn) close() {
	if g != nil {
		g.q.logout()
		g.q.close()
	}
}

// meta asks for the X-GM items of uids.
func (g *gmailConn) meta(uids []imap.UID) (map[uint32]*gmailInfo, error) {
	g.q.gmailAsked = len(uids)
	if _, err := g.q.command("UID FETCH " + imap.UIDSetNum(uids...).String() +
		" (UID FLAGS INTERNALDATE RFC822.SIZE X-GM-MSGID X-GM-THRID X-GM-LABELS)"); err != nil {
		return nil, fmt.Errorf("gmail: UID FETCH X-GM-MSGID of %q: %w", g.mb, err)
	}
	info := g.q.res.gmail
	if g.own != "" {
		for _, in := range info {
			if !slices.Contains(in.Labels, g.own) {
				in.Labels = append(in.Labels, g.own)
			}
		}
	}
	return info, nil
}

// gmailSplit divides chunk into the messages the archive knows by
// X-GM-MSGID (returned ready to store, without bytes) and the UIDs to
// download, with what the side connection said of each UID. On any
// failure of the side connection it is closed (*gp set to nil) and the
// whole chunk is downloaded.
func (h *Harvester) gmailSplit(ctx context.Context, gp **gmailConn, mb string, uidvalidity uint32, chunk []imap.UID) (known []Message, fetch []imap.UID, info map[uint32]*gmailInfo) {
	g := *gp
	if g == nil {
		return nil, chunk, nil
	}
	info, err := g.meta(chunk)
	if err == nil {
		var ids []uint64
		for _, u := range chunk {
			if in := info[uint32(u)]; in != nil && in.MsgID != 0 {
				ids = append(ids, in.MsgID)
			}
		}
		var have map[uint64]int64
		if have, err = h.sink.(GmailSink).GmailKnown(ctx, h.acct.Name, ids); err == nil {
			for _, u := range chunk {
				in := info[uint32(u)]
				// Known only when the sizes agree too: a server that gave
				// another message's X-GM-MSGID (a bug, or a lie) is caught
				// by its RFC822.SIZE unless the sizes happen to be equal.
				if size, ok := have[in.msgID()]; in == nil || !ok || in.size <= 0 || in.size != size {
					fetch = append(fetch, u)
					continue
				}
				gm := in.Gmail
				known = append(known, Message{Account: h.acct.Name, Mailbox: mb, UIDValidity: uidvalidity, UID: uint32(u),
					Flags: in.flags, InternalDate: in.internalDate, Gmail: &gm})
			}
			return known, fetch, info
		}
	}
	if ctx.Err() == nil {
		h.log.Warn("gmail: side connection failed; downloading the rest of this catch-up", "mailbox", mb, "err", err)
	}
	g.close()
	*gp = nil
	return nil, chunk, nil
}

// msgID is in's X-GM-MSGID, 0 for none (no answer for the UID).
func (in *gmailInfo) msgID() uint64 {
	if in == nil {
		return 0
	}
	return in.MsgID
}

// withGmail attaches what the side connection said to fetched messages.
func withGmail(msgs []Message, info map[uint32]*gmailInfo) {
	for i := range msgs {
		if in := info[msgs[i].UID]; in != nil && in.MsgID != 0 {
			gm := in.Gmail
			msgs[i].Gmail = &gm
		}
	}
}

// maxLabelBytes bounds the memory the labels of one FETCH answer may
// hold, like maxFlagBytes for flags. Each label counts labelOverhead
// besides its name: a server sending labels of one byte would otherwise
// hold some 15 times what is counted.
const (
	maxLabelBytes = 32 << 20
	labelOverhead = 16 // a string header
)

// gmailItem reads the X-GM items and INTERNALDATE of one FETCH response
// into in; name is the item's name, upper case. It reports whether name
// was one of them.
func (p *qparser) gmailItem(q *qconn, name string, in *gmailInfo) bool {
	switch name {
	case "X-GM-MSGID":
		p.xbyte(' ')
		in.MsgID = p.xnumber(1<<64 - 1)
	case "X-GM-THRID":
		p.xbyte(' ')
		in.ThrID = p.xnumber(1<<64 - 1)
	case "X-GM-LABELS":
		p.xbyte(' ')
		p.xbyte('(')
		for first := true; !p.take(')'); first = false {
			if !first {
				p.xbyte(' ')
			}
			l := p.astring()
			if len(in.Labels) >= maxFlagsPerMsg {
				p.fail("more than %d labels on one message", maxFlagsPerMsg)
			}
			if q.res.flagBytes += len(l) + labelOverhead; q.res.flagBytes > maxLabelBytes {
				p.fail("more than %d bytes of labels", maxLabelBytes)
			}
			in.Labels = append(in.Labels, decodeMUTF7(l))
		}
	case "INTERNALDATE":
		p.xbyte(' ')
		s := p.quoted()
		t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s)
		if err != nil {
			p.fail("INTERNALDATE %q", s)
		}
		in.internalDate = t
	case "RFC822.SIZE":
		p.xbyte(' ')
		in.size = int64(p.xnumber(1<<63 - 1))
	default:
		return false
	}
	return true
}

// astring reads an atom (a leading "\" allowed: Gmail's system labels),
// a quoted string or a literal.
func (p *qparser) astring() string {
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{':
		return string(p.literal())
	}
	start := p.i
	p.take('\\')
	for !p.eof() && (atomChar(p.b[p.i]) || p.b[p.i] == ']') {
		p.i++
	}
	if p.i == start || (p.i == start+1 && p.b[start] == '\\') {
		p.fail("want a label")
	}
	return string(p.b[start:p.i])
}

// quoted reads a quoted string.
func (p *qparser) quoted() string {
	p.xbyte('"')
	var b []byte
	for {
		switch {
		case p.eof():
			p.fail("an unterminated quoted string")
		case p.take('\\'):
			if p.eof() {
				p.fail("an unterminated quoted string")
			}
			b = append(b, p.b[p.i])
			p.i++
		case p.take('"'):
			return string(b)
		default:
			b = append(b, p.b[p.i])
			p.i++
		}
	}
}

// decodeMUTF7 decodes modified UTF-7 (RFC 3501 section 5.1.3), as Gmail
// sends non-ASCII label names; text that is not valid modified UTF-7 is
// returned as it came, so nothing of a label is lost.
func decodeMUTF7(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '&' {
			out.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return s
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			out.WriteByte('&')
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(enc, ",", "/"))
		if err != nil || len(raw)%2 != 0 {
			return s
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = binary.BigEndian.Uint16(raw[2*j:])
		}
		for _, r := range utf16.Decode(u) {
			if r == unicode.ReplacementChar || r < 0x20 || (r >= 0x20 && r <= 0x7e) {
				return s // direct characters must not be encoded
			}
			out.WriteRune(r)
		}
	}
	return out.String()
}
