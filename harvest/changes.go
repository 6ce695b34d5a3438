package harvest

import "context"

// ChangeSink is a Sink that also takes a mailbox's changes piecemeal: only
// what changed since the HIGHESTMODSEQ (RFC 7162) the archive was last
// current to, instead of every UID's flags. A Sink without it gets the
// full sweep (Reconcile) on every change.
type ChangeSink interface {
	Sink
	// Epoch returns what the archive holds of an epoch: the HIGHESTMODSEQ
	// its flags and expunges are current to (0: none yet, a full sweep is
	// due) and how many of its occurrences are live (not expunged).
	Epoch(ctx context.Context, account, mailbox string, uidvalidity uint32) (EpochState, error)
	// Changes records ch in one transaction, its ModSeq with it: a crash
	// leaves the epoch at the old HIGHESTMODSEQ, and the changes are
	// asked for again.
	Changes(ctx context.Context, account, mailbox string, uidvalidity uint32, ch Changes) error
}

// EpochState is what the archive holds of one epoch of a mailbox.
type EpochState struct {
	ModSeq uint64
	Live   int
}

// UIDRange is the UIDs Start to Stop, both included (0 < Start <= Stop).
type UIDRange struct{ Start, Stop uint32 }

// Changes is what a partial sync learned of one epoch.
type Changes struct {
	// Flags are the current flags (sorted) of UIDs whose flags changed.
	Flags map[uint32][]string
	// Vanished are UIDs the server reported expunged (QRESYNC).
	Vanished []UIDRange
	// Listed: Present is the server's whole UID set (UID SEARCH ALL);
	// archived UIDs outside it were expunged.
	Listed  bool
	Present []UIDRange
	// ModSeq is the HIGHESTMODSEQ this brings the epoch to (0: unchanged).
	ModSeq uint64
	// Via says how the changes were asked for: ViaChangedSince or ViaQResync.
	Via string
}

// Values of Changes.Via (the catalog's flag history records them).
const (
	ViaChangedSince = "changedsince"
	ViaQResync      = "qresync"
)
