package indexer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/indexer/pack"
	"mailvault/indexer/store"
)

// Storage seams: what the archive needs of its store of record and its
// catalog, and nothing more. The embedded defaults (package store: one zstd
// file per blob, or package pack: append-only segments, as the archive's
// recorded layout says, layout.go; package catalog: SQLite) are wired in
// Open. docs/design.md ("Storage seams", "Pack segments") says how they, S3
// and PostgreSQL plug in.

// blobStore is the store of record for message bytes. Blobs are
// content-addressed (key = sha256 of the raw bytes) and written once.
//
// A write has two halves so that the costly durability step is paid once per
// batch, whatever the medium: Stage puts the bytes where they are neither
// visible nor durable (a temporary file; the tail of a pack segment; a
// staging object or buffered multipart upload), Publish makes a batch of
// staged blobs durable and visible under their keys, never replacing one
// that exists (syncfs + RENAME_NOREPLACE + syncfs; fsync of the segment and
// its index; a conditional PUT with Object Lock). The catalog references a
// blob only after Publish returned. Discard drops what will not be published.
type blobStore interface {
	Stage(ctx context.Context, k store.Key, raw []byte) (store.Staged, error)
	Publish(ctx context.Context, staged []store.Staged) error
	Discard(staged []store.Staged)

	// Get returns a blob's bytes; a blob that cannot be decoded is
	// ErrBlobCorrupt. The archive hashes what it returns (readBlob).
	Get(ctx context.Context, k store.Key) ([]byte, error)
	Exists(ctx context.Context, k store.Key) (bool, error)
	// Verify re-reads the blob and checks that it hashes to its key.
	Verify(ctx context.Context, k store.Key) error
	// Walk lists every blob (name is where the store keeps it); entries that
	// are not blobs come with ok false. Blobs published meanwhile may be missed.
	Walk(ctx context.Context, fn func(k store.Key, name string, ok bool) error) error
	// Delete removes a blob on purpose (retention, erasure) and returns the
	// record of it; Dispose calls it after the tombstone is durable.
	Delete(ctx context.Context, k store.Key, reason string) (store.Deletion, error)

	Close() error
}

// mailboxCatalog is the mailbox and checkpoint half of the catalog, used by
// harvesters and imports. Every method is its own transaction.
type mailboxCatalog interface {
	EnsureMailbox(ctx context.Context, account, name, source string, uidvalidity uint32) (catalog.Mailbox, error)
	Mailbox(ctx context.Context, account, name string) (catalog.Mailbox, error)
	OpenEpoch(ctx context.Context, account, accountURL, name string, uidvalidity uint32) (uint32, bool, error)
	ReconcileFlags(ctx context.Context, mailboxID int64, uidvalidity uint32, flags map[uint32][]string) (int, int, []int64, error)
	EpochModSeq(ctx context.Context, mailboxID int64, uidvalidity uint32) (uint64, int, error)
	Changes(ctx context.Context, mailboxID int64, uidvalidity uint32, ch catalog.EpochChanges) (int, int, []int64, error)
	MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error)
	Skip(ctx context.Context, account, name string, uidvalidity, uid uint32, reason string) error
}

// ingestCatalog records arrivals. RecordIngest is one transaction per batch;
// its correctness rests on the transaction and the unique keys, not on the
// archive's commitMu (which only orders index documents within a process).
type ingestCatalog interface {
	RecordIngest(ctx context.Context, arrivals []catalog.Arrival) ([]catalog.Recorded, error)
	Gen(ctx context.Context, messageID int64) (int64, error)
	Places(ctx context.Context, messageID int64) ([]catalog.Place, error)
}

// indexCatalog is the index bookkeeping: gen is what the index must hold for
// a message, indexed_gen what it holds. MarkIndexed only ever raises
// indexed_gen; MarkUnindexed and ResetIndexed only lower it (always safe).
type indexCatalog interface {
	Unindexed(ctx context.Context, afterID int64, limit int) ([]catalog.IndexTask, error)
	CountUnindexed(ctx context.Context) (int, error)
	MarkIndexed(ctx context.Context, tasks []catalog.IndexTask) error
	MarkUnindexed(ctx context.Context, ids []int64) error
	ResetIndexed(ctx context.Context) error
	Messages(ctx context.Context, afterID int64, limit int) ([]catalog.IndexTask, error)
	CountMessages(ctx context.Context) (int, error)
	IndexTasks(ctx context.Context, ids []int64) ([]catalog.IndexTask, error)
}

// lookupCatalog is the read side that searches and pages use.
type lookupCatalog interface {
	Locate(ctx context.Context, keys [][32]byte) (map[[32]byte]*catalog.Located, error)
	MailboxOccurrences(ctx context.Context, mailboxID int64, uidvalidity uint32, withExpunged bool) ([]catalog.MailboxOccurrence, error)
	FolderMessages(ctx context.Context, mailboxID int64, uidvalidity uint32) ([]catalog.FolderMessage, error)
	Accounts(ctx context.Context) ([]string, error)
	AllMailboxes(ctx context.Context) ([]catalog.Place, error)
	ByMessageID(ctx context.Context, ids []string) (map[string][]string, error)
	ContentCounts(ctx context.Context, mailboxID int64, uidvalidity uint32) (map[[32]byte]int, error)
	MaxUID(ctx context.Context, mailboxID int64, uidvalidity uint32) (uint32, error)
	Occurrences(ctx context.Context) ([]catalog.OccurrenceRow, error)
	Skipped(ctx context.Context) ([]catalog.SkippedRow, error)
	FlagHistories(ctx context.Context, keys [][32]byte) (map[[32]byte][]catalog.OccurrenceFlags, error)
}

// statusCatalog is what status and verify read: whole-catalog reports, each
// in one read transaction (a consistent snapshot), and live re-checks.
type statusCatalog interface {
	MailboxStats(ctx context.Context) ([]catalog.MailboxStats, error)
	EachMessageState(ctx context.Context, fn func(catalog.MessageState) error) error
	MessageStates(ctx context.Context, keys [][32]byte) (map[[32]byte]catalog.MessageState, error)
	// Check is the database's own consistency check; it returns what it
	// found (nil: sound). quick trades thoroughness for time.
	Check(ctx context.Context, quick bool) ([]string, error)
}

// extractCatalog is attachment text (attachments.go): the queue, the
// results, their counts.
type extractCatalog interface {
	PendingExtracts(ctx context.Context, afterID int64, limit int) ([]catalog.ExtractTask, error)
	EnsureExtract(ctx context.Context, id int64) (bool, error)
	RequeueExtract(ctx context.Context, id int64) (bool, error)
	RecordExtracts(ctx context.Context, version int, recs []catalog.ExtractRecord) ([]bool, error)
	AttachmentTexts(ctx context.Context, id int64) ([]catalog.AttachmentText, error)
	ExtractPending(ctx context.Context, id int64) (bool, error)
	Reextract(ctx context.Context, version int) (int64, error)
	ExtractCounts(ctx context.Context, version int) (catalog.ExtractCounts, error)
	MessageRowID(ctx context.Context, sha [32]byte) (int64, error)
	ExtractStates(ctx context.Context, keys [][32]byte) (map[[32]byte]catalog.ExtractOf, error)
}

// catalogStore is the whole catalog an Archive holds.
type catalogStore interface {
	extractCatalog
	mailboxCatalog
	ingestCatalog
	indexCatalog
	lookupCatalog
	statusCatalog
	holdCatalog
	disposalCatalog
	ledgerCatalog
	Close() error
}

// ErrBlobCorrupt is (wrapped in) the error of every read of a blob whose
// bytes are not the message its key names: the file does not decode, or
// its content does not hash to the key (a disk fault, or a file swapped or
// edited behind the archive's back). It is store.ErrCorrupt, so errors.Is
// classifies either.
var ErrBlobCorrupt = store.ErrCorrupt

// readBlob is the only way the archive reads a blob: Raw (and through it
// the service's downloads, attachments and exports), CatchUp and Reindex,
// IMAP SEARCH verification and Recover. It hashes what the store returns
// and refuses content that is not the key's (invariant 3: what leaves the
// archive is the exact bytes the key names), logging it at error with the
// key: a blob served or indexed under another message's key would be
// evidence silently replaced. The check is here, above the seam, so that it
// holds for any blobStore; it costs one sha256 of the message per read
// (BenchmarkReadBlob: see docs/security.md).
func (a *Archive) readBlob(ctx context.Context, k store.Key) ([]byte, error) {
	raw, err := a.store.Get(ctx, k)
	if err != nil {
		// A blob deleted on purpose is not corruption: the read says
		// when and under which rule (ErrDisposed, dispose.go).
		err = a.disposedError(ctx, k, err)
		if errors.Is(err, ErrBlobCorrupt) {
			a.log.Error("blob corrupt: refusing to read it", "sha256", k.String(), "err", err)
		}
		return nil, err
	}
	if got := sha256.Sum256(raw); got != k {
		err := fmt.Errorf("read blob %s: %w: its content hashes to %s (run `mailvault verify`)", k, ErrBlobCorrupt, store.Key(got))
		a.log.Error("blob corrupt: refusing to read it", "sha256", k.String(), "content_sha256", store.Key(got).String())
		return nil, err
	}
	return raw, nil
}

// Deletion is the record of a blob removed on purpose, for the audit log.
type Deletion = store.Deletion

// deleteBlob removes a blob through the seam; only Dispose calls it, after
// the message's tombstone is durable (dispose.go).
func (a *Archive) deleteBlob(ctx context.Context, k store.Key, reason string) (Deletion, error) {
	d, err := a.store.Delete(ctx, k, reason)
	if err == nil {
		a.log.Info("blob deleted", "sha256", k.String(), "reason", reason, "bytes", d.Stored, "at", d.At.Format(time.RFC3339Nano))
	}
	return d, err
}

var (
	_ blobStore    = (*store.Store)(nil)
	_ blobStore    = (*pack.Store)(nil)
	_ catalogStore = (*catalog.Catalog)(nil)
)
