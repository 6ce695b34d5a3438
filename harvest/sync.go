package harvest

import (
	"context"
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
	if ok && last.same(now) && (now.modSeq != 0 || time.Since(last.reconciled) < h.opts.FlagSweep) {
		ms := h.mailboxState(mb)
		ms.Mailbox, ms.State, ms.LastSync = mb, StatePolling, time.Now()
		h.setMailbox(ms)
		return nil
	}
	return h.syncMailbox(ctx, cn, mb, true)
}

// syncMailbox catches mailbox mb up from its checkpoint: EXAMINE (with
// CONDSTORE when the server has it), compare UIDVALIDITY, list the UIDs at
// or above the checkpoint, then UID FETCH them in chunks, each chunk stored
// before the next is fetched. With reconcile it then fetches every
// message's flags and hands them to the Sink, which marks vanished UIDs
// expunged and records flag changes; with CONDSTORE that is skipped when
// HIGHESTMODSEQ and the message count say nothing changed since the last
// time.
func (h *Harvester) syncMailbox(ctx context.Context, cn *conn, mb string, reconcile bool) error {
	c := cn.c
	condstore := c.Caps().Has(imap.CapCondStore)
	sel, err := c.Select(mb, &imap.SelectOptions{ReadOnly: true, CondStore: condstore}).Wait()
	if err != nil {
		return fmt.Errorf("examine %q: %w", mb, err)
	}
	if sel.UIDValidity == 0 {
		// RFC 9051 section 7.1: a server must send one. Without it there
		// is no epoch to file the mail under (invariant 6).
		return fmt.Errorf("examine %q: %w: no UIDVALIDITY in the answer", mb, ErrHostile)
	}
	next, err := h.sink.Checkpoint(ctx, h.acct.Name, h.acct.URL(), mb, sel.UIDValidity)
	if err != nil {
		return err
	}
	ms := MailboxState{Mailbox: mb, UIDValidity: sel.UIDValidity, ServerMessages: sel.NumMessages, State: StateCatchingUp}
	h.setMailbox(ms)
	if sel.NumMessages > 0 && (sel.UIDNext == 0 || uint32(sel.UIDNext) > next) {
		if err := h.catchUp(ctx, cn, mb, sel.UIDValidity, next, sel.UIDNext); err != nil {
			return err
		}
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
		if err := h.reconcile(ctx, cn, mb, sel); err != nil {
			return err
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
	return nil
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
