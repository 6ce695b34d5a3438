package export

import (
	"context"
	"time"
)

// Occurrence is one archived copy of a message: where a custodian held it.
type Occurrence struct {
	Account      string    `json:"account"` // the custodian
	Mailbox      string    `json:"mailbox"`
	UIDValidity  uint32    `json:"uidvalidity"`
	UID          uint32    `json:"uid"`
	InternalDate time.Time `json:"internal_date,omitzero"` // when the server received it (DATERECEIVED)
	URL          string    `json:"url"`                    // RFC 5092 IMAP URL, or mailvault:// for imported mail
}

// Message is one unique message in scope with its copies in scope.
type Message struct {
	SHA256      string // hex sha256 of Raw: the archive's key
	Raw         []byte // byte-exact, already checked against SHA256 by the Source
	ParseError  string // the archive's parse error, "" when none
	Occurrences []Occurrence
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
}
