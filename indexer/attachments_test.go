package indexer

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/extract"
	"mailvault/indexer/store"
)

// zipOf returns a ZIP archive of the named files.
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withAttachments is a message whose body says body and that carries the
// given attachments (name, media type, bytes), base64-encoded.
func withAttachments(subject, body string, atts ...[3]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n", subject)
	fmt.Fprintf(&b, "Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n", strings.ReplaceAll(subject, " ", "."))
	fmt.Fprintf(&b, "--XX\r\nContent-Type: text/plain\r\n\r\n%s\r\n", body)
	for _, a := range atts {
		fmt.Fprintf(&b, "--XX\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n",
			a[1], a[0], a[0], base64.StdEncoding.EncodeToString([]byte(a[2])))
	}
	b.WriteString("--XX--\r\n")
	return []byte(b.String())
}

// Attachment text follows the message: searchable by its own words at once
// (here with the extractor off, so it cannot have run), by its attachments'
// text once the extractor has been through the queue; every attachment
// looked at is recorded, failures with their reason; a rebuilt index keeps
// the text without extracting again.
func TestAttachmentTextFollowsTheMessage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir, &Options{Layout: testLayout, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	good := zipOf(t, map[string]string{"minutes.txt": "the quarterly zebrafish review", "budget/plan.csv": "item,cost\nmarmoset,12"})
	raw := withAttachments("board pack", "see the attached papers",
		[3]string{"papers.zip", "application/zip", string(good)},
		[3]string{"broken.zip", "application/zip", "PK\x03\x04 this is not really a zip"},
		[3]string{"photo.jpg", "image/jpeg", "\xff\xd8\xff\xe0 jpeg"})
	plain := msg("c@example.org", "no attachments here", "Mon, 2 Mar 2026 11:00:00 +0000", "zebrafish in the body")
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw},
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 2, Raw: plain})
	if got := subjects(find(t, a, "papers", nil)); len(got) != 1 || got[0] != "board pack" {
		t.Fatalf("by its body at once: %v", got)
	}
	if got := subjects(find(t, a, "attachment:zebrafish", nil)); len(got) != 0 {
		t.Fatalf("attachment text before extraction: %v", got)
	}
	key := store.KeyOf(raw).String()
	if texts, pending, err := a.AttachmentTexts(ctx, key); err != nil || !pending || len(texts) != 0 {
		t.Fatalf("before extraction: %v pending=%v err=%v", texts, pending, err)
	}
	if c, err := a.ExtractCounts(ctx); err != nil || c.Pending != 1 {
		t.Fatalf("queued: %+v %v (only the message with attachments extract reads)", c, err)
	}
	a.Close()

	a, err = Open(dir, &Options{Layout: testLayout})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"attachment:zebrafish", "marmoset", "attachment:minutes.txt", `attachment:"quarterly zebrafish"`} {
		if got := subjects(find(t, a, q, nil)); len(got) != 1 || got[0] != "board pack" {
			t.Errorf("%s after extraction: %v", q, got)
		}
	}
	texts, pending, err := a.AttachmentTexts(ctx, key)
	if err != nil || pending {
		t.Fatalf("pending=%v err=%v", pending, err)
	}
	byName := map[string]AttachmentText{}
	for _, x := range texts {
		byName[x.Name] = x
	}
	if len(texts) != 2 || byName["photo.jpg"].Name != "" {
		t.Fatalf("looked at %+v: want the two zips, not the image", texts)
	}
	if z := byName["papers.zip"]; z.Status != string(extract.OK) || z.Format != "zip" || !strings.Contains(z.Text, "zebrafish") || z.Members != 2 {
		t.Errorf("papers.zip: %+v", z)
	}
	if z := byName["broken.zip"]; z.Status != string(extract.Failed) || z.Reason != extract.ReasonCorrupt {
		t.Errorf("broken.zip: %+v", z)
	}
	c, err := a.ExtractCounts(ctx)
	if err != nil || c.Pending != 0 || c.Seen != 2 || c.Extracted != 1 || c.Failed[extract.ReasonCorrupt] != 1 {
		t.Fatalf("counts %+v %v", c, err)
	}

	// A rebuilt index takes the recorded text: nothing is extracted again.
	if err := a.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := subjects(find(t, a, "attachment:zebrafish", nil)); len(got) != 1 {
		t.Fatalf("after reindex: %v", got)
	}
	if c2, _ := a.ExtractCounts(ctx); c2.Pending != 0 || c2.Seen != c.Seen {
		t.Fatalf("reindex re-extracted: %+v", c2)
	}
}

// A decompression bomb in an attachment: bounded, flagged with its reason,
// and the message is stored and searchable by its own words all the same.
// A newer extractor version queues the message again; a disposal deletes
// its attachments' text with it.
func TestAttachmentBombReextractAndDisposal(t *testing.T) {
	ctx := context.Background()
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, Extract: &extract.Limits{MaxExpanded: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	bomb := zipOf(t, map[string]string{"zeros.txt": strings.Repeat("\x00", 16<<20)})
	raw := withAttachments("bomb inside", "an innocent wombat", [3]string{"big.zip", "application/zip", string(bomb)},
		[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "harmless okapi"}))})
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := subjects(find(t, a, "wombat", nil)); len(got) != 1 {
		t.Fatalf("by its body: %v", got)
	}
	if got := subjects(find(t, a, "okapi", nil)); len(got) != 1 {
		t.Fatalf("by the harmless attachment: %v", got)
	}
	key := store.KeyOf(raw)
	texts, _, err := a.AttachmentTexts(ctx, key.String())
	if err != nil || len(texts) != 2 {
		t.Fatalf("%+v %v", texts, err)
	}
	if b := texts[0]; b.Name != "big.zip" || b.Reason != extract.ReasonExpansion || b.Status == string(extract.OK) {
		t.Fatalf("the bomb: %+v", b)
	}
	c, _ := a.ExtractCounts(ctx)
	if c.Failed[extract.ReasonExpansion]+c.Truncated[extract.ReasonExpansion] != 1 {
		t.Fatalf("counts %+v", c)
	}

	// A newer version asks again: the message is queued and done again.
	if n, err := a.cat.Reextract(ctx, extract.Version+1); err != nil || n != 1 {
		t.Fatalf("re-extract: %d %v", n, err)
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 1 {
		t.Fatalf("not queued again: %+v", c)
	}
	a.wakeExtractor()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := subjects(find(t, a, "okapi", nil)); len(got) != 1 {
		t.Fatalf("after re-extraction: %v", got)
	}

	// Disposal: the text goes with the message.
	if _, err := a.Dispose(ctx, Disposal{Key: key, Reason: "expired", Rule: "retention:test", Actor: "t",
		MayDelete: func(context.Context) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.ExtractCounts(ctx); c.Seen != 0 || c.Pending != 0 {
		t.Fatalf("attachment text left after disposal: %+v", c)
	}
	if got := subjects(find(t, a, "okapi", nil)); len(got) != 0 {
		t.Fatalf("found after disposal: %v", got)
	}
}

// A message's attachments share a budget: at most four attachments' worth
// of text, and what comes after is recorded as failed with the reason.
func TestAttachmentTextBudgetPerMessage(t *testing.T) {
	ctx := context.Background()
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, Extract: &extract.Limits{MaxText: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	var atts [][3]string
	for i := range 6 {
		atts = append(atts, [3]string{fmt.Sprintf("part%d.zip", i), "application/zip",
			string(zipOf(t, map[string]string{"t.txt": strings.Repeat(fmt.Sprintf("word%d ", i), 400)}))})
	}
	raw := withAttachments("many", "body", atts...)
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	texts, _, err := a.AttachmentTexts(ctx, store.KeyOf(raw).String())
	if err != nil || len(texts) != 6 {
		t.Fatalf("%d rows, %v", len(texts), err)
	}
	total := 0
	for i, x := range texts {
		total += len(x.Text)
		if i < 4 && (x.Status != string(extract.Truncated) || len(x.Text) == 0) {
			t.Errorf("attachment %d within the budget: %+v", i, x.Status)
		}
		if i >= 4 && (x.Status != string(extract.Failed) || x.Reason != extract.ReasonText || x.Text != "") {
			t.Errorf("attachment %d past the budget: %s %s %d bytes", i, x.Status, x.Reason, len(x.Text))
		}
	}
	if total > 4000 {
		t.Fatalf("%d bytes of text for the message, over 4 x 1000", total)
	}
}

// Images are queued for extraction only with OCR on.
func TestImagesQueuedOnlyWithOCR(t *testing.T) {
	ctx := context.Background()
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00"
	for _, ocr := range []bool{false, true} {
		a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true, Extract: &extract.Limits{OCR: ocr}})
		if err != nil {
			t.Fatal(err)
		}
		mustMailbox(t, a, "alice", "INBOX")
		ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1,
			Raw: withAttachments("scan", "see the scan", [3]string{"scan.png", "image/png", png})})
		c, err := a.ExtractCounts(ctx)
		a.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 0, true: 1}[ocr]; c.Pending != want {
			t.Errorf("OCR %v: %d messages queued, want %d", ocr, c.Pending, want)
		}
	}
}
