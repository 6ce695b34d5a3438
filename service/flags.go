package service

import (
	"context"
	"maps"
	"slices"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// ActionReadFlags: a message's flag history read (detail: its sha256).
// Flags are a person's annotations of the message (when they read it,
// answered it, deleted it): audited like the message itself.
const ActionReadFlags = "read-flags"

// FlagHistory returns the flag history of message id's occurrences that c
// may see, oldest sighting first (indexer.FlagHistory). A message c may
// not see is not found, as for every read (lookup), and the refusal is
// audited; the read is audited as ActionReadFlags.
func (s *Service) FlagHistory(ctx context.Context, c Caller, id string) ([]indexer.FlagHistory, error) {
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, s.denied(ctx, c, ActionReadFlags, id, err)
	}
	all, err := s.a.FlagHistory(ctx, h.SHA256)
	if err != nil {
		return nil, err
	}
	out := []indexer.FlagHistory{}
	for _, o := range all {
		if c.Sees(o.Account) {
			out = append(out, o)
		}
	}
	if err := s.audit(ctx, c, ActionReadFlags, h.SHA256); err != nil {
		return nil, err
	}
	return out, nil
}

// GmailLabels is what Gmail's X-GM-EXT-1 said of a message in one account
// (harvest/gmail.go): its X-GM-MSGID, X-GM-THRID and labels at the latest
// sighting.
type GmailLabels struct {
	Account string `json:"account"`
	catalog.Gmail
}

// Gmail returns what Gmail said of message id in each account c may see,
// by account name; nothing for a message never harvested from Gmail.
// Labels are annotations like flags: a message c may not see is not
// found (lookup), and the read is audited as ActionReadFlags.
func (s *Service) Gmail(ctx context.Context, c Caller, id string) ([]GmailLabels, error) {
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, s.denied(ctx, c, ActionReadFlags, id, err)
	}
	all, err := s.a.GmailOf(ctx, h.SHA256)
	if err != nil {
		return nil, err
	}
	out := []GmailLabels{}
	for _, acct := range slices.Sorted(maps.Keys(all)) {
		if c.Sees(acct) {
			out = append(out, GmailLabels{Account: acct, Gmail: all[acct]})
		}
	}
	if err := s.audit(ctx, c, ActionReadFlags, h.SHA256); err != nil {
		return nil, err
	}
	return out, nil
}
