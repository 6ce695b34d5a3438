package harvest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// stamp is a mailbox's state on the server as EXAMINE or STATUS report it.
type stamp struct {
	uidValidity, uidNext, messages uint32
	modSeq                         uint64 // 0 without CONDSTORE
	reconciled                     time.Time
}

// same reports whether nothing was added, expunged or (with CONDSTORE)
// changed between s and t.
func (s stamp) same(t stamp) bool {
	return s.uidValidity == t.uidValidity && s.uidNext == t.uidNext && s.messages == t.messages && s.modSeq == t.modSeq
}

// pollMailbox asks for a polled mailbox's STATUS and syncs it when the
// answer differs from the last sync's, or when its flags are due for a
// sweep (servers without CONDSTORE).
func (h *Harvester) pollMailbox(ctx context.Context, cn *conn, mb string) error {
	condstore := cn.c.Caps().Has(imap.CapCondStore)
	st, err := cn.c.Status(mb, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: condstore}).Wait()
	if err != nil {
		return fmt.Errorf("status %q: %w", mb, err)
	}
	now := stamp{uidValidity: st.UIDValidity, uidNext: uint32(st.UIDNext), modSeq: st.HighestModSeq}
	if st.NumMessages != nil {
		now.messages = *st.NumMessages
	}
	h.mu.Lock()
	last, ok := h.synced[mb]
	h.mu.Unlock()
	if ok && last.modSeq == 0 {
		// EXAMINE said the mailbox has no mod-sequences (NOMODSEQ; Dovecot
		// after "doveadm mailbox update --uid-validity"), though STATUS may
		// give a HIGHESTMODSEQ: its flags are swept every FlagSweep, not
		// on every poll.
		now.modSeq = 0
	}
	if ok && last.same(now) && (now.modSeq != 0 || time.Since(last.reconciled) < h.opts.FlagSweep) {
		ms := h.mailboxState(mb)
		ms.Mailbox, ms.State, ms.LastSync = mb, StatePolling, time.Now()
		h.setMailbox(ms)
		return nil
	}
	_, err = h.syncMailbox(ctx, cn, mb, true)
	return err
}

// syncResult is what one syncMailbox found: the UIDVALIDITY its EXAMINE
// answered, and whether the catch-up moved that epoch's checkpoint (mail
// archived, or skipped).
type syncResult struct {
	uidValidity uint32
	grew        bool
}

// syncMailbox catches mailbox mb up from its checkpoint: EXAMINE (with
// CONDSTORE when the server has it), compare UIDVALIDITY, list the UIDs at
// or above the checkpoint, then UID FETCH them in chunks, each chunk stored
// while the next is fetched (fetch.go). With reconcile it then fetches every
// message's flags and hands them to the Sink, which marks vanished UIDs
// expunged and records flag changes; with CONDSTORE that is skipped when
// HIGHESTMODSEQ and the message count say nothing changed since the last
// time.
//
// Sink.Checkpoint opens the epoch it is given: another UIDVALIDITY than the
// catalog's current one starts that epoch again, at UID 1. So every
// Checkpoint here names the UIDVALIDITY of this call's own EXAMINE, and a
// caller that wants to know what the sync archived asks the result, not
// the Sink with a UIDVALIDITY from an earlier selection: after a
// renumbering that would take the mailbox back to its old epoch.
func (h *Harvester) syncMailbox(ctx context.Context, cn *conn, mb string, reconcile bool) (syncResult, error) {
	c := cn.c
	condstore := c.Caps().Has(imap.CapCondStore)
	sel, err := c.Select(mb, &imap.SelectOptions{ReadOnly: true, CondStore: condstore}).Wait()
	if err != nil {
		return syncResult{}, fmt.Errorf("examine %q: %w", mb, err)
	}
	if sel.UIDValidity == 0 {
		// RFC 9051 section 7.1: a server must send one. Without it there
		// is no epoch to file the mail under (invariant 6).
		return syncResult{}, fmt.Errorf("examine %q: %w: no UIDVALIDITY in the answer", mb, ErrHostile)
	}
	res := syncResult{uidValidity: sel.UIDValidity}
	next, err := h.sink.Checkpoint(ctx, h.acct.Name, h.acct.URL(), mb, sel.UIDValidity)
	if err != nil {
		return res, err
	}
	ms := MailboxState{Mailbox: mb, UIDValidity: sel.UIDValidity, ServerMessages: sel.NumMessages, State: StateCatchingUp}
	h.setMailbox(ms)
	if sel.NumMessages > 0 && (sel.UIDNext == 0 || uint32(sel.UIDNext) > next) {
		if err := h.catchUp(ctx, cn, mb, sel.UIDValidity, next, sel.UIDNext); err != nil {
			return res, err
		}
		after, err := h.sink.Checkpoint(ctx, h.acct.Name, h.acct.URL(), mb, sel.UIDValidity)
		if err != nil {
			return res, err
		}
		res.grew = after > next
	}
	// The stamp records a state whose flags and expunges the archive has
	// seen, so it moves only with a reconcile (or when CONDSTORE shows
	// there was nothing to reconcile).
	now := stamp{uidValidity: sel.UIDValidity, uidNext: uint32(sel.UIDNext), messages: sel.NumMessages, modSeq: sel.HighestModSeq}
	h.mu.Lock()
	last, seen := h.synced[mb]
	h.mu.Unlock()
	if reconcile && seen && now.modSeq != 0 && last.modSeq == now.modSeq && last.messages == now.messages && last.uidValidity == now.uidValidity {
		now.reconciled = last.reconciled // CONDSTORE: no flag changed, nothing expunged
	} else if reconcile {
		begin := time.Now()
		err := h.resync(ctx, cn, mb, sel)
		h.count(func(c *Counters) { c.ResyncNanos += int64(time.Since(begin)) })
		if err != nil {
			return res, err
		}
		now.reconciled = time.Now()
	}
	if reconcile {
		h.mu.Lock()
		h.synced[mb] = now
		h.mu.Unlock()
	}
	ms.State, ms.LastSync = StatePolling, time.Now()
	h.setMailbox(ms)
	return res, nil
}

// resync brings the archive's flags and expunges of the selected mailbox
// (just caught up) in line with the server, as cheaply as the server lets
// it, cheapest first:
//
//   - Nothing: HIGHESTMODSEQ is the one the archive is current to and the
//     server has as many messages as the archive has live (the archive
//     holds every UID the server has, so equal counts mean equal sets).
//   - QRESYNC (RFC 7162 section 3.2.5), when the counts differ (something
//     was expunged): one EXAMINE with the archive's modseq answers with
//     the UIDs expunged since (VANISHED) and the flags changed since.
//     go-imap's client cannot parse VANISHED, so this runs on a short
//     connection of its own (qresync.go).
//   - CHANGEDSINCE (RFC 7162 section 3.1.4): UID FETCH 1:* (FLAGS)
//     (CHANGEDSINCE m) answers with the changed messages only; when the
//     counts differ (and QRESYNC cannot be had), UID SEARCH RETURN (ALL)
//     ALL gives the server's UID set, compact (RFC 4731), to find the
//     expunged.
//   - The full UID+FLAGS sweep (reconcile) without CONDSTORE, in a NOMODSEQ
//     mailbox, with a Sink that is no ChangeSink, at the first sync of an
//     epoch (no modseq recorded yet), and when the server's HIGHESTMODSEQ
//     went below the recorded one (a restored server: what changed below
//     cannot be asked for).
//
// The HIGHESTMODSEQ recorded is the one EXAMINE gave before the changes
// were fetched (or QRESYNC's own): a change made meanwhile is asked for
// again next time, never missed.
func (h *Harvester) resync(ctx context.Context, cn *conn, mb string, sel *imap.SelectData) error {
	cs, ok := h.sink.(ChangeSink)
	// The capability, not just a HIGHESTMODSEQ in the answer: Dovecot
	// sends that in EXAMINE even to a client it did not offer CONDSTORE.
	if !ok || sel.HighestModSeq == 0 || !cn.c.Caps().Has(imap.CapCondStore) {
		return h.reconcile(ctx, cn, mb, sel)
	}
	cn.tc.pause()
	ep, err := cs.Epoch(ctx, h.acct.Name, mb, sel.UIDValidity)
	cn.tc.resume()
	if err != nil {
		return fmt.Errorf("resync %q: %w", mb, err)
	}
	h.log.Debug("resync", "mailbox", mb, "uidvalidity", sel.UIDValidity, "recorded", ep.ModSeq, "live", ep.Live,
		"highestmodseq", sel.HighestModSeq, "messages", sel.NumMessages)
	if ep.ModSeq == 0 || sel.HighestModSeq < ep.ModSeq {
		if ep.ModSeq != 0 {
			h.log.Warn("the server's HIGHESTMODSEQ went back: sweeping the mailbox's flags", "mailbox", mb,
				"uidvalidity", sel.UIDValidity, "recorded", ep.ModSeq, "server", sel.HighestModSeq)
		}
		if err := h.reconcile(ctx, cn, mb, sel); err != nil {
			return err
		}
		return h.changes(ctx, cn, cs, mb, sel.UIDValidity, Changes{ModSeq: sel.HighestModSeq})
	}
	if sel.HighestModSeq == ep.ModSeq && int(sel.NumMessages) == ep.Live {
		return nil
	}
	// QRESYNC only when messages went: its own connection and login cost
	// ~0.5 s on loopback (docs/benchmarks.md, "Resync"), where CHANGEDSINCE
	// on this connection answers a flag change in ~0.1 s. For expunges it
	// is worth it: VANISHED names only what went, where UID SEARCH ALL
	// grows with every gap in the mailbox's UIDs.
	if int(sel.NumMessages) != ep.Live && h.canQResync(cn) {
		ch, err := h.qresync(ctx, mb, sel.UIDValidity, ep.ModSeq, sel.UIDNext)
		h.log.Debug("qresync", "mailbox", mb, "uidvalidity", sel.UIDValidity, "since", ep.ModSeq,
			"changed", len(ch.Flags), "vanished", len(ch.Vanished), "modseq", ch.ModSeq, "err", err)
		switch {
		case err == nil:
			h.count(func(c *Counters) { c.QResyncs++ })
			return h.changes(ctx, cn, cs, mb, sel.UIDValidity, ch)
		case errors.Is(err, ErrHostile) || ctx.Err() != nil:
			return err
		default:
			// A second connection refused (a per-user connection limit)
			// or dropped: CHANGEDSINCE on this one does the same work.
			h.log.Warn("qresync failed; using CHANGEDSINCE", "mailbox", mb, "err", err)
		}
	}
	ch := Changes{Flags: map[uint32][]string{}, ModSeq: sel.HighestModSeq, Via: ViaChangedSince}
	if sel.HighestModSeq > ep.ModSeq {
		err := fetchEach(cn, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}},
			&imap.FetchOptions{UID: true, Flags: true, ChangedSince: ep.ModSeq},
			func(buf *imapclient.FetchMessageBuffer) {
				if buf.UID != 0 {
					ch.Flags[uint32(buf.UID)] = flagStrings(buf.Flags)
				}
			})
		if err != nil {
			return fmt.Errorf("fetch changed flags %q: %w", mb, err)
		}
	}
	if int(sel.NumMessages) != ep.Live {
		var opts *imap.SearchOptions
		if caps := cn.c.Caps(); caps.Has(imap.CapESearch) || caps.Has(imap.CapIMAP4rev2) {
			opts = &imap.SearchOptions{ReturnAll: true}
		}
		data, err := cn.c.UIDSearch(&imap.SearchCriteria{}, opts).Wait()
		if err != nil {
			return fmt.Errorf("list UIDs of %q: %w", mb, err)
		}
		// Only a UID set is an answer to trust with expunges: without
		// RFC 4731's UID marker go-imap hands back a sequence set, and an
		// empty answer from a mailbox that has messages says nothing.
		// Reading either as "no UIDs" would mark every live copy
		// expunged; the sweep asks again, message by message.
		set, isUID := data.All.(imap.UIDSet)
		if (data.All != nil && !isUID) || (len(set) == 0 && sel.NumMessages > 0) {
			h.log.Warn("UID SEARCH ALL gave no UID set for a mailbox with messages: sweeping its flags", "mailbox", mb,
				"messages", sel.NumMessages, "answer", fmt.Sprintf("%T", data.All))
			if err := h.reconcile(ctx, cn, mb, sel); err != nil {
				return err
			}
			return h.changes(ctx, cn, cs, mb, sel.UIDValidity, Changes{ModSeq: sel.HighestModSeq})
		}
		ch.Listed, ch.Present = true, uidRanges(set)
	}
	h.count(func(c *Counters) { c.ChangedSince++ })
	return h.changes(ctx, cn, cs, mb, sel.UIDValidity, ch)
}

// changes hands ch to the Sink.
func (h *Harvester) changes(ctx context.Context, cn *conn, cs ChangeSink, mb string, uidvalidity uint32, ch Changes) error {
	cn.tc.pause()
	err := cs.Changes(ctx, h.acct.Name, mb, uidvalidity, ch)
	cn.tc.resume()
	if err != nil {
		return fmt.Errorf("record changes of %q: %w", mb, err)
	}
	return nil
}

// uidRanges converts a UID set without "*" (as servers answer) to ranges.
func uidRanges(set imap.UIDSet) []UIDRange {
	out := make([]UIDRange, 0, len(set))
	for _, r := range set {
		start, stop := uint32(r.Start), uint32(r.Stop)
		if start > stop {
			start, stop = stop, start
		}
		if start == 0 { // "*": not in an answer; nothing to say about it
			continue
		}
		out = append(out, UIDRange{Start: start, Stop: stop})
	}
	return out
}

// reconcile fetches the UID and flags of every message of the selected
// mailbox and gives them to the Sink.
func (h *Harvester) reconcile(ctx context.Context, cn *conn, mb string, sel *imap.SelectData) error {
	flags := make(map[uint32][]string, min(sel.NumMessages, 1<<16))
	if sel.NumMessages > 0 {
		err := fetchEach(cn, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true},
			func(buf *imapclient.FetchMessageBuffer) {
				if buf.UID != 0 {
					flags[uint32(buf.UID)] = flagStrings(buf.Flags)
				}
			})
		if err != nil {
			return fmt.Errorf("fetch flags %q: %w", mb, err)
		}
	}
	cn.tc.pause()
	err := h.sink.Reconcile(ctx, h.acct.Name, mb, sel.UIDValidity, flags)
	cn.tc.resume()
	if err != nil {
		return fmt.Errorf("reconcile %q: %w", mb, err)
	}
	h.count(func(c *Counters) { c.Sweeps++ })
	return nil
}

// flagStrings returns flags as strings in a stable (sorted) order, so that
// comparing a server's flags with the archive's does not depend on the order
// the server lists them in.
func flagStrings(fs []imap.Flag) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	slices.Sort(out)
	return out
}
