package service

import (
	"context"

	"mailvault/indexer"
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
