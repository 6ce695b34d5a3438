package indexer

import (
	"context"

	"mailvault/ledger"
)

// ledgerCatalog is what the ledger reads of the catalog (ledger.go).
type ledgerCatalog interface {
	LedgerRows(ctx context.Context, kind string, after int64, fn func(ledger.Leaf) error) error
	MessageLeafID(ctx context.Context, sha256hex string) (int64, error)
	HoldsDigest(ctx context.Context) (string, error)
}

// HoldsState names the holds' state in the ledger.
const HoldsState = "holds"

// LedgerStates gives the holds' digest (ledger.StateSource).
func (a *Archive) LedgerStates(ctx context.Context) (map[string]string, error) {
	d, err := a.cat.HoldsDigest(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]string{HoldsState: d}, nil
}

// LedgerRows gives the catalog's rows of a ledger kind (ledger.Source).
func (a *Archive) LedgerRows(ctx context.Context, kind string, after int64, fn func(ledger.Leaf) error) error {
	return a.cat.LedgerRows(ctx, kind, after, fn)
}

// MessageLeafID is the id of the message's catalog row, its leaf's id
// (sql.ErrNoRows when the archive has no such message).
func (a *Archive) MessageLeafID(ctx context.Context, sha256hex string) (int64, error) {
	return a.cat.MessageLeafID(ctx, sha256hex)
}
