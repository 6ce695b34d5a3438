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
//     blobs, and Options.DiscardIndex rebuilds everything.
//   - Bad input never stops the line: a message that does not parse is stored
//     byte-exact, cataloged with its parse error and indexed with what the mime
//     package salvaged.
//
// Concurrency: Ingest hashes, parses and compresses a batch on Options.Workers
// goroutines, then commits it in one catalog transaction. One goroutine (the
// writer) owns the Bleve batch; Ingest hands it documents through a bounded
// channel, so a slow index slows ingest instead of growing memory. A batch is
// committed at BatchDocs documents, BatchBytes of text, or after a short idle
// pause, whichever comes first.
//
// One process owns a data directory: Open takes an exclusive flock on
// <dir>/lock (shared for read-only opens, so several searches can run at once,
// but not beside a writer).
package indexer
