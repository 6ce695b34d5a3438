package harvest

import (
	"time"
)

// State is where an account's or a mailbox's harvest stands. The values are
// shown to users as they are (status page, `mailvault status`).
type State string

// Account states.
const (
	StateConnecting State = "connecting"
	StateHarvesting State = "harvesting"
	StateBackingOff State = "backing off"
	// StateThrottled: the server said "slow down" (throttle.go); Error has
	// its words. A longer wait than backing off, never parked.
	StateThrottled State = "throttled"
	StateError     State = "error" // parked: a refused login or an untrusted certificate
)

// Mailbox states, while the account is harvesting.
const (
	StateCatchingUp State = "catching up"
	StateIdle       State = "idle"
	StatePolling    State = "polling"
)

// MailboxState is what a Harvester knows of one mailbox, for status.
type MailboxState struct {
	Mailbox        string
	UIDValidity    uint32
	ServerMessages uint32
	State          State // StateCatchingUp, StateIdle, StatePolling
	LastSync       time.Time
	// While catching up: messages this catch-up has to fetch, how many it
	// has fetched, and since when.
	ToFetch, Fetched int       `json:",omitempty"`
	CatchUpSince     time.Time `json:",omitzero"`
}

// Status is the state of one account's harvest.
type Status struct {
	Account string
	State   State // StateConnecting, StateHarvesting, StateBackingOff, StateThrottled, StateError
	Error   string
	// RetryAt is when the harvester connects again, while it waits: backing
	// off, throttled or parked (zero otherwise).
	RetryAt   time.Time `json:",omitzero"`
	Mailboxes map[string]MailboxState
	Counters  Counters
}

// Counters count since the Harvester was made, for metrics.
type Counters struct {
	Logins   int64 // successful logins (one per connection)
	Failures int64 // sessions ended by an error (then a reconnect)
	// Throttled counts those of the Failures that were the server saying
	// "slow down" (ErrThrottled).
	Throttled int64
	Messages  int64 // messages fetched and handed to the Sink
	Bytes     int64 // their bytes
	Skipped   int64 // messages recorded as skipped
	// How a sync that had to look at flags and expunges did it (sync.go):
	// a full UID+FLAGS sweep, CONDSTORE's CHANGEDSINCE, or QRESYNC.
	Sweeps, ChangedSince, QResyncs int64
	// ResyncNanos is the time those took, the Sink's part included.
	ResyncNanos int64
	// GmailKnown counts messages recorded by X-GM-MSGID, not downloaded
	// (gmail.go).
	GmailKnown int64
}

// Status returns a copy of the harvester's current state.
func (h *Harvester) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.status
	s.Mailboxes = make(map[string]MailboxState, len(h.status.Mailboxes))
	for k, v := range h.status.Mailboxes {
		s.Mailboxes[k] = v
	}
	return s
}

func (h *Harvester) count(f func(c *Counters)) {
	h.mu.Lock()
	f(&h.status.Counters)
	h.mu.Unlock()
}

func (h *Harvester) setState(state State, errText string) {
	h.setWaiting(state, errText, time.Time{})
}

// setWaiting sets the account's state while Run waits to connect again at
// retryAt.
func (h *Harvester) setWaiting(state State, errText string, retryAt time.Time) {
	h.mu.Lock()
	h.status.State, h.status.Error, h.status.RetryAt = state, errText, retryAt
	h.mu.Unlock()
}

func (h *Harvester) setMailbox(ms MailboxState) {
	h.mu.Lock()
	h.status.Mailboxes[ms.Mailbox] = ms
	h.mu.Unlock()
}

func (h *Harvester) markIdle(mb string) {
	h.mu.Lock()
	ms := h.status.Mailboxes[mb]
	ms.Mailbox, ms.State = mb, StateIdle
	h.status.Mailboxes[mb] = ms
	h.mu.Unlock()
}

// progress records how far a catch-up of mb has come.
func (h *Harvester) progress(mb string, toFetch, fetched int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := h.status.Mailboxes[mb]
	if fetched == 0 {
		ms.CatchUpSince = time.Now()
	}
	ms.ToFetch, ms.Fetched = toFetch, fetched
	h.status.Mailboxes[mb] = ms
}

func (h *Harvester) mailboxState(mb string) MailboxState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status.Mailboxes[mb]
}
