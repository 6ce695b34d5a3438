package web

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/service"
)

// Journal and mailbox together on the pages and the API: a mail journaled
// before delivery and harvested from ann's mailbox (other bytes) is one
// mail seen by both; ann sees that the journal saw it, not the journal's
// copy; the coverage is scoped to her account.
func TestProvenancePageAndCoverageAPI(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	f.svc.SetAccountAddresses(map[string][]string{"a": {"ann@example.org"}})
	if _, err := f.archive.EnsureMailbox(ctx, "journal", "Journal", catalog.SourceJournal, 5); err != nil {
		t.Fatal(err)
	}
	sent := []byte("From: Zed <zed@example.org>\r\nTo: team@example.org\r\nSubject: the offsite\r\nDate: Tue, 1 Dec 2026 09:00:00 +0000\r\n" +
		"Message-ID: <offsite@example.org>\r\n\r\nWe meet at nine.\r\n")
	delivered := append([]byte("Return-Path: <zed@example.org>\r\nDelivered-To: ann@example.org\r\nReceived: by mx; Tue, 1 Dec 2026 09:00:01 +0000\r\n"),
		[]byte(strings.ReplaceAll(string(sent), "\r\n", "\n"))...)
	env := &indexer.Envelope{MailFrom: "zed@example.org", RcptTo: []string{"ann@example.org"}, Recipients: []string{"ann@example.org"},
		Listener: "smtp", ReceivedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := f.archive.Ingest(ctx, []indexer.Item{
		{Account: "journal", Mailbox: "Journal", UIDValidity: 5, UID: 1, Raw: sent, Envelope: env},
		{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 7, Raw: delivered},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.archive.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	j, m := sha(sent), sha(delivered)

	code, body := f.get(t, f.ann, "/api/messages/"+m+"/provenance")
	var p service.Provenance
	if code != 200 || json.Unmarshal(body, &p) != nil || p.Kind != "both" || len(p.Copies) != 1 || p.Copies[0].Account != "a" {
		t.Errorf("ann's provenance of her copy: %d %s; want both, her copy only", code, body)
	}
	if code, _ := f.get(t, f.ann, "/api/messages/"+j+"/provenance"); code != 404 {
		t.Errorf("ann's provenance of the journal copy: %d, want 404", code)
	}
	code, body = f.get(t, f.admin, "/api/messages/"+j+"/provenance")
	if code != 200 || json.Unmarshal(body, &p) != nil || p.Kind != "both" || len(p.Copies) != 2 {
		t.Errorf("admin's provenance of the journal copy: %d %s", code, body)
	}

	var cov catalog.Coverage
	code, body = f.get(t, f.ann, "/api/journal/coverage")
	if code != 200 || json.Unmarshal(body, &cov) != nil || len(cov.Accounts) != 1 ||
		cov.Accounts[0] != (catalog.AccountCoverage{Account: "a", Both: 1, BeforeJournal: 1}) {
		t.Errorf("ann's coverage: %d %s; want account a only, 1 both, the 2024 mail before the journal", code, body)
	}
	if code, _ := f.get(t, f.ann, "/api/journal/coverage?account=b"); code != 404 {
		t.Errorf("ann's coverage of b: %d, want 404", code)
	}
	code, body = f.get(t, f.admin, "/api/journal/coverage?account=b")
	if code != 200 || json.Unmarshal(body, &cov) != nil || len(cov.Accounts) != 1 ||
		cov.Accounts[0] != (catalog.AccountCoverage{Account: "b", BeforeJournal: 2}) {
		t.Errorf("admin's coverage of b: %d %s", code, body)
	}

	ann, _ := f.login(t, "ann", "correct horse")
	_, page, _ := getPage(t, ann, f.srv.URL+"/message/"+m)
	for _, want := range []string{`data-provenance="both"`, `<span id="also-journal">Also seen by the journal.</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("ann's message page lacks %q", want)
		}
	}
	if strings.Contains(page, "/message/"+j) {
		t.Error("ann's page links to the journal's copy")
	}
	_, page, _ = getPage(t, ann, f.srv.URL+"/status")
	if !strings.Contains(page, `id="journal-coverage"`) || strings.Contains(page, "<td>b</td>") {
		t.Errorf("ann's status page: want the coverage of her account only")
	}
	root, _ := f.login(t, "root", "correct horse")
	_, page, _ = getPage(t, root, f.srv.URL+"/message/"+j)
	if want := `Also in the mailbox of <a href="/message/` + m + `">a/INBOX</a>`; !strings.Contains(page, want) {
		t.Errorf("the journal copy's page lacks %q", want)
	}
}

// Every provenance read and coverage report is in the audit trail, with
// who asked.
func TestProvenanceAudited(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	f.get(t, f.ann, "/api/messages/"+f.shared+"/provenance")
	f.get(t, f.ann, "/api/journal/coverage?account=a")
	f.get(t, f.ann, "/api/journal/coverage?account=b")
	trail, err := f.users.AuditTrail(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range trail {
		if e.User == "ann" {
			got[e.Action+" "+e.Detail] = true
		}
	}
	for _, want := range []string{"provenance " + f.shared, "journal coverage a", "denied journal coverage b"} {
		if !got[want] {
			t.Errorf("audit trail lacks %q: %v", want, got)
		}
	}
}

// The message page of an unwrapped original links to its journal report
// (for who sees the journal); a message that claimed to be a report and did
// not parse says so.
func TestProvenanceReportLinks(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	if _, err := f.archive.EnsureMailbox(ctx, "journal", "Journal", catalog.SourceJournal, 5); err != nil {
		t.Fatal(err)
	}
	original := []byte("From: a@example.org\r\nSubject: wrapped\r\nMessage-ID: <w@example.org>\r\n\r\nbody\r\n")
	report := []byte("X-MS-Journal-Report:\r\nSubject: wrapped\r\n\r\n(the report)\r\n")
	bad := []byte("X-MS-Journal-Report:\r\nSubject: broken\r\n\r\nnot a report\r\n")
	env := &indexer.Envelope{MailFrom: "a@example.org", RcptTo: []string{"x@example.org"}, Recipients: []string{"x@example.org"}, Listener: "smtp", ReceivedAt: time.Now()}
	if _, err := f.archive.Ingest(ctx, []indexer.Item{
		{Account: "journal", Mailbox: "Journal", UIDValidity: 5, UID: 1, Raw: original, Envelope: env},
		{Account: "journal", Mailbox: "Journal", UIDValidity: 5, UID: 2, Raw: report, Envelope: env},
		{Account: "journal", Mailbox: "Journal", UIDValidity: 5, UID: 3, Raw: bad, Envelope: env},
	}); err != nil {
		t.Fatal(err)
	}
	key := func(s string) (k [32]byte) { b, _ := hex.DecodeString(s); copy(k[:], b); return k }
	if err := f.archive.LinkJournalReport(ctx, key(sha(report)), key(sha(original)), ""); err != nil {
		t.Fatal(err)
	}
	if err := f.archive.LinkJournalReport(ctx, key(sha(bad)), [32]byte{}, "journal report: no text/plain report part before the original"); err != nil {
		t.Fatal(err)
	}
	root, _ := f.login(t, "root", "correct horse")
	_, page, _ := getPage(t, root, f.srv.URL+"/message/"+sha(original))
	if want := `(unwrapped from <a href="/message/` + sha(report) + `">its journal report</a>)`; !strings.Contains(page, want) {
		t.Errorf("the original's page lacks %q", want)
	}
	_, page, _ = getPage(t, root, f.srv.URL+"/message/"+sha(report))
	if strings.Contains(page, `id="provenance"`) {
		t.Error("the journal report's own page has a provenance line: it is the wrapper, not mail")
	}
	_, page, _ = getPage(t, root, f.srv.URL+"/message/"+sha(bad))
	if want := `id="report-error">This message claims to be a journal report and does not parse: journal report: no text/plain report part`; !strings.Contains(page, want) {
		t.Errorf("the bad report's page lacks %q", want)
	}
}

// Review (issue 16): the provenance of a user's copy must not tell her how
// many copies other accounts hold. Counting them leaked the Bcc: Bob, a To
// recipient, saw "2 more copies in accounts you do not see" (the sender's
// Sent copy and Carol's, a Bcc) where the header named one other person.
// Differential: the same mail held by one other account or by three, with
// and without a journal copy, reads the same to ann (apart from the
// journal's "seen by" that the design shows her).
func TestProvenanceHidesOtherAccountsCopies(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	mail := func(n int) []byte {
		return fmt.Appendf(nil, "From: Bob <bob@example.org>\r\nTo: ann@example.org\r\nSubject: plans %d\r\n"+
			"Date: Tue, 1 Dec 2026 09:00:00 +0000\r\nMessage-ID: <plans%d@example.org>\r\n\r\nSee you.\r\n", n, n)
	}
	one, three := mail(1), mail(3)
	for _, acct := range []string{"b", "c", "d"} {
		if _, err := f.archive.EnsureMailbox(ctx, acct, "Sent", catalog.SourceIMAP, 5); err != nil {
			t.Fatal(err)
		}
	}
	var items []indexer.Item
	items = append(items, indexer.Item{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 101, Raw: one},
		indexer.Item{Account: "b", Mailbox: "INBOX", UIDValidity: 5, UID: 101, Raw: one},
		indexer.Item{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 102, Raw: three})
	for i, acct := range []string{"b", "c", "d"} {
		items = append(items, indexer.Item{Account: acct, Mailbox: "Sent", UIDValidity: 5, UID: uint32(10 + i), Raw: three})
	}
	if _, err := f.archive.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := f.archive.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	read := func(raw []byte) (string, string) {
		code, body := f.get(t, f.ann, "/api/messages/"+sha(raw)+"/provenance")
		if code != 200 {
			t.Fatalf("ann's provenance: %d %s", code, body)
		}
		return strings.ReplaceAll(string(body), sha(raw), "SHA"), ""
	}
	a1, _ := read(one)
	a3, _ := read(three)
	if a1 != a3 {
		t.Errorf("ann's provenance differs with the number of copies other accounts hold:\none other: %s\nthree others: %s", a1, a3)
	}
	if strings.Contains(a3, "hidden") {
		t.Errorf("ann's provenance counts hidden copies: %s", a3)
	}
	ann, _ := f.login(t, "ann", "correct horse")
	_, page, _ := getPage(t, ann, f.srv.URL+"/message/"+sha(three))
	if strings.Contains(page, "accounts you do not see") {
		t.Errorf("ann's message page counts the copies of accounts she does not see")
	}
	code, body := f.get(t, f.admin, "/api/messages/"+sha(three)+"/provenance")
	var p service.Provenance
	if code != 200 || json.Unmarshal(body, &p) != nil || len(p.Copies) != 4 {
		t.Errorf("admin's provenance: %d %s; want all four copies", code, body)
	}
}

// Review (issue 16): the coverage report's unmapped count is over all the
// journal's mail (mail naming no account's address): an archive-wide
// figure, like the attachment counts a scoped user is not shown. Ann's
// report says nothing of it; an admin's counts it.
func TestCoverageUnmappedIsNotAUsersFigure(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	f.svc.SetAccountAddresses(map[string][]string{"a": {"ann@example.org"}})
	if _, err := f.archive.EnsureMailbox(ctx, "journal", "Journal", catalog.SourceJournal, 5); err != nil {
		t.Fatal(err)
	}
	var items []indexer.Item
	for i, to := range []string{"ann@example.org", "stranger@elsewhere.example", "other@elsewhere.example"} {
		raw := fmt.Appendf(nil, "From: Zed <zed@example.org>\r\nTo: %s\r\nSubject: s%d\r\nDate: Tue, 1 Dec 2026 09:00:00 +0000\r\n"+
			"Message-ID: <cov%d@example.org>\r\n\r\nhello\r\n", to, i, i)
		items = append(items, indexer.Item{Account: "journal", Mailbox: "Journal", UIDValidity: 5, UID: uint32(i + 1), Raw: raw,
			Envelope: &indexer.Envelope{MailFrom: "zed@example.org", RcptTo: []string{to}, Recipients: []string{to},
				Listener: "smtp", ReceivedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}})
	}
	if _, err := f.archive.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	var cov catalog.Coverage
	code, body := f.get(t, f.admin, "/api/journal/coverage")
	if code != 200 || json.Unmarshal(body, &cov) != nil || cov.Unmapped != 2 {
		t.Errorf("admin's coverage: %d %s; want 2 unmapped", code, body)
	}
	code, body = f.get(t, f.ann, "/api/journal/coverage")
	cov = catalog.Coverage{}
	if code != 200 || json.Unmarshal(body, &cov) != nil || cov.Unmapped != 0 || len(cov.Accounts) != 1 || cov.Accounts[0].JournalOnly != 1 {
		t.Errorf("ann's coverage: %d %s; want her account's journal-only mail, no unmapped count", code, body)
	}
}
