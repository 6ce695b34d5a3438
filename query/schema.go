package query

import (
	"strings"
	"time"
)

// Names of the Bleve index fields. The indexer's index mapping uses these
// constants, so that a query translated here and a document indexed there
// agree on every name. One Bleve document is one unique message (sha256 of
// its raw bytes); occurrence-level facts are indexed as the set of values
// over all of its occurrences.
const (
	// IndexFrom, IndexTo, IndexCc and IndexBcc hold one value per address,
	// "Display Name <local@domain>", analysed with TextAnalyzer and indexed
	// with term vectors (phrase queries need positions).
	IndexFrom = "from"
	IndexTo   = "to"
	IndexCc   = "cc"
	IndexBcc  = "bcc"

	// IndexRcpt holds the envelope recipients (RCPT TO, decoded) of the
	// message's journaled occurrences, one value per address, analysed like
	// the address fields; IndexBccEnvelope those of them that no To, Cc or
	// Bcc header names (the blind copies). bcc: searches IndexBcc and
	// IndexBccEnvelope; rcpt: IndexTo, IndexCc, IndexBcc and IndexRcpt:
	// every recipient, by header or by envelope. Neither is a TextFields
	// field: free words do not search envelopes.
	IndexRcpt        = "rcpt"
	IndexBccEnvelope = "bcc_envelope"

	// IndexEnvelope is a keyword field: EnvelopeKey(account, address) for
	// every envelope recipient of a journaled occurrence in that account,
	// and EnvelopeBlindKey for the blind ones. A caller who does not see
	// every account searches envelopes through it (EnvelopeIn), so that an
	// envelope of a copy in an account they do not see matches nothing.
	IndexEnvelope = "envelope"

	// IndexSubject is the decoded Subject header; IndexBody is all decoded
	// body text of the message. Both use TextAnalyzer and term vectors.
	IndexSubject = "subject"
	IndexBody    = "body"

	// IndexAttachment holds the file names of attachments,
	// IndexAttachmentText the text extracted from them. Both use
	// TextAnalyzer and term vectors.
	IndexAttachment     = "attachment"
	IndexAttachmentText = "attachment_text"

	// IndexDay is numeric: the sent date (Date: header) as YYYYMMDD in the
	// message's own zone, as computed by DayValue. IMAP's SENTBEFORE, SENTON
	// and SENTSINCE disregard time and zone, and so does this field.
	IndexDay = "day"

	// IndexSize is numeric: the size of the raw message in bytes
	// (RFC822.SIZE).
	IndexSize = "size"

	// IndexHasAttachment is a boolean field.
	IndexHasAttachment = "has_attachment"

	// IndexAccount is a keyword field (exact, case-sensitive): one value per
	// account that holds an occurrence of the message.
	IndexAccount = "account"

	// IndexMailbox is a keyword field (exact, case-sensitive): one value per
	// distinct mailbox name among the message's occurrences. The indexer
	// must store the inbox as "INBOX" (see CanonicalMailbox).
	IndexMailbox = "mailbox"

	// IndexList is the List-Id header (RFC 2919) as written
	// ("SpamAssassin Talk <spamassassin-talk.lists.sourceforge.net>"),
	// TextAnalyzer and term vectors like an address. Not one of
	// TextFields: only list: searches it.
	IndexList = "list"

	// IndexTime is numeric: the sent date as Unix seconds, for
	// newer_than:/older_than: (the indexer sorts by a keyword of its own).
	IndexTime = "time"

	// IndexFlag is a keyword field: for every occurrence of the message and
	// every flag or keyword it has, FlagKey(flag) and
	// FlagPlaceKey(account, mailbox, flag). Flags change on the server; the
	// indexer re-indexes a message whose flags a sync changed.
	IndexFlag = "flag"

	// IndexPlace is a keyword field: PlaceKey(account, mailbox) for each
	// place of the message, so that "this mailbox of this account" is one
	// term rather than an account and a mailbox name that may belong to
	// different places.
	IndexPlace = "place"

	// TextAnalyzer is the analyser of all text fields (indexer/analysis.go):
	// the "unicode" tokenizer, CJK width and lower case, then every token
	// with inner punctuation split into its parts (lists.sourceforge.net:
	// lists, sourceforge, net), a possessive "'s" dropped, and beside each
	// term with diacritics its folded form (lefèvre, lefevre). No stop-word
	// removal and no stemming, so that "to be or not to be" stays
	// searchable.
	TextAnalyzer = "mv_text"

	// QueryAnalyzer analyses the words and phrases of a query: TextAnalyzer
	// without the folded forms, so that a query word is a phrase of its parts
	// and a word typed with diacritics matches only that spelling (one typed
	// without matches both).
	QueryAnalyzer = "mv_text_query"
)

// TextFields returns the text fields searched by a free word or phrase, in
// a fixed order.
func TextFields() []string {
	return []string{
		IndexFrom, IndexTo, IndexCc, IndexBcc,
		IndexSubject, IndexBody, IndexAttachment, IndexAttachmentText,
	}
}

// DayValue returns the value of IndexDay for a sent date: YYYYMMDD of t in
// t's own location. Pass the time as parsed from the Date: header, not
// converted to UTC or local time.
func DayValue(t time.Time) int {
	y, m, d := t.Date()
	return dayNumber(y, m, d)
}

func dayNumber(y int, m time.Month, d int) int {
	return y*10000 + int(m)*100 + d
}

// EnvelopeKey is the IndexEnvelope term of an envelope recipient of a
// journaled copy in account; EnvelopeBlindKey that of a blind one. The
// address is lower-cased: envelope terms match the whole address,
// case-insensitively.
func EnvelopeKey(account, addr string) string {
	return account + "\x00rcpt\x00" + strings.ToLower(strings.TrimSpace(addr))
}

// EnvelopeBlindKey: see EnvelopeKey.
func EnvelopeBlindKey(account, addr string) string {
	return account + "\x00bcc\x00" + strings.ToLower(strings.TrimSpace(addr))
}

// PlaceKey is the IndexPlace value of a mailbox of an account.
func PlaceKey(account, mailbox string) string {
	return account + "\x00" + CanonicalMailbox(mailbox)
}

// FlagKey is the IndexFlag term of a flag held by any occurrence: the flag
// in lower case (IMAP flags and keywords compare case-insensitively).
func FlagKey(flag string) string { return strings.ToLower(flag) }

// FlagPlaceKey is the IndexFlag term of a flag held by an occurrence in a
// mailbox of an account.
func FlagPlaceKey(account, mailbox, flag string) string {
	return PlaceKey(account, mailbox) + "\x00" + FlagKey(flag)
}

// CanonicalMailbox returns name with the inbox spelled "INBOX": RFC 9051
// section 5.1 makes the name INBOX case-insensitive, every other mailbox
// name is case-sensitive.
func CanonicalMailbox(name string) string {
	if len(name) == 5 && equalFoldASCII(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
