package indexer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"mailvault/indexer/catalog"
	"mailvault/query"
)

// FolderMessage is one occurrence as the IMAP view serves it
// (catalog.FolderMessage).
type FolderMessage = catalog.FolderMessage

// FolderEpoch is one epoch of one mailbox: a folder of the IMAP view.
type FolderEpoch struct {
	Account, Mailbox string
	UIDValidity      uint32
	Current          bool // the mailbox's current epoch (false: an earlier UIDVALIDITY)
}

// FolderEpochs returns every mailbox of accounts with each epoch it has
// copies in, the current epoch first, and the current epoch of a mailbox
// that has none (emptied on the server before it was first harvested) too.
// Mailboxes are in account, then name order.
func (a *Archive) FolderEpochs(ctx context.Context, accounts []string) ([]FolderEpoch, error) {
	eps, err := a.cat.Epochs(ctx, accounts)
	if err != nil {
		return nil, err
	}
	have := make(map[[2]string]bool, len(eps))
	var out []FolderEpoch
	for _, e := range eps {
		have[[2]string{e.Account, e.Mailbox}] = true
		out = append(out, FolderEpoch{Account: e.Account, Mailbox: e.Mailbox, UIDValidity: e.Current, Current: true})
		for _, v := range e.Epochs {
			if v != e.Current {
				out = append(out, FolderEpoch{Account: e.Account, Mailbox: e.Mailbox, UIDValidity: v})
			}
		}
	}
	all, err := a.cat.AllMailboxes(ctx)
	if err != nil {
		return nil, err
	}
	in := make(map[string]bool, len(accounts))
	for _, acct := range accounts {
		in[acct] = true
	}
	for _, p := range all {
		if !in[p.Account] || have[[2]string{p.Account, p.Mailbox}] {
			continue
		}
		mb, err := a.mailbox(ctx, p.Account, p.Mailbox)
		if err != nil {
			return nil, err
		}
		out = append(out, FolderEpoch{Account: p.Account, Mailbox: p.Mailbox, UIDValidity: mb.UIDValidity, Current: true})
	}
	return out, nil
}

// FolderMessages returns every occurrence of one epoch of account's
// mailbox, expunged ones included, in UID order.
func (a *Archive) FolderMessages(ctx context.Context, account, mailbox string, uidvalidity uint32) ([]FolderMessage, error) {
	mb, err := a.mailbox(ctx, account, query.CanonicalMailbox(mailbox))
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, fmt.Errorf("account %q has no mailbox %q in the archive: %w", account, mailbox, ErrNoMailbox)
	}
	if err != nil {
		return nil, err
	}
	return a.cat.FolderMessages(ctx, mb.ID, uidvalidity)
}

// folderGens remembers, for each (account, mailbox), the archive
// generation after its last change, so that a reader that shows one folder
// (the IMAP view's idle sessions) re-reads it only when it changed, not at
// every write to any mailbox. all is the generation after the last change
// that may touch any folder (a disposal removes a message from every place
// it is in). Memory: one entry per mailbox written since the archive was
// opened.
type folderGens struct {
	mu  sync.Mutex
	m   map[[2]string]int64
	all int64
}

// touch records that account's mailbox changed; call it after the change
// is committed and the generation moved (a deferred call placed before the
// deferred a.gen.Add(1) runs after it). mailbox "" is every mailbox of
// account; account "" every folder.
func (a *Archive) touch(account, mailbox string) {
	g := a.gen.Load()
	f := &a.folderGens
	f.mu.Lock()
	defer f.mu.Unlock()
	if account == "" || mailbox == "" {
		f.all = g // coarse, and rare: an account's mailboxes gone, a disposal
		return
	}
	if f.m == nil {
		f.m = map[[2]string]int64{}
	}
	f.m[[2]string{account, query.CanonicalMailbox(mailbox)}] = g
}

// FolderGeneration is the archive generation after the last change to
// account's mailbox that the archive knows of (0: none since it opened).
// It only grows; a reader that saw value g has seen every change of the
// folder made before it.
func (a *Archive) FolderGeneration(account, mailbox string) int64 {
	f := &a.folderGens
	f.mu.Lock()
	defer f.mu.Unlock()
	return max(f.all, f.m[[2]string{account, query.CanonicalMailbox(mailbox)}])
}
