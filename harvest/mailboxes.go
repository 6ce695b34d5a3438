package harvest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// mailboxes lists the account's mailboxes to harvest and picks the ones to
// IDLE on: the configured Idle entries that exist, at most MaxConnections.
// A LIST answering more than maxMailboxes is cut off (connection closed).
func (h *Harvester) mailboxes(ctx context.Context, cn *conn) (boxes, idles []string, err error) {
	cmd := cn.c.List("", "*", nil)
	var list []*imap.ListData
	for l := cmd.Next(); l != nil; l = cmd.Next() {
		if len(list) == maxMailboxes {
			cn.tc.Conn.Close() // not c.Close: the client's reader waits for us
			cmd.Close()
			return nil, nil, fmt.Errorf("account %q: list: %w: more than %d mailboxes", h.acct.Name, ErrHostile, maxMailboxes)
		}
		list = append(list, l)
	}
	if err := cmd.Close(); err != nil {
		return nil, nil, fmt.Errorf("account %q: list: %w", h.acct.Name, err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	var all []string
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		all = append(all, l.Mailbox)
		if !matchAny(h.acct.Mailboxes, l.Mailbox) || matchAny(h.acct.Exclude, l.Mailbox) {
			continue
		}
		boxes = append(boxes, l.Mailbox)
		attrs[l.Mailbox] = l.Attrs
	}
	for _, want := range h.acct.Idle {
		for _, b := range boxes {
			if len(idles) < h.acct.MaxConnections && !slices.Contains(idles, b) &&
				(b == want || hasAttr(attrs[b], imap.MailboxAttr(want))) {
				idles = append(idles, b)
			}
		}
	}
	gone, err := h.sink.MailboxesGone(ctx, h.acct.Name, all)
	if err != nil {
		return nil, nil, fmt.Errorf("account %q: mailboxes gone from the server: %w", h.acct.Name, err)
	}
	for mb, n := range gone {
		h.log.Warn("mailbox deleted or renamed on the server; its archived messages are kept, marked expunged", "mailbox", mb, "messages", n)
	}
	return boxes, idles, nil
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if string(x) == string(a) || (len(x) == len(a) && equalFold(string(x), string(a))) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// matchAny reports whether name matches one of the patterns, which use IMAP
// LIST wildcards (RFC 9051 section 6.3.9): "*" matches anything, hierarchy
// separators included ("*" is every mailbox, "Lists/*" every mailbox below
// Lists), "%" anything but the separator "/".
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if matchWildcard(p, name) {
			return true
		}
	}
	return false
}

func matchWildcard(p, name string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*', '%':
			for i := len(name); i >= 0; i-- {
				if p[0] == '%' && strings.Contains(name[:i], "/") {
					continue
				}
				if matchWildcard(p[1:], name[i:]) {
					return true
				}
			}
			return false
		default:
			if name == "" || name[0] != p[0] {
				return false
			}
			p, name = p[1:], name[1:]
		}
	}
	return name == ""
}

// forget drops the status of mailboxes that are no longer listed (deleted or
// renamed on the server; their archived mail stays).
func (h *Harvester) forget(boxes []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range h.status.Mailboxes {
		if !slices.Contains(boxes, name) {
			h.log.Info("mailbox gone from the server; its archived mail stays", "mailbox", name)
			delete(h.status.Mailboxes, name)
			delete(h.synced, name)
		}
	}
}
