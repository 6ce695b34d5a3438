package indexer

import (
	"context"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// Read-side lookups for the service layer, so that nothing above the archive
// reaches into the catalog or the store.

// Place is one account and mailbox.
type Place = catalog.Place

// Accounts returns every account name, sorted.
func (a *Archive) Accounts(ctx context.Context) ([]string, error) { return a.cat.Accounts(ctx) }

// Mailboxes returns every (account, mailbox), sorted.
func (a *Archive) Mailboxes(ctx context.Context) ([]Place, error) { return a.cat.AllMailboxes(ctx) }

// ByMessageID returns, for each Message-ID in ids that the archive holds,
// the sha256 (hex) of the messages carrying it.
func (a *Archive) ByMessageID(ctx context.Context, ids []string) (map[string][]string, error) {
	return a.cat.ByMessageID(ctx, ids)
}

// CountUnindexed returns how many messages the index has not caught up with.
func (a *Archive) CountUnindexed(ctx context.Context) (int, error) { return a.cat.CountUnindexed(ctx) }

// ImportState is what an import into mailbox mb needs to know: how many
// copies of each content the mailbox's current epoch holds, and the next
// free UID.
func (a *Archive) ImportState(ctx context.Context, mb catalog.Mailbox) (have map[store.Key]int, next uint32, err error) {
	counts, err := a.cat.ContentCounts(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		return nil, 0, err
	}
	maxUID, err := a.cat.MaxUID(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		return nil, 0, err
	}
	have = make(map[store.Key]int, len(counts))
	for k, n := range counts {
		have[store.Key(k)] = n
	}
	return have, max(mb.UIDNext, maxUID+1), nil
}

// OccurrenceRecord is one occurrence as the catalog holds it.
type OccurrenceRecord struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	SHA256      string // hex, the message's id (Message, Raw)
	Flags       []string
	Expunged    string // when the server expunged it (RFC 3339); "" while it is there
}

// Occurrences returns every occurrence in the archive, by account, mailbox,
// uidvalidity and uid, read in one consistent snapshot. It holds the whole
// list in memory: for checks, exports of small archives and tests.
func (a *Archive) Occurrences(ctx context.Context) ([]OccurrenceRecord, error) {
	rows, err := a.cat.Occurrences(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]OccurrenceRecord, len(rows))
	for i, r := range rows {
		out[i] = OccurrenceRecord{Account: r.Account, Mailbox: r.Mailbox, UIDValidity: r.UIDValidity, UID: r.UID,
			SHA256: store.Key(r.SHA256).String(), Flags: r.Flags, Expunged: r.ExpungedAt}
	}
	return out, nil
}

// SkippedRecord is a message a server would not deliver, after retries.
type SkippedRecord struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Reason      string
	At          string // RFC 3339, when it was last skipped
}

// Skipped returns every skipped message, by account, mailbox, uidvalidity and uid.
func (a *Archive) Skipped(ctx context.Context) ([]SkippedRecord, error) {
	rows, err := a.cat.Skipped(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SkippedRecord, len(rows))
	for i, r := range rows {
		out[i] = SkippedRecord(r)
	}
	return out, nil
}

// Blobs calls fn with the key of every blob in the store, in no particular
// order; entries of the store that are not blobs are left out (Verify
// reports them). It stops at fn's first error and returns it.
func (a *Archive) Blobs(ctx context.Context, fn func(k store.Key) error) error {
	return a.store.Walk(ctx, func(k store.Key, _ string, ok bool) error {
		if !ok {
			return nil
		}
		return fn(k)
	})
}
