package indexer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"mailvault/indexer/catalog"
	"mailvault/indexer/mime"
	"mailvault/indexer/store"
)

// The normalised-content fingerprint (issue 16 item 3): the same mail
// archived from the journal and from a mailbox is two blobs, because the
// bytes differ (the journal copy lacks the final delivery's Received,
// Return-Path, Delivered-To, X-Original-To, spam-filter and
// Authentication-Results fields; the store a server keeps may have
// other line ends; an MTA may have re-encoded 8-bit text as
// quoted-printable). The fingerprint is what survives delivery:
//
//   - the Message-ID (lower-cased; without one there is no fingerprint,
//     see below),
//   - the Date header as an instant (its rendering, zone name or folding
//     do not matter),
//   - the first From address (lower-cased) and the Subject, RFC 2047-decoded,
//     whitespace collapsed,
//   - the decoded body text (package mime's Message.Text: text/plain or
//     HTML as text, after the transfer and charset decoding) with every
//     whitespace run collapsed to one space, so CRLF against LF, trailing
//     spaces and re-wrapping by a relay do not matter,
//   - each attachment's decoded name and media type, and its decoded size
//     for binary attachments. The size of a text or message attachment is
//     left out: it changes with its line ends.
//
// Header fields other than those are left out on purpose: a delivery adds
// them (all of Received, Return-Path, Delivered-To, X-*, DKIM-Signature
// added by an outbound relay, ARC-*, Authentication-Results), and none of
// them says the content is another message. What does not survive: a
// server that rewrites the Subject ("[SPAM] …") or appends a footer to the
// body makes a different fingerprint; the two copies then count as two
// (journal only and mailbox only), which is the honest answer since the
// mailbox holds other content than the journal saw.
//
// A message without a Message-ID has the fingerprint "": it is linked to
// nothing but byte-identical copies. Linking is by Message-ID plus
// fingerprint (the Message-ID is in the fingerprint), so two messages that
// share a Message-ID (a resend with an edited body, a broken client) stay
// apart.
//
// FingerprintVersion is hashed in first and stored beside the
// fingerprint: a change to what goes in is a new version, and
// BackfillFingerprints recomputes the rows of an older one.
//
// Version 2 hashes the collapsed body text in one pass into a hash of its
// own (collapsedSum), without building the collapsed string: the same
// input, about 30% less time on the body text over the corpus, the whole
// fingerprint ~10 µs a message against ~22 µs for the MIME parse ingest
// does anyway (docs/benchmarks.md).
const FingerprintVersion = 2

// Fingerprint returns the normalised-content fingerprint of a parsed
// message (hex sha256), or "" when it has no Message-ID.
func Fingerprint(m *mime.Message) string {
	id := strings.ToLower(strings.TrimSpace(m.MessageID))
	if id == "" {
		return ""
	}
	h := sha256.New()
	field := func(s string) {
		// length-prefixed, so no field's content can pass for a boundary
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field("fp" + strconv.Itoa(FingerprintVersion))
	field(id)
	date := ""
	if !m.Date.IsZero() {
		date = strconv.FormatInt(m.Date.Unix(), 10)
	}
	field(date)
	from := ""
	if len(m.From) > 0 {
		from = strings.ToLower(m.From[0].Addr)
	}
	field(from)
	field(collapse(m.Subject))
	field(collapsedSum(m.Text))
	field(strconv.Itoa(len(m.Attachments)))
	for _, at := range m.Attachments {
		field(at.Filename)
		field(at.ContentType)
		size := ""
		if !strings.HasPrefix(at.ContentType, "text/") && !strings.HasPrefix(at.ContentType, "message/") {
			size = strconv.FormatInt(at.Size, 10)
		}
		field(size)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// collapse trims s and turns every run of white space into one space.
func collapse(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// asciiSpace are the ASCII bytes unicode.IsSpace reports.
var asciiSpace = [128]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// collapsedSum is the hex sha256 of collapse(s), computed in one pass
// through a small buffer (the body text can be megabytes).
func collapsedSum(s string) string {
	h := sha256.New()
	var buf [4096]byte
	n := 0
	put := func(b ...byte) {
		if n+len(b) > len(buf) {
			h.Write(buf[:n])
			n = 0
		}
		n += copy(buf[n:], b)
	}
	space, started := false, false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if asciiSpace[c] {
				space = started
				continue
			}
			if space {
				put(' ')
				space = false
			}
			put(c)
			started = true
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			space = started
			i += size
			continue
		}
		if space {
			put(' ')
			space = false
		}
		if r == utf8.RuneError && size == 1 {
			put(0xef, 0xbf, 0xbd) // as collapse's WriteRune writes it
		} else {
			put([]byte(s[i : i+size])...)
		}
		started = true
		i += size
	}
	h.Write(buf[:n])
	return hex.EncodeToString(h.Sum(nil))
}

// BackfillFingerprints computes the fingerprint of every message that has
// none yet (a catalog from before the column, or rows whose fingerprint is
// of an older version), reading each from its blob, in batches of 256
// rows a transaction. It returns how many it filled. An unreadable blob is
// skipped and left for verify to report; the next call tries it again.
// New messages get theirs at ingest; reindex and the journal coverage
// report call this.
func (a *Archive) BackfillFingerprints(ctx context.Context) (int, error) {
	if a.opts.ReadOnly {
		return 0, nil // the writer backfills; a reader counts what it has
	}
	pc, err := a.provenance()
	if err != nil {
		return 0, err
	}
	done := 0
	after := int64(0)
	for {
		rows, err := pc.MissingFingerprints(ctx, FingerprintVersion, after, 256)
		if err != nil {
			return done, err
		}
		if len(rows) == 0 {
			return done, nil
		}
		fps := make(map[int64]string, len(rows))
		for _, r := range rows {
			after = r.ID
			raw, err := a.readBlob(ctx, store.Key(r.SHA256))
			if err != nil {
				a.log.Warn("fingerprint: message unreadable", "sha256", hex.EncodeToString(r.SHA256[:]), "err", err)
				continue
			}
			fps[r.ID] = Fingerprint(mime.Parse(raw, a.opts.Limits))
		}
		if err := pc.SetFingerprints(ctx, FingerprintVersion, fps); err != nil {
			return done, fmt.Errorf("fingerprints: %w", err)
		}
		done += len(fps)
		if err := ctx.Err(); err != nil {
			return done, err
		}
	}
}

// provenanceCatalog is the catalog's side of fingerprints, journal reports
// and provenance (catalog/fingerprint.go). It is asserted, not part of
// catalogStore, so a catalog without it reports that it cannot instead of
// failing to build.
type provenanceCatalog interface {
	MissingFingerprints(ctx context.Context, version int, afterID int64, limit int) ([]catalog.FingerprintTask, error)
	SetFingerprints(ctx context.Context, version int, fps map[int64]string) error
	LinkJournalReport(ctx context.Context, report, original [32]byte, parseErr string) error
	ReportError(ctx context.Context, sha [32]byte) (string, error)
	Copies(ctx context.Context, sha [32]byte) ([]catalog.Copy, error)
	Provenances(ctx context.Context, keys [][32]byte) (map[[32]byte]string, error)
	JournalCoverage(ctx context.Context, in catalog.CoverageInput) (*catalog.Coverage, error)
}

var _ provenanceCatalog = (*catalog.Catalog)(nil)

func (a *Archive) provenance() (provenanceCatalog, error) {
	pc, ok := a.cat.(provenanceCatalog)
	if !ok {
		return nil, fmt.Errorf("this catalog (%T) keeps no fingerprints or provenance", a.cat)
	}
	return pc, nil
}

// Copies returns every copy of the message sha (hex) and of the messages
// linked to it by fingerprint: journal and mailbox copies, unscoped (the
// service scopes them).
func (a *Archive) Copies(ctx context.Context, sha string) ([]catalog.Copy, error) {
	k, err := store.ParseKey(sha)
	if err != nil {
		return nil, ErrNoMessage
	}
	pc, err := a.provenance()
	if err != nil {
		return nil, err
	}
	return pc.Copies(ctx, k)
}

// Provenances returns the provenance of each of keys (catalog.Provenance*:
// which sources saw it, over the copies Copies lists), unscoped; a key
// with no copies has no entry.
func (a *Archive) Provenances(ctx context.Context, keys [][32]byte) (map[[32]byte]string, error) {
	pc, err := a.provenance()
	if err != nil {
		return nil, err
	}
	return pc.Provenances(ctx, keys)
}

// LinkJournalReport records that the journal report (its blob key)
// carried the original, both archived already; with parseErr set, that
// the message claimed to be a report and did not parse (journal.ReportLinker).
func (a *Archive) LinkJournalReport(ctx context.Context, report, original [32]byte, parseErr string) error {
	pc, err := a.provenance()
	if err != nil {
		return err
	}
	return pc.LinkJournalReport(ctx, report, original, parseErr)
}

// ReportError returns the parse error of a message (hex sha256) that
// claimed to be a journal report and did not parse, "" for any other.
func (a *Archive) ReportError(ctx context.Context, sha string) (string, error) {
	k, err := store.ParseKey(sha)
	if err != nil {
		return "", ErrNoMessage
	}
	pc, err := a.provenance()
	if err != nil {
		return "", err
	}
	return pc.ReportError(ctx, k)
}

// JournalCoverage fills missing fingerprints, then reports per account
// which mail the journal, the mailboxes, or both saw (catalog.Coverage).
func (a *Archive) JournalCoverage(ctx context.Context, in catalog.CoverageInput) (*catalog.Coverage, error) {
	pc, err := a.provenance()
	if err != nil {
		return nil, err
	}
	if _, err := a.BackfillFingerprints(ctx); err != nil {
		return nil, err
	}
	return pc.JournalCoverage(ctx, in)
}
