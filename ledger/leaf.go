package ledger

import (
	"encoding/json"
	"fmt"
)

// Kinds of leaf, in the order a Follower appends them in one pass: a
// message before its occurrences, an occurrence before its expunge.
const (
	KindMessage    = "message"    // a unique message stored: its sha256 and size
	KindOccurrence = "occurrence" // a copy of it recorded in a mailbox
	KindExpunge    = "expunge"    // a server expunged an occurrence
	KindTombstone  = "tombstone"  // a message's bytes deleted (retention, erasure)
	KindAudit      = "audit"      // an entry of the audit trail
)

// Kinds lists every kind, in that order.
var Kinds = []string{KindMessage, KindOccurrence, KindExpunge, KindTombstone, KindAudit}

// Direct are the kinds whose leaves their writer appends itself, when it
// writes the row, instead of a Follower following the table: audit entries.
// Any other way into the table (an INSERT behind the archive's back) gives
// a row with no leaf, which Verify names; a Follower would ledger it as if
// it were true. Rows of these kinds may reach the ledger out of id order
// (two processes writing at once).
var Direct = map[string]bool{KindAudit: true}

// Leaf is one entry of the ledger. Its bytes are its JSON encoding by
// encoding/json (fields in this order, empty ones left out), so that the
// same row always gives the same bytes: `ledger verify` re-encodes each row
// of the catalog and of the audit trail and compares bytes. ID is the row's
// id in its table (per kind), so a row inserted, removed or edited after it
// was ledgered shows.
type Leaf struct {
	Kind string `json:"kind"`
	ID   int64  `json:"id"`

	SHA256 string `json:"sha256,omitempty"` // message, occurrence, tombstone
	Size   int64  `json:"size,omitempty"`   // message, tombstone

	Account     string `json:"account,omitempty"` // occurrence
	Mailbox     string `json:"mailbox,omitempty"`
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	UID         uint32 `json:"uid,omitempty"`

	Occurrence int64 `json:"occurrence,omitempty"` // expunge: the occurrence's id
	// At is when the row was written: a message's archive date, an
	// occurrence's first sighting, an expunge's, tombstone's or audit
	// entry's time (retention counts from the archive date: it is in the
	// leaf so that it cannot be moved back to make mail look older).
	At string `json:"at,omitempty"`

	User   string `json:"user,omitempty"` // audit
	Action string `json:"action,omitempty"`
	Detail string `json:"detail,omitempty"`
	Remote string `json:"remote,omitempty"`

	Name string `json:"name,omitempty"` // state: the table

	Reason string `json:"reason,omitempty"` // tombstone
	Rule   string `json:"rule,omitempty"`
	Actor  string `json:"actor,omitempty"`
}

// Encode gives the leaf's bytes.
func (f Leaf) Encode() []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // strings and integers only
	}
	return b
}

// DecodeLeaf parses a leaf's bytes.
func DecodeLeaf(b []byte) (Leaf, error) {
	var f Leaf
	if err := json.Unmarshal(b, &f); err != nil {
		return Leaf{}, fmt.Errorf("ledger: leaf: %w", err)
	}
	if f.Kind == "" || f.ID <= 0 {
		return Leaf{}, fmt.Errorf("ledger: leaf without kind or id")
	}
	return f, nil
}
