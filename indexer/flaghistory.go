package indexer

import (
	"context"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// FlagHistory is the flag history of one occurrence of a message
// (catalog/flaghistory.go says what is kept and why): each flag set the
// archive saw its server hold, oldest first, the last one the flags now.
type FlagHistory struct {
	Account     string         `json:"account"`
	Mailbox     string         `json:"mailbox"`
	UIDValidity uint32         `json:"uidvalidity"`
	UID         uint32         `json:"uid"`
	Sightings   []FlagSighting `json:"sightings"`
	// Since is, for each flag the occurrence has now, when it was first
	// seen in the run of sightings that still holds it (RFC 3339, UTC).
	Since map[string]string `json:"since"`
}

// FlagSighting is one flag set seen, with how and what changed.
type FlagSighting struct {
	At      string   `json:"at"` // RFC 3339, UTC
	Source  string   `json:"source"`
	Flags   []string `json:"flags"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	// Dropped counts changes before this one that the history did not
	// keep (a server flapping a flag past catalog.FlagHistoryCap).
	Dropped int `json:"dropped,omitempty"`
}

// FlagHistories returns the flag histories of the occurrences of the
// messages hexes (sha256 in hex), by hex; a message the catalog does not
// hold has none. Callers scope the occurrences (package service).
func (a *Archive) FlagHistories(ctx context.Context, hexes []string) (map[string][]FlagHistory, error) {
	keys := make([][32]byte, 0, len(hexes))
	byKey := make(map[[32]byte]string, len(hexes))
	for _, h := range hexes {
		k, err := store.ParseKey(h)
		if err != nil {
			return nil, ErrNoMessage
		}
		keys = append(keys, k)
		byKey[k] = h
	}
	hs, err := a.cat.FlagHistories(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]FlagHistory, len(hs))
	for k, occs := range hs {
		list := make([]FlagHistory, 0, len(occs))
		for _, o := range occs {
			list = append(list, flagHistory(o))
		}
		out[byKey[k]] = list
	}
	return out, nil
}

// FlagHistory is FlagHistories of one message; ErrNoMessage when the
// catalog does not hold it.
func (a *Archive) FlagHistory(ctx context.Context, hex string) ([]FlagHistory, error) {
	hs, err := a.FlagHistories(ctx, []string{hex})
	if err != nil {
		return nil, err
	}
	h, ok := hs[hex]
	if !ok {
		return nil, ErrNoMessage
	}
	return h, nil
}

func flagHistory(o catalog.OccurrenceFlags) FlagHistory {
	h := FlagHistory{Account: o.Account, Mailbox: o.Mailbox, UIDValidity: o.UIDValidity, UID: o.UID,
		Sightings: make([]FlagSighting, 0, len(o.Sightings)), Since: map[string]string{}}
	for f, at := range o.FlagFirstSeen() {
		h.Since[f] = at.UTC().Format(flagTime)
	}
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	for _, s := range o.Sightings {
		h.Sightings = append(h.Sightings, FlagSighting{At: s.At.UTC().Format(flagTime),
			Source: s.Source, Flags: nonNil(s.Flags), Added: nonNil(s.Added), Removed: nonNil(s.Removed), Dropped: s.Dropped})
	}
	return h
}

// flagTime is the format of the history's times: RFC 3339 with
// milliseconds, so that sightings of one sweep after another still order.
const flagTime = "2006-01-02T15:04:05.000Z07:00"
