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
