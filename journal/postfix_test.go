package journal_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailvault/journal"
	"mailvault/journal/postfixtest"
	"mailvault/service"
)

// postfixMail is one message submitted to Postfix: To and Cc in the header,
// the Bcc recipient only in the envelope (as a mail client sends it).
type postfixMail struct {
	id       string
	to, cc   string
	bcc      string
	envelope []string
}

func postfixMails(n int, tag string) []postfixMail {
	var out []postfixMail
	for i := range n {
		m := postfixMail{id: fmt.Sprintf("<%s-%d@mta.test>", tag, i),
			to: fmt.Sprintf("to%d@example.org", i), cc: fmt.Sprintf("cc%d@example.com", i), bcc: fmt.Sprintf("hidden%d@example.net", i)}
		m.envelope = []string{m.to, m.cc, m.bcc}
		out = append(out, m)
	}
	return out
}

func (m postfixMail) raw() string {
	return fmt.Sprintf("From: Sender <sender@example.org>\r\nTo: %s\r\nCc: %s\r\nSubject: journal test %s\r\nMessage-ID: %s\r\n"+
		"Date: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\nquarterly figures %s\r\n", m.to, m.cc, m.id, m.id, m.id)
}

// submit sends the mails to Postfix on several connections at once.
func submit(t *testing.T, addr string, mails []postfixMail) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(mails))
	next := make(chan postfixMail)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range next {
				if err := sendMail(addr, "sender@example.org", m.envelope, m.raw()); err != nil {
					errs <- fmt.Errorf("submit %s: %w", m.id, err)
				}
			}
		}()
	}
	for _, m := range mails {
		next <- m
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitArchived waits until the archive holds n journal messages and
// Postfix's queue is empty.
func waitArchived(t *testing.T, r *rig, pf *postfixtest.Postfix, n int, within time.Duration) *service.SearchResult {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res := r.search(t, admin, "account:journal")
		q, err := pf.Queued()
		if err != nil {
			t.Fatal(err)
		}
		if int(res.Total) >= n && q == 0 {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d messages archived, %d in Postfix's queue", within, res.Total, n, q)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPostfixAlwaysBccLMTP: Postfix journals with always_bcc over LMTP.
// Every message is archived once; the envelope is MAIL FROM and the
// journal address, which is all always_bcc tells (the Bcc recipient is
// in no header either: Postfix's cleanup removed nothing, the client never
// wrote one).
func TestPostfixAlwaysBccLMTP(t *testing.T) {
	r := openRig(t, t.TempDir(), journal.Options{})
	pf := postfixtest.Start(t, postfixtest.Config{LMTP: r.lmtp})
	mails := postfixMails(20, "lmtp")
	submit(t, pf.Addr, mails)
	res := waitArchived(t, r, pf, len(mails), 60*time.Second)
	checkOnce(t, r, res, mails, func(t *testing.T, m postfixMail, e *journalEnvelope) {
		if e.MailFrom != "sender@example.org" || !slices.Equal(e.RcptTo, []string{postfixtest.JournalAddress}) || e.Listener != "lmtp" {
			t.Errorf("%s: envelope %+v, want MAIL FROM sender, RCPT TO %s over lmtp", m.id, e, postfixtest.JournalAddress)
		}
	})
}

// TestPostfixRecipientBccSMTP: Postfix journals every recipient with
// recipient_bcc_maps over SMTP; the envelope names To, Cc and the Bcc
// recipient, and bcc: finds the message by the Bcc recipient, for a
// caller who may see the journal, and for no one else.
func TestPostfixRecipientBccSMTP(t *testing.T) {
	r := openRig(t, t.TempDir(), journal.Options{EncodedPrefix: "journal"})
	pf := postfixtest.Start(t, postfixtest.Config{SMTP: r.smtp, PerRecipient: true})
	mails := postfixMails(20, "smtp")
	submit(t, pf.Addr, mails)
	res := waitArchived(t, r, pf, len(mails), 60*time.Second)
	checkOnce(t, r, res, mails, func(t *testing.T, m postfixMail, e *journalEnvelope) {
		got := slices.Clone(e.Recipients)
		slices.Sort(got)
		want := slices.Clone(m.envelope)
		slices.Sort(want)
		if e.MailFrom != "sender@example.org" || !slices.Equal(got, want) || e.Listener != "smtp" {
			t.Errorf("%s: envelope %+v, want MAIL FROM sender and recipients %v over smtp", m.id, e, want)
		}
	})
	other := service.Caller{Name: "eve", Role: service.RoleUser, Accounts: []string{"eve"}, Remote: "test"}
	for _, m := range mails[:5] {
		if got := r.search(t, admin, "bcc:"+m.bcc).Total; got != 1 {
			t.Errorf("bcc:%s: %d hits, want 1", m.bcc, got)
		}
		if got := r.search(t, admin, "rcpt:"+m.cc).Total; got != 1 {
			t.Errorf("rcpt:%s: %d hits, want 1", m.cc, got)
		}
		if got := r.search(t, other, "bcc:"+m.bcc).Total; got != 0 {
			t.Errorf("another account's user finds bcc:%s: %d hits, want 0", m.bcc, got)
		}
	}
}

type journalEnvelope = struct {
	MailFrom   string
	RcptTo     []string
	Recipients []string
	Listener   string
}

// checkOnce checks that each mail is archived exactly once (one message,
// one journal occurrence) and calls check with its envelope.
func checkOnce(t *testing.T, r *rig, res *service.SearchResult, mails []postfixMail, check func(*testing.T, postfixMail, *journalEnvelope)) {
	t.Helper()
	if int(res.Total) != len(mails) {
		t.Errorf("%d messages archived, want %d", res.Total, len(mails))
	}
	for _, m := range mails {
		q := fmt.Sprintf("subject:%q", strings.Trim(m.id, "<>"))
		hits := r.search(t, admin, q).Hits
		if len(hits) != 1 || len(hits[0].Occurrences) != 1 {
			t.Errorf("%s: %d hits (%+v), want one message with one occurrence", m.id, len(hits), hits)
			continue
		}
		e := hits[0].Occurrences[0].Envelope
		if e == nil {
			t.Errorf("%s: no envelope", m.id)
			continue
		}
		check(t, m, &journalEnvelope{MailFrom: e.MailFrom, RcptTo: e.RcptTo, Recipients: e.Recipients, Listener: e.Listener})
	}
}
