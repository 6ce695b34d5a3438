package export

import (
	"context"
	"errors"
	"time"

	"mailvault/indexer/mime"
)

// ErrCorrupt is wrapped by a Source's error for a message whose bytes fail
// their hash check. It stops the export: no manifest is written.
var ErrCorrupt = errors.New("message fails its hash check")

// ErrNotEmpty is returned by Write when the target exists and is not empty.
var ErrNotEmpty = errors.New("export target exists and is not empty")

// Occurrence is one archived copy of a message: where a custodian held it.
type Occurrence struct {
	Account      string    `json:"account"` // the custodian
	Mailbox      string    `json:"mailbox"`
	UIDValidity  uint32    `json:"uidvalidity"`
	UID          uint32    `json:"uid"`
	InternalDate time.Time `json:"internal_date,omitzero"` // when the server received it (DATERECEIVED)
	URL          string    `json:"url"`                    // RFC 5092 IMAP URL, or mailvault:// for imported mail
	// Flags are the copy's flags when it was exported, each with since
	// when the archive saw it so (its flag history): the load files' FLAGS.
	Flags []FlagSince `json:"flags,omitempty"`
}

// FlagSince is a flag a copy has, and when the archive first saw it set
// in the run of sightings that still holds it (zero: unknown).
type FlagSince struct {
	Flag  string    `json:"flag"`
	Since time.Time `json:"since,omitzero"`
}

// Message is one unique message in scope with its copies in scope.
type Message struct {
	SHA256      string // hex sha256 of Raw: the archive's key
	Raw         []byte // byte-exact, already checked against SHA256 by the Source
	ParseError  string // the archive's parse error, "" when none
	Occurrences []Occurrence
	// AttachmentTexts is the text the archive extracted from attachments
	// package mime gives no text for (PDF, Office, archives …), by their
	// index in the parse's list of attachments: the TEXT of those
	// documents. nil when there is none.
	AttachmentTexts map[int]string
	// AttachmentTextsPending: the archive had not extracted the
	// attachments' text when the message was exported (queued, or archived
	// before extraction existed); the draft notes it (an Exclusion), so
	// that TEXT missing for that reason is never silent.
	AttachmentTextsPending bool
	// Unextracted, when not nil, says the archive holds no extraction
	// record or queue row for the message (archived before attachment text
	// existed) and reports whether a parse of it has attachments the
	// extractor would read: the draft asks it of its own parse and, if so,
	// notes the message as it notes AttachmentTextsPending.
	Unextracted func(*mime.Message) bool
	// Provenance is which sources saw the message: "journal", "mailbox" or
	// "both" (the journal and a mailbox copy linked by content), "" when
	// unknown. The load files' PROVENANCE.
	Provenance string
}

// Source hands out the messages of an export, in a stable order (the same
// scope gives the same order on every run).
type Source interface {
	// Count returns how many messages Each will hand out (for progress).
	Count(ctx context.Context) (int, error)
	// Each calls fn for every message in scope, in order, and stops at the
	// first error fn or the Source returns. A message whose bytes fail
	// their hash check is an error wrapping ErrCorrupt.
	Each(ctx context.Context, fn func(Message) error) error
}

// Format is what an export writes.
type Format string

const (
	// FormatProduction: NATIVES/, TEXT/, DATA/ (DAT, CSV, EDRM XML, OPT).
	FormatProduction Format = "production"
	// FormatMbox: one mboxrd file of the messages.
	FormatMbox Format = "mbox"
	// FormatEML: one .eml per message.
	FormatEML Format = "eml"
)

// Dedup says how copies of one message across custodians become documents.
type Dedup string

const (
	// DedupNone: one document per copy (occurrence) in scope.
	DedupNone Dedup = "none"
	// DedupGlobal: one document per unique message; ALLCUSTODIANS and
	// FOLDERPATH list every copy in scope.
	DedupGlobal Dedup = "global"
	// DedupCustodian: one document per unique message per custodian.
	DedupCustodian Dedup = "custodian"
)

// Encoding is the character encoding of the DAT and CSV load files.
type Encoding string

const (
	EncodingUTF8BOM Encoding = "utf-8"        // with a byte-order mark (Relativity detects it)
	EncodingCP1252  Encoding = "windows-1252" // characters it lacks become "?"; counted in the manifest
)

// Options describe one export. Dir must not exist or be empty.
type Options struct {
	Dir      string
	Zip      bool // write Dir as one zip file (Dir + ".zip") instead of a directory
	Format   Format
	Dedup    Dedup
	Encoding Encoding
	// Control numbers: Prefix + the number, zero-padded to Width digits,
	// from Start (defaults "MV", 1, 8).
	Prefix string
	Start  int
	Width  int
	// Scope is recorded in the manifest as given (the search, custodians,
	// dates, ids); By is who ran the export; Tool is the program's version.
	Scope any
	By    string
	Tool  string
	// Progress, when not nil, is called with messages done and the total.
	Progress func(done, total int)
	// Proofs, when not nil, puts the archive ledger's signed checkpoint in
	// PROOF/checkpoint.txt and each message's inclusion proof against it in
	// PROOF/<folder>/<control number>.json (production format only).
	Proofs Proofs
}

// Proofs gives the ledger's proofs of the exported messages
// (docs/ledger.md has the bundle's format; verify-proof checks one).
type Proofs interface {
	// Checkpoint is the signed checkpoint every bundle is proved against.
	Checkpoint() []byte
	// Bundle is the proof bundle, JSON, of the message sha256 (hex).
	Bundle(sha256 string) ([]byte, error)
}

// Limits of one family (a message with its attachments and embedded
// messages). What is beyond them stays inside the message's native (nothing
// is lost) but gets no document of its own; each cut is an Exclusion in the
// manifest.
const (
	// MaxFamily is the most documents one family gets (the message counts).
	MaxFamily = 1000
	// MaxEmbedDepth is how deep embedded message/rfc822 parts are split
	// into documents of their own; deeper ones are natives without children.
	MaxEmbedDepth = 8
)

// Manifest describes a finished export; manifest.json holds it. It is
// written after every other file of the export except custody.txt and
// SHA256SUMS: an export without it is incomplete.
type Manifest struct {
	ManifestVersion int       `json:"manifest_version"`
	Tool            string    `json:"tool"`
	By              string    `json:"by"`
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished"`
	Scope           any       `json:"scope"`
	Format          Format    `json:"format"`
	Dedup           Dedup     `json:"dedup"`
	Encoding        Encoding  `json:"encoding"`
	Prefix          string    `json:"prefix"`
	Start           int       `json:"start"`
	Width           int       `json:"width"`
	Counts          Counts    `json:"counts"`
	// Errors are things that went wrong without stopping the export.
	Errors []string `json:"errors"`
	// Exclusions are documents that were not produced (see MaxFamily).
	Exclusions []Exclusion `json:"exclusions"`
	// Files lists every file of the export but manifest.json, custody.txt
	// and SHA256SUMS. Write returns a Manifest without it (it is streamed
	// to manifest.json, not kept in memory); ReadManifest fills it.
	Files []File `json:"files,omitempty"`
	// SHA256 is manifest.json's sha256 (hex), the one custody.txt and
	// SHA256SUMS state: set by Write for the audit trail, not a field of
	// manifest.json itself (nor filled in by ReadManifest).
	SHA256 string `json:"-"`
}

// Counts are the totals of an export.
type Counts struct {
	Messages    int   `json:"messages"`    // unique messages handed out by the Source
	Occurrences int   `json:"occurrences"` // copies of them in scope
	Documents   int   `json:"documents"`   // control numbers given
	Emails      int   `json:"emails"`      // documents that are top-level messages
	Attachments int   `json:"attachments"` // documents with a parent
	ParseErrors int   `json:"parse_errors"`
	Excluded    int   `json:"excluded"`
	Files       int   `json:"files"`
	Bytes       int64 `json:"bytes"`
	// Unmappable counts characters the load files' encoding lacks
	// (written as "?"); 0 in UTF-8.
	Unmappable int `json:"unmappable"`
}

// File is one file of an export with its hashes. For a message's native
// (the raw message), ArchiveSHA256 is the archive's sha256 of it, which
// Verify checks against the file's own.
type File struct {
	Path          string `json:"path"` // relative to the export, with "/"
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256"`
	MD5           string `json:"md5"`
	DocID         string `json:"doc,omitempty"`
	ArchiveSHA256 string `json:"archive_sha256,omitempty"`
}

// Exclusion is something of a message that got no document.
type Exclusion struct {
	DocID  string `json:"doc"`    // the document it belongs to
	SHA256 string `json:"sha256"` // the message's archive sha256
	Reason string `json:"reason"`
}
