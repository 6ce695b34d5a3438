package harvest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Gap detection: the checkpoint says every UID below it is archived, and
// nothing else checks that. A message can be on the server below the
// checkpoint and not in the archive: restored or moved in by the server's
// own tools with an old UID (dsync, a backup put back), or lost to a bug.
// A gap check lists the server's UIDs of a mailbox, compares them with what
// the archive holds of the epoch, fetches what is missing below the
// checkpoint like any other message, and reports the numbers (GapReport).
//
// Decisions:
//   - Only UIDs below the checkpoint are fetched here. Storing a UID at or
//     above it would move the checkpoint past UIDs not yet archived; those
//     are the next catch-up's (counted as Pending).
//   - The server's UIDs come from UID SEARCH RETURN (ALL) (RFC 4731) in
//     windows of gapWindow sequence numbers: the answer is compact ranges,
//     and one window's answer stays under the 1 MiB line limit however
//     fragmented the mailbox (50,000 UIDs of 10 digits and a comma). Without
//     ESEARCH, a plain SEARCH answers every UID on one line (7 MB for a
//     million messages), so FETCH 1:* (UID) is used instead: one small
//     response per message, streamed.
//   - Every UID set is held as sorted ranges (uidSet), never a map of UIDs:
//     a contiguous million-message mailbox is one range; the worst case,
//     every other UID expunged, is half a million ranges of 8 bytes. A
//     server whose answer would need more than maxGapRanges ranges, or
//     that names UIDs at or above UIDNEXT, or more UIDs than a window has
//     messages, ends the session with ErrHostile.
//   - Occurrences marked expunged count as held (the archive has the
//     bytes), and are counted apart when the server still lists them;
//     skipped UIDs count as held too (they failed three times or are over
//     max_message_bytes: trying again every six hours gains nothing) and
//     are reported as Skipped.
//   - Periodic checks run on the main connection between polls, when due:
//     every GapCheck (default 6 h) per mailbox, from the last recorded
//     check, with a tenth of jitter; a mailbox never checked is due at a
//     random time within the first interval, so that many accounts do not
//     all list their mailboxes at once. CheckGaps (on demand) opens a
//     connection of its own, so it needs neither the harvester's loop nor
//     a running one.
//   - Sequence numbers may shift under a window if the server expunges
//     during the check: a UID is then missed by this check (never wrongly
//     reported missing, since a missing UID is fetched by UID) and seen by
//     the next one.

// gapWindow is how many sequence numbers one UID SEARCH of a check covers.
const gapWindow = 50_000

// maxGapRanges bounds the ranges of one UID set a check holds (server's or
// archive's): 4 Mi ranges, 32 MiB, beyond any real mailbox's fragments.
const maxGapRanges = 1 << 22

// maxMissingRanges bounds the ranges of missing UIDs one check fetches and
// reports; the count stays exact, the rest waits for the next check.
const maxMissingRanges = 10_000

// Holding is what the archive holds of one UID of an epoch.
type Holding int

const (
	HeldLive     Holding = iota // an occurrence the server is believed to have
	HeldExpunged                // an occurrence marked expunged
	HeldSkipped                 // recorded as skipped, no occurrence
)

// GapSink is a Sink that can say which UIDs of an epoch it holds and keep
// gap-check reports. Harvesters over a Sink without it do no gap checks.
type GapSink interface {
	Sink
	// Held calls fn with every UID of the epoch the archive holds, in
	// ascending order, each once, with what it holds of it. An error of fn
	// stops it and is returned.
	Held(ctx context.Context, account, mailbox string, uidvalidity uint32, fn func(uid uint32, h Holding) error) error
	// GapChecked records the report of one mailbox's check.
	GapChecked(ctx context.Context, r GapReport) error
	// LastGapCheck returns when mailbox was last checked (zero: never).
	LastGapCheck(ctx context.Context, account, mailbox string) (time.Time, error)
}

// GapReport is the outcome of one mailbox's gap check.
type GapReport struct {
	Account     string    `json:"account"`
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uidvalidity"`
	At          time.Time `json:"at"`
	// OnServer: the UIDs the server lists. Of those: Archived, held by
	// the archive (an occurrence, live or marked expunged); Skipped,
	// recorded as skipped; Pending, at or above the checkpoint (the next
	// catch-up's); Missing, below it and held by nothing: the gap.
	OnServer, Archived, Skipped, Pending, Missing int
	// MissingUIDs are the missing UIDs in IMAP set syntax ("5,9:12");
	// MissingTruncated says more were missing than maxMissingRanges
	// ranges (the count is exact; the next check fetches the rest).
	MissingUIDs      string `json:",omitempty"`
	MissingTruncated bool   `json:",omitempty"`
	// Fetched: of the missing, how many the archive holds after the check
	// fetched them; the others vanished meanwhile or failed (Error).
	Fetched int
	// ExpungedPresent: occurrences marked expunged whose UID the server
	// still lists.
	ExpungedPresent int
	// Checkpoint is the mailbox's checkpoint (the first UID not yet
	// archived) when the check ran.
	Checkpoint uint32
	Error      string `json:",omitempty"`
}

// GapCounters count gap checks since the Harvester was made, for metrics.
type GapCounters struct {
	Checks  int64 // mailboxes checked
	Missing int64 // UIDs found missing
	Fetched int64 // of them, fetched and stored
}

// gapState is a Harvester's gap-check bookkeeping.
type gapState struct {
	mu       sync.Mutex
	due      map[string]time.Time // per mailbox: when the next periodic check is due
	counters GapCounters
}

// GapCounters returns the harvester's gap-check counters.
func (h *Harvester) GapCounters() GapCounters {
	h.gaps.mu.Lock()
	defer h.gaps.mu.Unlock()
	return h.gaps.counters
}

// checkDue runs the periodic gap check of each of boxes that is due, on
// cn (the main connection, between polls). An IMAP NO or BAD for one
// mailbox is reported for it and the others go on; anything else (the
// connection, a hostile answer) ends the session.
func (h *Harvester) checkDue(ctx context.Context, cn *conn, boxes []string) error {
	gs, ok := h.sink.(GapSink)
	if !ok || h.opts.GapCheck < 0 {
		return nil
	}
	interval := h.opts.GapCheck
	if interval == 0 {
		interval = 6 * time.Hour
	}
	for _, mb := range boxes {
		h.gaps.mu.Lock()
		if h.gaps.due == nil {
			h.gaps.due = map[string]time.Time{}
		}
		due, known := h.gaps.due[mb]
		h.gaps.mu.Unlock()
		if !known {
			last, err := gs.LastGapCheck(ctx, h.acct.Name, mb)
			if err != nil {
				return err
			}
			due = last.Add(interval + rand.N(interval/10+1))
			if last.IsZero() {
				due = time.Now().Add(rand.N(interval))
			}
			h.gaps.mu.Lock()
			h.gaps.due[mb] = due
			h.gaps.mu.Unlock()
		}
		if time.Now().Before(due) {
			continue
		}
		_, err := h.checkMailbox(ctx, cn, gs, mb)
		h.gaps.mu.Lock()
		h.gaps.due[mb] = time.Now().Add(interval + rand.N(interval/10+1))
		h.gaps.mu.Unlock()
		var ie *imap.Error
		if err != nil && !errors.As(err, &ie) {
			return err
		}
	}
	return nil
}

// CheckGaps checks every harvested mailbox of the account now, on a
// connection of its own, and returns the reports (each also given to the
// Sink). It works whether Run runs or not. A mailbox whose check failed
// on an IMAP NO or BAD has its report with Error set; any other failure
// ends the check and is returned with the reports so far.
func (h *Harvester) CheckGaps(ctx context.Context) ([]GapReport, error) {
	gs, ok := h.sink.(GapSink)
	if !ok {
		return nil, errors.New("gap check: the archive does not keep gap reports")
	}
	cn, end, err := h.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	boxes, _, err := h.mailboxes(ctx, cn)
	if err != nil {
		return nil, err
	}
	var out []GapReport
	for _, mb := range boxes {
		r, err := h.checkMailbox(ctx, cn, gs, mb)
		out = append(out, r)
		var ie *imap.Error
		if err != nil && !errors.As(err, &ie) {
			return out, err
		}
	}
	return out, nil
}

// checkMailbox runs one mailbox's gap check on cn and records its report;
// the report is returned also when the check failed (Error set).
func (h *Harvester) checkMailbox(ctx context.Context, cn *conn, gs GapSink, mb string) (GapReport, error) {
	r := GapReport{Account: h.acct.Name, Mailbox: mb, At: time.Now().UTC()}
	err := h.gapCheck(ctx, cn, gs, &r)
	log := h.log.With("mailbox", mb, "uidvalidity", r.UIDValidity)
	if err != nil {
		r.Error = err.Error()
		log.Warn("gap check failed", "err", err)
	}
	h.gaps.mu.Lock()
	h.gaps.counters.Checks++
	h.gaps.counters.Missing += int64(r.Missing)
	h.gaps.counters.Fetched += int64(r.Fetched)
	h.gaps.mu.Unlock()
	if r.Missing > 0 {
		log.Warn("gap check: messages on the server were not in the archive below the checkpoint",
			"missing", r.Missing, "uids", r.MissingUIDs, "fetched", r.Fetched, "checkpoint", r.Checkpoint)
	} else if err == nil {
		log.Info("gap check: complete", "on_server", r.OnServer, "archived", r.Archived, "pending", r.Pending, "skipped", r.Skipped)
	}
	cn.tc.pause()
	rerr := gs.GapChecked(ctx, r)
	cn.tc.resume()
	if err == nil && rerr != nil {
		err = fmt.Errorf("gap check of %q: record the report: %w", mb, rerr)
	}
	return r, err
}

func (h *Harvester) gapCheck(ctx context.Context, cn *conn, gs GapSink, r *GapReport) error {
	mb := r.Mailbox
	sel, err := cn.c.Select(mb, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("examine %q: %w", mb, err)
	}
	if sel.UIDValidity == 0 {
		return fmt.Errorf("examine %q: %w: no UIDVALIDITY in the answer", mb, ErrHostile)
	}
	r.UIDValidity = sel.UIDValidity
	// The checkpoint first: every UID below it was archived before the
	// archive's UIDs are read, so one the archive lacks is a gap, not a
	// message stored meanwhile.
	cn.tc.pause()
	next, err := h.sink.Checkpoint(ctx, h.acct.Name, h.acct.URL(), mb, sel.UIDValidity)
	cn.tc.resume()
	if err != nil {
		return err
	}
	r.Checkpoint = next
	server, err := h.serverUIDs(cn, mb, sel)
	if err != nil {
		return err
	}
	held, err := h.held(ctx, cn, gs, mb, sel.UIDValidity)
	if err != nil {
		return err
	}
	var below uidSet // the server's UIDs below the checkpoint
	if next > 1 {
		below = server.intersect(uidSet{{Start: 1, Stop: imap.UID(next - 1)}})
	}
	missing := below.subtract(held.all)
	r.OnServer = server.count()
	r.Archived = server.intersect(held.occurrences).count()
	r.Skipped = server.intersect(held.skipped).count()
	r.ExpungedPresent = server.intersect(held.expunged).count()
	r.Pending = r.OnServer - below.count()
	r.Missing = missing.count()
	if r.Missing == 0 {
		return nil
	}
	if len(missing) > maxMissingRanges {
		missing, r.MissingTruncated = missing[:maxMissingRanges], true
	}
	r.MissingUIDs = imap.UIDSet(missing).String()
	if err := h.fetchGaps(ctx, cn, mb, sel.UIDValidity, next, missing); err != nil {
		return err
	}
	after, err := h.held(ctx, cn, gs, mb, sel.UIDValidity)
	if err != nil {
		return err
	}
	r.Fetched = missing.intersect(after.occurrences).count()
	return nil
}

// fetchGaps fetches and stores the messages of missing (all below next):
// their sizes first, a few hundred ranges per command (servers cap a
// command's length; Dovecot at 64 KiB), then the bodies in chunks as a
// catch-up does.
func (h *Harvester) fetchGaps(ctx context.Context, cn *conn, mb string, uidvalidity, next uint32, missing uidSet) error {
	var todo []pendingMessage
	for i := 0; i < len(missing); i += 500 {
		part := missing[i:min(i+500, len(missing))]
		seen := map[imap.UID]bool{}
		err := fetchEach(cn, imap.UIDSet(part), &imap.FetchOptions{UID: true, RFC822Size: true},
			func(buf *imapclient.FetchMessageBuffer) {
				// Only what was asked for, once, below the checkpoint.
				if part.contains(buf.UID) && uint32(buf.UID) < next && !seen[buf.UID] {
					seen[buf.UID] = true
					todo = append(todo, pendingMessage{uid: buf.UID, size: buf.RFC822Size})
				}
			})
		if err != nil {
			return fmt.Errorf("list missing messages of %q: %w", mb, err)
		}
	}
	slices.SortFunc(todo, func(a, b pendingMessage) int { return cmp.Compare(a.uid, b.uid) })
	if len(todo) == 0 {
		return nil
	}
	return h.fetchPending(ctx, cn, mb, uidvalidity, todo)
}

// serverUIDs lists the UIDs of the selected mailbox mb (see the decisions
// above) and checks them against what EXAMINE said.
func (h *Harvester) serverUIDs(cn *conn, mb string, sel *imap.SelectData) (uidSet, error) {
	var b uidSetBuilder
	check := func(start, stop imap.UID) error {
		if start == 0 || stop == 0 {
			return fmt.Errorf("%w: UID SEARCH of %q answered UID 0 or *", ErrHostile, mb)
		}
		if sel.UIDNext != 0 && (start >= sel.UIDNext || stop >= sel.UIDNext) {
			return fmt.Errorf("%w: UID SEARCH of %q answered UID %d, at or above UIDNEXT %d", ErrHostile, mb, max(start, stop), sel.UIDNext)
		}
		return nil
	}
	caps := cn.c.Caps()
	if !caps.Has(imap.CapESearch) && !caps.Has(imap.CapIMAP4rev2) {
		var bad error
		err := fetchEach(cn, imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true},
			func(buf *imapclient.FetchMessageBuffer) {
				if bad == nil {
					if bad = check(buf.UID, buf.UID); bad == nil {
						bad = b.add(buf.UID, buf.UID)
					}
				}
			})
		if bad != nil {
			return nil, bad
		}
		if err != nil {
			return nil, fmt.Errorf("list UIDs of %q: %w", mb, err)
		}
		return b.set(), nil
	}
	for start := uint32(1); start <= uint32(exists(cn.c)); start += gapWindow {
		stop := min(start+gapWindow-1, uint32(exists(cn.c)))
		data, err := cn.c.UIDSearch(&imap.SearchCriteria{SeqNum: []imap.SeqSet{{imap.SeqRange{Start: start, Stop: stop}}}},
			&imap.SearchOptions{ReturnAll: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("list UIDs of %q: %w", mb, err)
		}
		set, _ := data.All.(imap.UIDSet)
		var n uint64
		for _, rg := range set {
			if err := check(rg.Start, rg.Stop); err != nil {
				return nil, err
			}
			lo, hi := min(rg.Start, rg.Stop), max(rg.Start, rg.Stop)
			n += uint64(hi-lo) + 1
			if n > uint64(stop-start+1) {
				return nil, fmt.Errorf("%w: UID SEARCH of %q answered more UIDs than messages %d:%d", ErrHostile, mb, start, stop)
			}
			if err := b.add(lo, hi); err != nil {
				return nil, err
			}
		}
	}
	return b.set(), nil
}

// heldUIDs is what the archive holds of an epoch, as UID sets.
type heldUIDs struct {
	occurrences, expunged, skipped, all uidSet
}

func (h *Harvester) held(ctx context.Context, cn *conn, gs GapSink, mb string, uidvalidity uint32) (heldUIDs, error) {
	var occ, exp, skip, all uidSetBuilder
	cn.tc.pause()
	err := gs.Held(ctx, h.acct.Name, mb, uidvalidity, func(uid uint32, kind Holding) error {
		u := imap.UID(uid)
		if err := all.add(u, u); err != nil {
			return err
		}
		switch kind {
		case HeldSkipped:
			return skip.add(u, u)
		case HeldExpunged:
			if err := exp.add(u, u); err != nil {
				return err
			}
		}
		return occ.add(u, u)
	})
	cn.tc.resume()
	if err != nil {
		return heldUIDs{}, fmt.Errorf("archived UIDs of %q: %w", mb, err)
	}
	return heldUIDs{occurrences: occ.set(), expunged: exp.set(), skipped: skip.set(), all: all.set()}, nil
}

// uidSet is a set of UIDs as sorted, disjoint, non-adjacent ranges
// (Start <= Stop, no 0).
type uidSet []imap.UIDRange

// uidSetBuilder makes a uidSet from ranges added in any order; ranges
// added in ascending order (the usual case) are merged as they come.
type uidSetBuilder struct {
	rs uidSet

	unsort bool
}

// add adds start:stop (start <= stop); it fails when the set would hold
// more than maxGapRanges ranges.
func (b *uidSetBuilder) add(start, stop imap.UID) error {
	if n := len(b.rs); n > 0 {
		last := &b.rs[n-1]
		if start >= last.Start && start <= last.Stop+1 {
			last.Stop = max(last.Stop, stop)
			return nil
		}
		if start < last.Start {
			b.unsort = true
		}
	}
	if len(b.rs) >= maxGapRanges {
		if b.unsort {
			b.rs = b.set() // merging may make room
		}
		if len(b.rs) >= maxGapRanges {
			return fmt.Errorf("%w: a UID set of more than %d ranges", ErrHostile, maxGapRanges)
		}
	}
	b.rs = append(b.rs, imap.UIDRange{Start: start, Stop: stop})
	return nil
}

// set returns the set built, sorted and merged.
func (b *uidSetBuilder) set() uidSet {
	if !b.unsort {
		return b.rs
	}
	slices.SortFunc(b.rs, func(x, y imap.UIDRange) int { return cmp.Compare(x.Start, y.Start) })
	out := b.rs[:0]
	for _, r := range b.rs {
		if n := len(out); n > 0 && r.Start <= out[n-1].Stop+1 {
			out[n-1].Stop = max(out[n-1].Stop, r.Stop)
			continue
		}
		out = append(out, r)
	}
	b.rs, b.unsort = out, false
	return out
}

func (s uidSet) count() int {
	n := 0
	for _, r := range s {
		n += int(r.Stop-r.Start) + 1
	}
	return n
}

func (s uidSet) contains(u imap.UID) bool {
	_, found := slices.BinarySearchFunc(s, u, func(r imap.UIDRange, u imap.UID) int {
		switch {
		case r.Stop < u:
			return -1
		case r.Start > u:
			return 1
		}
		return 0
	})
	return found
}

// intersect returns the UIDs in both s and t.
func (s uidSet) intersect(t uidSet) uidSet {
	var out uidSet
	for i, j := 0, 0; i < len(s) && j < len(t); {
		lo, hi := max(s[i].Start, t[j].Start), min(s[i].Stop, t[j].Stop)
		if lo <= hi {
			out = append(out, imap.UIDRange{Start: lo, Stop: hi})
		}
		if s[i].Stop < t[j].Stop {
			i++
		} else {
			j++
		}
	}
	return out
}

// subtract returns the UIDs of s not in t.
func (s uidSet) subtract(t uidSet) uidSet {
	var out uidSet
	j := 0
	for _, r := range s {
		start := r.Start
		for j < len(t) && t[j].Stop < start {
			j++
		}
		k := j
		for k < len(t) && t[k].Start <= r.Stop {
			if t[k].Start > start {
				out = append(out, imap.UIDRange{Start: start, Stop: t[k].Start - 1})
			}
			if t[k].Stop >= r.Stop {
				start = r.Stop + 1
				break
			}
			start = t[k].Stop + 1
			k++
		}
		if start <= r.Stop && (start != 0) {
			out = append(out, imap.UIDRange{Start: start, Stop: r.Stop})
		}
	}
	return out
}
