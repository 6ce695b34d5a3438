package journal_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/journal"
	"mailvault/service"
)

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// A journal report goes into the archive unwrapped: the original in the
// journal mailbox with the report's envelope (the Bcc searchable), the
// report in Journal/Reports, linked; a report that does not parse is kept
// as it came and flagged; a retried batch adds nothing.
func TestUnwrapReportsIntoArchive(t *testing.T) {
	ctx := context.Background()
	a, err := indexer.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	users, err := service.OpenUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	svc := service.New(a, &service.Options{Users: users})
	sink := journal.UnwrapReports(service.NewJournalSink(a), a, nil)
	uv, next, err := sink.OpenJournal(ctx, "journal", journal.Mailbox)
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile("testdata/report-exchange-2010.eml")
	if err != nil {
		t.Fatal(err)
	}
	original, _ := os.ReadFile("testdata/report-exchange-2010.original")
	bad := strings.Replace(string(report), "Sender: bob@contoso.com\r\n", "", 1) // claims, does not parse
	plain := "From: a@example.org\r\nTo: b@example.org\r\nSubject: plain\r\nMessage-ID: <plain@example.org>\r\n\r\nhi\r\n"
	env := journal.Envelope{MailFrom: "MicrosoftExchange@contoso.com", RcptTo: []string{"journal@archive.contoso.com"},
		Recipients: []string{"journal@archive.contoso.com"}, Client: "192.0.2.5:25000", Listener: "smtp", ReceivedAt: time.Now().UTC()}
	batch := func(first uint32) []journal.Delivery {
		var ds []journal.Delivery
		for i, raw := range []string{string(report), plain, bad} {
			ds = append(ds, journal.Delivery{Account: "journal", Mailbox: journal.Mailbox, UIDValidity: uv, UID: first + uint32(i),
				Raw: []byte(raw), Envelope: env})
		}
		return ds
	}
	if err := sink.StoreJournal(ctx, batch(next)); err != nil {
		t.Fatalf("StoreJournal: %v", err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	admin := service.Caller{Name: "admin", Role: service.RoleAdmin, Remote: "test"}

	// The original, byte-exact, with the report's envelope.
	h, err := a.Message(ctx, hexSHA(original))
	if err != nil {
		t.Fatalf("the original is not archived: %v", err)
	}
	if len(h.Occurrences) != 1 || h.Occurrences[0].Mailbox != journal.Mailbox || h.Occurrences[0].UID != next {
		t.Fatalf("original's occurrences = %+v, want one in %s uid %d", h.Occurrences, journal.Mailbox, next)
	}
	e := h.Occurrences[0].Envelope
	if e == nil || e.MailFrom != "bob@contoso.com" || strings.Join(e.Recipients, " ") != "anna@partner.example ben@partner.example legal@contoso.com" {
		t.Errorf("original's envelope = %+v, want the report's", e)
	}
	for q, want := range map[string]uint64{
		"bcc:legal@contoso.com":      1, // the Bcc only the report names
		"rcpt:ben@partner.example":   1, // a member of the expanded group
		"subject:\"Contract draft\"": 3, // the original, the report and the bad report
	} {
		res, err := svc.Search(ctx, admin, service.SearchRequest{Query: q, Limit: 10})
		if err != nil || res.Total != want {
			t.Errorf("search %s: %v hits, err %v; want %d", q, res, err, want)
		}
	}
	// The report, byte-exact, in Journal/Reports under the same UID, linked.
	rh, err := a.Message(ctx, hexSHA(report))
	if err != nil {
		t.Fatalf("the report is not archived: %v", err)
	}
	if len(rh.Occurrences) != 1 || rh.Occurrences[0].Mailbox != journal.ReportsMailbox || rh.Occurrences[0].UID != next ||
		rh.Occurrences[0].Envelope == nil || rh.Occurrences[0].Envelope.MailFrom != env.MailFrom {
		t.Errorf("report's occurrences = %+v, want one in %s uid %d with the SMTP envelope", rh.Occurrences, journal.ReportsMailbox, next)
	}
	copies, err := a.Copies(ctx, hexSHA(original))
	if err != nil || len(copies) != 1 || copies[0].Report != hexSHA(report) || !copies[0].Journal {
		t.Errorf("Copies(original) = %+v, %v; want the journal copy linked to its report", copies, err)
	}
	// The plain message passes through; the bad report is kept whole, flagged.
	if _, err := a.Message(ctx, hexSHA([]byte(plain))); err != nil {
		t.Errorf("plain journal message: %v", err)
	}
	if msg, err := a.ReportError(ctx, hexSHA([]byte(bad))); err != nil || !strings.Contains(msg, "no Sender line") {
		t.Errorf("ReportError(bad report) = %q, %v; want its parse error", msg, err)
	}
	if msg, _ := a.ReportError(ctx, hexSHA(report)); msg != "" {
		t.Errorf("ReportError(good report) = %q", msg)
	}
	// The sending server retries the whole batch (it did not get the reply):
	// nothing new.
	count := func() (occ int) {
		st, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st {
			occ += m.Occurrences
		}
		return occ
	}
	before := count()
	if before != 4 {
		t.Errorf("%d occurrences, want 4 (original, report, plain, bad report)", before)
	}
	if err := sink.StoreJournal(ctx, batch(next+3)); err != nil {
		t.Fatalf("StoreJournal again: %v", err)
	}
	if after := count(); after != before {
		t.Errorf("a retried batch changed the archive: %d -> %d occurrences", before, after)
	}
}

// Through the listener: an Exchange journal report sent over SMTP is
// unwrapped (the listener's sink links reports), its Bcc found by bcc:.
func TestReportThroughListener(t *testing.T) {
	r := openRig(t, t.TempDir(), journal.Options{})
	report, err := os.ReadFile("testdata/report-exchange-online.eml")
	if err != nil {
		t.Fatal(err)
	}
	if err := sendMail(r.smtp, "MicrosoftExchange@contoso.onmicrosoft.com", []string{"journal@archive.contoso.com"}, string(report)); err != nil {
		t.Fatalf("send: %v", err)
	}
	original, _ := os.ReadFile("testdata/report-exchange-online.original")
	h, err := r.a.Message(context.Background(), hexSHA(original))
	if err != nil {
		t.Fatalf("the original is not archived: %v", err)
	}
	if len(h.Occurrences) != 1 || h.Occurrences[0].Mailbox != journal.Mailbox || h.Occurrences[0].Envelope == nil ||
		h.Occurrences[0].Envelope.MailFrom != "mallory@fabrikam.com" {
		t.Errorf("original's occurrences = %+v", h.Occurrences)
	}
	if res := r.search(t, admin, "rcpt:joe@contoso.com"); res.Total != 1 || res.Hits[0].SHA256 != hexSHA(original) {
		t.Errorf("rcpt:joe@contoso.com (a forwarded recipient only the report names): %d hits", res.Total)
	}
	if _, err := r.a.Message(context.Background(), hexSHA(report)); err != nil {
		t.Errorf("the report itself is not kept: %v", err)
	}
}
