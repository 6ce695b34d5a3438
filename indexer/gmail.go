package indexer

import (
	"context"
	"errors"
	"fmt"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// gmailCatalog is the catalog's side of Gmail's X-GM-EXT-1
// (catalog/gmail.go), asserted like provenanceCatalog.
type gmailCatalog interface {
	GmailKnown(ctx context.Context, account string, msgids []uint64) (map[uint64]catalog.GmailMessage, error)
	GmailOf(ctx context.Context, sha [32]byte) (map[string]catalog.Gmail, error)
}

var _ gmailCatalog = (*catalog.Catalog)(nil)

// errNoGmail: the archive's catalog does not keep Gmail's identities.
var errNoGmail = errors.New("this catalog does not record Gmail message IDs")

// GmailKnown returns, of Gmail's X-GM-MSGIDs, those whose message the
// archive holds for account (catalog/gmail.go says why a message seen
// again under another label is the same message). The harvester records
// those without downloading them; Store reads their bytes (GmailRaws).
//
// Each comes with its size: the harvester takes a message as known only
// when the server's RFC822.SIZE agrees.
func (a *Archive) GmailKnown(ctx context.Context, account string, msgids []uint64) (map[uint64]int64, error) {
	gc, ok := a.cat.(gmailCatalog)
	if !ok {
		return nil, nil // nothing known: every message is fetched
	}
	keys, err := gc.GmailKnown(ctx, account, msgids)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]int64, len(keys))
	for id, m := range keys {
		out[id] = m.Size
	}
	return out, nil
}

// GmailRaws returns the bytes of the messages Gmail calls msgids in
// account, read (and checked) from the store, with one catalog look-up for
// them all. An ID the archive no longer holds, or whose blob cannot be
// read, is in failed with why; err is for the look-up itself.
func (a *Archive) GmailRaws(ctx context.Context, account string, msgids []uint64) (raws map[uint64][]byte, failed map[uint64]error, err error) {
	gc, ok := a.cat.(gmailCatalog)
	if !ok {
		return nil, nil, errNoGmail
	}
	keys, err := gc.GmailKnown(ctx, account, msgids)
	if err != nil {
		return nil, nil, err
	}
	raws, failed = map[uint64][]byte{}, map[uint64]error{}
	for _, id := range msgids {
		k, ok := keys[id]
		if !ok {
			failed[id] = fmt.Errorf("gmail: X-GM-MSGID %d of %s: %w", id, account, ErrNoMessage)
			continue
		}
		if raws[id], err = a.readBlob(ctx, store.Key(k.SHA256)); err != nil {
			delete(raws, id)
			failed[id] = err
		}
	}
	return raws, failed, nil
}

// GmailOf returns what Gmail said of the message sha, per account.
func (a *Archive) GmailOf(ctx context.Context, sha string) (map[string]catalog.Gmail, error) {
	k, err := store.ParseKey(sha)
	if err != nil {
		return nil, ErrNoMessage
	}
	gc, ok := a.cat.(gmailCatalog)
	if !ok {
		return nil, nil // nothing recorded, as of a message never seen on Gmail
	}
	return gc.GmailOf(ctx, k)
}
