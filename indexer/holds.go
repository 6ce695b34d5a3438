package indexer

import (
	"context"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// Legal holds as the catalog keeps them, for the service layer (which
// decides what a hold covers: service/holds.go).

// holdCatalog is the part of the catalog that keeps holds.
type holdCatalog interface {
	CreateHold(ctx context.Context, h catalog.Hold) (catalog.Hold, error)
	Holds(ctx context.Context) ([]catalog.Hold, error)
	HoldByName(ctx context.Context, name string) (catalog.Hold, error)
	ReleaseHold(ctx context.Context, name, who, reason string) (catalog.Hold, error)
	InAccounts(ctx context.Context, accounts []string, keys [][32]byte) (map[[32]byte]catalog.HeldContent, error)
	AccountCounts(ctx context.Context, accounts []string) (messages, occurrences, unindexed int, err error)
	Epochs(ctx context.Context, accounts []string) ([]catalog.MailboxEpochs, error)
}

// MailboxEpochs is a mailbox with every UIDVALIDITY it has copies under.
type MailboxEpochs = catalog.MailboxEpochs

// Epochs returns the mailboxes of accounts with every epoch they have
// copies in.
func (a *Archive) Epochs(ctx context.Context, accounts []string) ([]MailboxEpochs, error) {
	return a.cat.Epochs(ctx, accounts)
}

// Hold is one legal hold (catalog.Hold).
type Hold = catalog.Hold

// ErrHoldExists and ErrHoldReleased classify CreateHold's and ReleaseHold's
// errors; ErrNoHold a name no hold has.
var (
	ErrHoldExists   = catalog.ErrHoldExists
	ErrHoldReleased = catalog.ErrHoldReleased
	ErrNoHold       = catalog.ErrNotFound
)

// CreateHold records a new hold.
func (a *Archive) CreateHold(ctx context.Context, h Hold) (Hold, error) {
	return a.cat.CreateHold(ctx, h)
}

// Holds returns every hold, active or released, oldest first.
func (a *Archive) Holds(ctx context.Context) ([]Hold, error) { return a.cat.Holds(ctx) }

// HoldByName returns the hold named name (any case).
func (a *Archive) HoldByName(ctx context.Context, name string) (Hold, error) {
	return a.cat.HoldByName(ctx, name)
}

// ReleaseHold releases the hold named name.
func (a *Archive) ReleaseHold(ctx context.Context, name, who, reason string) (Hold, error) {
	return a.cat.ReleaseHold(ctx, name, who, reason)
}

// InAccounts returns, of the messages keys, those with an occurrence
// (expunged or not) in one of accounts, by sha256 hex, each with whether
// the index has yet to catch up with it.
func (a *Archive) InAccounts(ctx context.Context, accounts []string, keys []store.Key) (map[string]bool, error) {
	raw := make([][32]byte, len(keys))
	for i, k := range keys {
		raw[i] = k
	}
	got, err := a.cat.InAccounts(ctx, accounts, raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(got))
	for k, c := range got {
		out[store.Key(k).String()] = c.Unindexed
	}
	return out, nil
}

// AccountCounts returns how many messages and occurrences accounts hold,
// and how many of those messages are not yet indexed.
func (a *Archive) AccountCounts(ctx context.Context, accounts []string) (messages, occurrences, unindexed int, err error) {
	return a.cat.AccountCounts(ctx, accounts)
}
