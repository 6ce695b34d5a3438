package journal_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer/catalog"
	"mailvault/journal"
	"mailvault/service"
)

// coverageMail is a generated message as its sender submitted it (the
// journal's copy) and as the final delivery wrote it into a mailbox (the
// harvest's copy): delivery headers on top, and some quoted-printable
// bodies re-encoded by a relay.
func coverageMail(r *rand.Rand, tag string, i int, date string, to string) (sent, delivered []byte) {
	words := []string{"merger", "memo", "über", "draft", "€ 5 000", "tomorrow", "please", "review"}
	var body strings.Builder
	for j := range 20 + r.IntN(80) {
		if j > 0 {
			body.WriteString([]string{" ", " ", "\r\n"}[r.IntN(3)])
		}
		body.WriteString(words[r.IntN(len(words))])
	}
	hdr := fmt.Sprintf("From: Carol <carol@example.net>\r\nTo: %s\r\nSubject: %s %d\r\nDate: %s\r\nMessage-ID: <%s-%d@example.net>\r\nMIME-Version: 1.0\r\n",
		to, tag, i, date, tag, i)
	sent = []byte(hdr + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body.String() + "\r\n")
	deliveredBody := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body.String() + "\r\n"
	if r.IntN(2) == 0 { // a relay without 8BITMIME re-encoded it
		deliveredBody = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			qp(body.String()) + "\r\n"
	}
	delivered = []byte("Return-Path: <carol@example.net>\r\nDelivered-To: alice@example.org\r\n" +
		"Received: from mx.example.org by imap.example.org with LMTP; " + date + "\r\n" +
		"X-Spam-Status: No\r\n" + hdr + deliveredBody)
	return sent, delivered
}

func qp(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c == '\r' || c == '\n' || (c >= 33 && c <= 126 && c != '='):
			b.WriteByte(c)
		case c == ' ':
			b.WriteString("=20")
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// Journal and mailbox together, against a real Dovecot: generated mail
// delivered to alice's mailbox AND journaled before delivery is linked
// (provenance both); mail only the journal saw, only the mailbox holds,
// from before the journal, and journal mail for nobody's address are each
// counted right.
func TestCoverageJournalAndDovecot(t *testing.T) {
	ctx := context.Background()
	srv := dovecottest.Start(t, &dovecottest.Options{Users: []string{"alice"}})
	a := harvesttest.OpenArchive(t, t.TempDir())
	users, err := service.OpenUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	svc := service.New(a.Archive, &service.Options{Users: users,
		Accounts:         []harvest.Account{harvesttest.Account(t, srv, "alice", "alice")},
		AccountAddresses: map[string][]string{"alice": {"Alice@Example.org"}}})
	sink := journal.UnwrapReports(service.NewJournalSink(a.Archive), a.Archive, nil)
	uv, next, err := sink.OpenJournal(ctx, "journal", journal.Mailbox)
	if err != nil {
		t.Fatal(err)
	}
	journalStart := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ds []journal.Delivery
	journalMail := func(raw []byte, from string, rcpts ...string) {
		ds = append(ds, journal.Delivery{Account: "journal", Mailbox: journal.Mailbox, UIDValidity: uv, UID: next + uint32(len(ds)),
			Raw: raw, Envelope: journal.Envelope{MailFrom: from, RcptTo: rcpts, Recipients: rcpts, Listener: "lmtp",
				ReceivedAt: journalStart.Add(time.Duration(len(ds)) * time.Minute)}})
	}
	r := rand.New(rand.NewPCG(16, 3))
	const pairs = 12
	var pairSHA []string
	date := "Tue, 2 Jun 2026 10:00:00 +0200"
	for i := range pairs {
		to := "alice@example.org"
		if i%3 == 0 {
			to = "team@example.net" // alice is a Bcc: only the envelope names her
		}
		sent, delivered := coverageMail(r, "pair", i, date, to)
		if i%4 == 1 {
			sent = []byte(strings.ReplaceAll(string(sent), "\r\n", "\n")) // a journal copy with LF line ends
		}
		journalMail(sent, "carol@example.net", "alice@example.org")
		srv.Append(t, "alice", "INBOX", delivered)
		pairSHA = append(pairSHA, hexSHA(sent))
	}
	// One pair whose journal copy came wrapped in an Exchange report.
	sent, delivered := coverageMail(r, "wrapped", 0, date, "alice@example.org")
	journalMail([]byte("X-MS-Journal-Report:\r\nFrom: journal-agent@example.org\r\nSubject: wrapped 0\r\n"+
		"Content-Type: multipart/mixed; boundary=jr\r\n\r\n--jr\r\nContent-Type: text/plain\r\n\r\n"+
		"Sender: carol@example.net\r\nSubject: wrapped 0\r\nMessage-Id: <wrapped-0@example.net>\r\nBcc: ALICE@example.org\r\n"+
		"\r\n--jr\r\nContent-Type: message/rfc822\r\n\r\n"+string(sent)+"\r\n--jr--\r\n"),
		"journal-agent@example.org", "journal@archive.example.org")
	srv.Append(t, "alice", "INBOX", delivered)
	// The journal saw them, alice's mailbox never held them (deleted before
	// the harvest looked).
	for i := range 3 {
		sent, _ := coverageMail(r, "lost", i, date, "alice@example.org")
		journalMail(sent, "carol@example.net", "alice@example.org")
	}
	// Journal mail of an address no account has.
	other, _ := coverageMail(r, "other", 0, date, "zed@example.com")
	journalMail(other, "carol@example.net", "zed@example.com")
	// In the mailbox, after the journal began, and the journal missed them.
	for i := range 2 {
		_, delivered := coverageMail(r, "missed", i, date, "alice@example.org")
		srv.Append(t, "alice", "INBOX", delivered)
	}
	// In the mailbox from before the journal began.
	_, old := coverageMail(r, "old", 0, "Mon, 3 Feb 2020 09:00:00 +0000", "alice@example.org")
	srv.Append(t, "alice", "INBOX", old)
	if err := sink.StoreJournal(ctx, ds); err != nil {
		t.Fatal(err)
	}

	// Harvest alice from Dovecot.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	const inMailbox = pairs + 1 + 2 + 1
	harvesttest.WaitFor(t, 60*time.Second, "alice's INBOX harvested", func() (bool, string) {
		st := harvesttest.Status(t, a)
		for k, m := range st {
			if m.Account == "alice" && m.Mailbox == "INBOX" {
				return m.Occurrences == inMailbox, fmt.Sprintf("%s: %d", k, m.Occurrences)
			}
		}
		return false, "no INBOX yet"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	admin := service.Caller{Name: "admin", Role: service.RoleAdmin, Remote: "test"}
	cov, err := svc.JournalCoverage(ctx, admin, "")
	if err != nil {
		t.Fatal(err)
	}
	want := catalog.AccountCoverage{Account: "alice", Both: pairs + 1, JournalOnly: 3, MailboxOnly: 2, BeforeJournal: 1}
	if len(cov.Accounts) != 1 || cov.Accounts[0] != want || cov.Unmapped != 1 {
		t.Errorf("coverage = %+v, want accounts [%+v], unmapped 1", cov, want)
	}
	if cov.JournalSince != journalStart.Format(time.RFC3339) && !strings.HasPrefix(cov.JournalSince, "2026-01-01T00:00:00") {
		t.Errorf("journal since %q, want %s", cov.JournalSince, journalStart)
	}
	// Every pair: the journal copy and the mailbox copy (other bytes) are
	// one mail, seen by both.
	for i, sha := range pairSHA {
		p, err := svc.Provenance(ctx, admin, sha)
		if err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
		var places []string
		for _, c := range p.Copies {
			places = append(places, fmt.Sprintf("%s/%s journal=%v", c.Account, c.Mailbox, c.Journal))
		}
		if p.Kind != catalog.ProvenanceBoth || len(p.Copies) != 2 || p.Copies[0].SHA256 == p.Copies[1].SHA256 {
			t.Errorf("pair %d: provenance %s, copies %v; want both, a journal and a mailbox copy of different bytes", i, p.Kind, places)
		}
	}
	// A user who sees alice only: her coverage, the journal's copy counted
	// but not listed.
	alice := service.Caller{Name: "alice", Role: service.RoleUser, Accounts: []string{"alice"}, Remote: "test"}
	p, err := svc.Provenance(ctx, alice, pairSHA[0])
	if err == nil {
		t.Errorf("alice reads the journal copy's provenance (%+v): want not found, it is the journal's message", p)
	}
	hits := harvesttest.Search(t, a, "subject:\"pair 0\"")
	var mine string
	for _, h := range hits {
		for _, o := range h.Occurrences {
			if o.Account == "alice" {
				mine = h.SHA256
			}
		}
	}
	p, err = svc.Provenance(ctx, alice, mine)
	if err != nil || p.Kind != catalog.ProvenanceBoth || len(p.Copies) != 1 {
		t.Errorf("alice's own copy: %+v, %v; want provenance both, her copy listed, the journal's hidden", p, err)
	}
	if _, err := svc.JournalCoverage(ctx, alice, "journal"); err == nil {
		t.Errorf("alice got the coverage of the journal account")
	}
	if c, err := svc.JournalCoverage(ctx, alice, ""); err != nil || len(c.Accounts) != 1 || c.Accounts[0] != want {
		t.Errorf("alice's coverage = %+v, %v; want her account's", c, err)
	}
}
