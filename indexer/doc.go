// Package indexer is mailvault's ingest pipeline: it takes raw messages with
// where they live, keeps them in the store of record (package store: zstd
// blobs keyed by sha256), records them in the catalog (package catalog:
// SQLite), and indexes them in Bleve for search.
//
// Invariants (ARCHITECTURE.md):
//   - Nothing lost: Ingest returns only after every item's blob is fsynced
//     (file and directory) and its catalog transaction committed. A caller
//     advances its checkpoint only then.
//   - Nothing duplicated: an occurrence is unique on (account, mailbox,
//     uidvalidity, uid); ingesting it again changes nothing (Present). The same
//     content elsewhere adds an occurrence, never a second blob (Linked).
//   - Stored once, indexed once: one Bleve document per unique message, id =
//     hex sha256, holding the set of accounts and mailbox names of all its
//     occurrences for filtering.
//   - The index is a cache: the catalog's gen/indexed_gen pair says which
//     messages the index does not reflect yet; CatchUp rebuilds them from
//     blobs, and Options.DiscardIndex rebuilds everything offline. Reindex
//     rebuilds it online, beside the live index, and swaps (reindex.go);
//     indexed_gen never claims more than <dir>/index holds, at any moment
//     a crash may freeze.
//   - Nothing lost, even by the catalog: a blob no catalog row references
//     is mail the catalog lost (or a crash left between blob publish and
//     catalog commit; the two cannot be told apart). Verify fails on it
//     (blob-unreferenced), Reindex and DiscardIndex refuse to erase its
//     last trace, and Recover catalogs it in RecoveredAccount/LostAndFound
//     (recover.go). Verify also runs SQLite's integrity_check.
//   - Byte-exact on the way out: every blob read (Raw, CatchUp, Reindex,
//     IMAP SEARCH verification, Recover) hashes the bytes against the key
//     and refuses a mismatch with ErrBlobCorrupt, logged at error
//     (readBlob, storage.go).
//   - Private: every file of the data directory is FileMode (0600) and
//     every directory DirMode (0700) whatever the umask; Open warns about
//     any looser path with the chmod that fixes it (perm.go).
//   - Bad input never stops the line: a message that does not parse is stored
//     byte-exact, cataloged with its parse error and indexed with what the mime
//     package salvaged.
//
// Concurrency: Ingest hashes, parses and compresses a batch on Options.Workers
// goroutines, then commits it in one catalog transaction. One goroutine (the
// writer) owns the Bleve batch; Ingest hands it documents through a bounded
// channel, so a slow index slows ingest instead of growing memory. A batch is
// committed at BatchDocs documents, BatchBytes of text, or after a 200 ms idle
// pause, whichever comes first. The live index is read and written under
// a read lock that Reindex and Compact take exclusively to replace it, so a
// search never meets a closed index.
//
// Storage seams (storage.go): the Archive holds its blob store and catalog
// through small interfaces holding exactly what it uses; package store and
// package catalog are the defaults wired in Open. Nothing above the archive
// reaches either: Status, Verify, Occurrences, Skipped, Blobs, Raw and the
// lookups of lookup.go are the read side.
//
// Verify runs on a live archive against one catalog snapshot (report.go).
//
// One process owns a data directory: Open takes an exclusive flock on
// <dir>/lock (shared for read-only opens, so several searches can run at once,
// but not beside a writer).
package indexer
