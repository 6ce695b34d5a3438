package indexer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/indexer/extract"
	"mailvault/indexer/store"
)

// The hostile review of issue 15: what happens to a message while the
// extractor works on it. extractHook runs on the extractor's goroutine
// when a batch has been extracted and is about to be recorded and handed
// to the index (stage "record"); each case does something to the message
// there, and the index must end with the text AND every place, or, for a
// disposal, with nothing of the message at all.
func TestExtractorRaces(t *testing.T) {
	cases := []struct {
		name string
		at   func(t *testing.T, a *Archive, key store.Key, raw []byte)
		// check runs after the queue is empty.
		check func(t *testing.T, a *Archive, key store.Key)
	}{
		{
			// A disposal between the extraction and its record: nothing of
			// the message may come back, in the index nor in the catalog.
			name: "disposal",
			at: func(t *testing.T, a *Archive, key store.Key, _ []byte) {
				if _, err := a.Dispose(context.Background(), Disposal{Key: key, Reason: "erasure request", Rule: "erasure", Actor: "t",
					MayDelete: func(context.Context) error { return nil }}); err != nil {
					t.Error(err)
				}
			},
			check: func(t *testing.T, a *Archive, key store.Key) {
				for _, q := range []string{"okapi", "attachment:okapi", "wombat"} {
					if got := subjects(find(t, a, q, nil)); len(got) != 0 {
						t.Errorf("%s: disposed message back in the index: %v", q, got)
					}
				}
				if c, _ := a.ExtractCounts(context.Background()); c.Seen != 0 || c.Pending != 0 {
					t.Errorf("attachment text of a disposed message: %+v", c)
				}
			},
		},
		{
			// A copy arriving in another account while the message is
			// extracted: found by its attachment in both accounts.
			name: "copy",
			at: func(t *testing.T, a *Archive, _ store.Key, raw []byte) {
				if _, err := a.Ingest(context.Background(), []Item{{Account: "bob", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw}}); err != nil {
					t.Error(err)
				}
			},
			check: func(t *testing.T, a *Archive, _ store.Key) {
				for _, acct := range []string{"alice", "bob"} {
					if got := subjects(find(t, a, "attachment:okapi", &SearchOptions{Accounts: []string{acct}})); len(got) != 1 {
						t.Errorf("in %s: %v", acct, got)
					}
				}
			},
		},
		{
			// A flag change while the message is extracted: the index ends
			// with the text and the new flag.
			name: "flags",
			at: func(t *testing.T, a *Archive, _ store.Key, _ []byte) {
				if _, _, err := a.Reconcile(context.Background(), "alice", "INBOX", 7, map[uint32][]string{1: {`\Flagged`}}); err != nil {
					t.Error(err)
				}
			},
			check: func(t *testing.T, a *Archive, _ store.Key) {
				if got := subjects(find(t, a, "attachment:okapi is:flagged", nil)); len(got) != 1 {
					t.Errorf("text and flag: %v", got)
				}
			},
		},
		{
			// Reindex while the extractor works: the new index has the text.
			name: "reindex",
			at: func(t *testing.T, a *Archive, _ store.Key, _ []byte) {
				if err := a.Reindex(context.Background(), nil); err != nil {
					t.Error(err)
				}
			},
			check: func(t *testing.T, a *Archive, _ store.Key) {
				if got := subjects(find(t, a, "attachment:okapi", nil)); len(got) != 1 {
					t.Errorf("after reindex: %v", got)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			raw := withAttachments("race "+tc.name, "an innocent wombat",
				[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "harmless okapi"}))})
			key := store.KeyOf(raw)
			var a *Archive
			var once sync.Once
			ready := make(chan struct{})
			opts := &Options{Layout: testLayout, Extract: &extract.Limits{}, extractHook: func(stage string) {
				if stage == "record" {
					<-ready
					once.Do(func() { tc.at(t, a, key, raw) })
				}
			}}
			var err error
			a, err = Open(t.TempDir(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			mustMailbox(t, a, "alice", "INBOX")
			mustMailbox(t, a, "bob", "INBOX")
			ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
			close(ready)
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := a.WaitExtracts(wctx, nil); err != nil {
				t.Fatal(err)
			}
			tc.check(t, a, key)
		})
	}
}

// A blob the extractor cannot read is recorded as failed ("unreadable"),
// not retried for ever; once repaired, a reindex queues it again (what
// the record's detail and the design say) and the text is extracted.
func TestUnreadableBlobReextractedAfterRepair(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir, &Options{Layout: LayoutFiles, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	raw := withAttachments("damaged", "an innocent wombat",
		[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "harmless okapi"}))})
	key := store.KeyOf(raw)
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
	path := a.fsStore.Path(key)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("rot"), 0o640); err != nil {
		t.Fatal(err)
	}
	a.Close()

	a, err = Open(dir, &Options{Layout: LayoutFiles})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 0 || c.Failed["unreadable"] != 1 {
		t.Fatalf("a damaged blob: %+v", c)
	}
	if err := os.WriteFile(path, good, 0o640); err != nil { // the repair
		t.Fatal(err)
	}
	if err := a.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := subjects(find(t, a, "attachment:okapi", nil)); len(got) != 1 {
		t.Fatalf("after the repair and a reindex: %v", got)
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 0 || c.Failed["unreadable"] != 0 || c.Extracted != 1 {
		t.Fatalf("counts after the repair: %+v", c)
	}
}

// A store migration does not extract: it swaps and closes the store under
// the extractor's reads, which would record healthy blobs as unreadable.
// The queue waits, whole, for the next open, which extracts it from the new
// layout.
func TestStoreMigrationLeavesTheQueue(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir, &Options{Layout: LayoutFiles, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 40 {
		raw := withAttachments(fmt.Sprintf("migrating %d", i), "body",
			[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": fmt.Sprintf("okapi%d", i)}))})
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw})
	}
	ingest(t, a, items...)
	a.Close()

	a, err = Open(dir, &Options{StoreMigration: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.extractor != nil {
		t.Error("an extractor runs beside the store migration")
	}
	if _, err := a.MigrateStore(ctx, LayoutPack, false, nil); err != nil {
		t.Fatal(err)
	}
	c, err := a.ExtractCounts(ctx)
	a.Close()
	if err != nil || c.Pending != len(items) || c.Seen != 0 {
		t.Fatalf("after the migration: %+v %v (want the whole queue left)", c, err)
	}

	a, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 0 || c.Extracted != len(items) || len(c.Failed) != 0 {
		t.Fatalf("extracted from the new layout: %+v", c)
	}
	if got := subjects(find(t, a, "attachment:okapi39", nil)); len(got) != 1 {
		t.Fatalf("found %v", got)
	}
}

// The extractor decodes only the attachments it reads: not a video, not
// one over MaxInput (recorded as too-large without being decoded). Before,
// the parse decoded every attachment of the message whole (mime KeepData),
// so a message with a 200 MB video held 200 MB more than its blob.
func TestExtractorDecodesOnlyWhatItReads(t *testing.T) {
	ctx := context.Background()
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true, Extract: &extract.Limits{MaxInput: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	big := make([]byte, 16<<20)
	for i := range big {
		big[i] = byte(i * 7919 >> 3)
	}
	raw := withAttachments("large parts", "body",
		[3]string{"film.mp4", "video/mp4", string(big)},
		[3]string{"scan.pdf", "application/pdf", "%PDF-1.4\n" + string(big)},
		[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "harmless okapi"}))})
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
	tasks, err := a.cat.PendingExtracts(ctx, 0, 10)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("%v %v", tasks, err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	x, err := a.extractOne(ctx, tasks[0])
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("allocated %d MiB extracting a %d MiB blob", (after.TotalAlloc-before.TotalAlloc)>>20, len(raw)>>20)
	// The blob is read (decompressed and hashed): its size, and a little
	// for the parse and the zip; not the 32 MiB of the two large parts
	// (107 MiB allocated before the fix, 43 after).
	if got, most := after.TotalAlloc-before.TotalAlloc, uint64(len(raw)+16<<20); got > most {
		t.Errorf("extracting allocated %d MiB, over %d MiB (blob %d MiB)", got>>20, most>>20, len(raw)>>20)
	}
	byName := map[string]catalog.AttachmentText{}
	for _, r := range x.texts {
		byName[r.Name] = r
	}
	if r := byName["scan.pdf"]; r.Status != string(extract.Failed) || r.Reason != extract.ReasonTooLarge || r.Format != "pdf" {
		t.Errorf("the large PDF: %+v", r)
	}
	if r := byName["fine.zip"]; r.Status != string(extract.OK) || r.TextBytes == 0 {
		t.Errorf("the zip: %+v", r)
	}
	if _, ok := byName["film.mp4"]; ok || len(x.texts) != 2 {
		t.Errorf("looked at %+v", x.texts)
	}
	for i, at := range x.m.Attachments {
		if at.Data != nil {
			t.Errorf("attachment %d keeps its data in the batch", i)
		}
	}
}

// OCR turned on after mail was archived: a reindex queues every message
// with an image nobody looked at, also one whose other attachments were
// extracted already (before, only messages with no record at all were
// queued: a PDF and a scan together never had the scan read).
func TestOCRTurnedOnLaterReachesOldMail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00"
	a, err := Open(dir, &Options{Layout: testLayout})
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	both := withAttachments("zip and scan", "body", [3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "harmless okapi"}))},
		[3]string{"scan.png", "image/png", png})
	alone := withAttachments("scan alone", "body", [3]string{"scan2.png", "image/png", png})
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: both},
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 2, Raw: alone})
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.ExtractCounts(ctx); c.Seen != 1 {
		t.Fatalf("OCR off: %+v (want the zip alone looked at)", c)
	}
	a.Close()

	a, err = Open(dir, &Options{Layout: testLayout, Extract: &extract.Limits{OCR: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{both, alone} {
		texts, pending, err := a.AttachmentTexts(ctx, store.KeyOf(raw).String())
		if err != nil || pending {
			t.Fatal(pending, err)
		}
		var names []string
		for _, x := range texts {
			names = append(names, x.Name+":"+x.Status+":"+x.Reason)
		}
		if want := map[bool]int{true: 2, false: 1}[len(raw) == len(both)]; len(texts) != want {
			t.Errorf("OCR on, after reindex: %v (want the image looked at)", names)
		}
	}
	// The zip's text stayed searchable throughout.
	if got := subjects(find(t, a, "attachment:okapi", nil)); len(got) != 1 {
		t.Fatalf("zip text: %v", got)
	}
}

// A batch of the extractor holds its messages' parses until the record:
// their body text counts against the batch's bound, not the attachments'
// text alone (before, 32 messages of 4 MiB of body each were 128 MiB held
// by a batch the bound said was small).
func TestExtractBatchCountsBodyText(t *testing.T) {
	defer func(n int) { extractBatchText = n }(extractBatchText)
	extractBatchText = 1 << 20
	ctx := context.Background()
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 8 {
		body := strings.Repeat(fmt.Sprintf("word%d ", i), 256<<10/6)
		raw := withAttachments(fmt.Sprintf("long %d", i), body,
			[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "okapi"}))})
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw})
	}
	ingest(t, a, items...)
	n, err := a.extractSome(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 || n > 5 {
		t.Fatalf("one batch took %d messages of 256 KiB of body each, bound 1 MiB", n)
	}
	for {
		k, err := a.extractSome(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 0 || c.Extracted != 8 {
		t.Fatalf("%+v", c)
	}
}

// Failures that say nothing of the attachment (the blob unreadable, the
// extractor busy, OCR without tesseract) are tried again by a reindex;
// the others are not (a corrupt file stays corrupt).
func TestReextractRetriesEnvironmentalFailures(t *testing.T) {
	ctx := context.Background()
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	reasons := []string{"unreadable", extract.ReasonBusy, extract.ReasonOCRUnavailable, extract.ReasonCorrupt, extract.ReasonTimeout, extract.ReasonEncrypted}
	var recs []catalog.ExtractRecord
	for i, reason := range reasons {
		raw := withAttachments(fmt.Sprintf("failed %s", reason), "body",
			[3]string{"x.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "okapi"}))})
		ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw})
		id, err := a.cat.MessageRowID(ctx, store.KeyOf(raw))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, catalog.ExtractRecord{ID: id, Texts: []catalog.AttachmentText{{Part: 0, Name: "x.zip", Status: string(extract.Failed), Reason: reason}}})
	}
	if _, err := a.cat.RecordExtracts(ctx, extract.Version, recs); err != nil {
		t.Fatal(err)
	}
	n, err := a.cat.Reextract(ctx, extract.Version)
	if err != nil || n != 3 {
		t.Fatalf("re-queued %d (%v), want 3: unreadable, busy, ocr-unavailable", n, err)
	}
	for i, r := range recs {
		pending, _ := a.cat.ExtractPending(ctx, r.ID)
		if want := i < 3; pending != want {
			t.Errorf("%s: queued %v, want %v", reasons[i], pending, want)
		}
	}
}

// Close while the extractor holds a batch (extracted, not recorded): the
// batch stays queued and the next open extracts it; nothing is recorded
// half.
func TestCloseDuringExtractBatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw := withAttachments("closing", "an innocent wombat",
		[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "harmless okapi"}))})
	var a *Archive
	ready := make(chan struct{})
	hooked := make(chan struct{})
	var once sync.Once
	a, err := Open(dir, &Options{Layout: testLayout, extractHook: func(stage string) {
		<-ready
		once.Do(func() {
			a.extractor.cancel() // what Close does first
			close(hooked)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
	close(ready)
	<-hooked
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	a, err = Open(dir, &Options{Layout: testLayout})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if c, _ := a.ExtractCounts(ctx); c.Seen != 0 && c.Pending != 0 {
		t.Fatalf("half recorded: %+v", c)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := subjects(find(t, a, "attachment:okapi", nil)); len(got) != 1 {
		t.Fatalf("after reopening: %v", got)
	}
}

// A batch ends once it has run extractBatchTime: with the bound at a
// nanosecond, one message a batch.
func TestExtractBatchEndsInTime(t *testing.T) {
	defer func(d time.Duration) { extractBatchTime = d }(extractBatchTime)
	extractBatchTime = time.Nanosecond
	ctx := context.Background()
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 3 {
		raw := withAttachments(fmt.Sprintf("timed %d", i), "body",
			[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "okapi"}))})
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw})
	}
	ingest(t, a, items...)
	for i := range 3 {
		if n, err := a.extractSome(ctx); err != nil || n != 1 {
			t.Fatalf("batch %d: %d messages, %v", i, n, err)
		}
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 0 || c.Extracted != 3 {
		t.Fatalf("%+v", c)
	}
}

// A message of a thousand attachments (mime's part limit): each looked at
// and recorded, the message's text within its budget (4 attachment text
// limits), in bounded time.
func TestThousandAttachments(t *testing.T) {
	ctx := context.Background()
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true, Extract: &extract.Limits{MaxText: 2000}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	z := string(zipOf(t, map[string]string{"a.txt": strings.Repeat("okapi ", 100)}))
	var atts [][3]string
	for i := range 998 { // with the multipart and the body: 1,000 parts
		atts = append(atts, [3]string{fmt.Sprintf("part%d.zip", i), "application/zip", z})
	}
	raw := withAttachments("thousand", "body", atts...)
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
	begin := time.Now()
	if n, err := a.extractSome(ctx); err != nil || n != 1 {
		t.Fatalf("%d %v", n, err)
	}
	el := time.Since(begin)
	texts, _, err := a.AttachmentTexts(ctx, store.KeyOf(raw).String())
	if err != nil {
		t.Fatal(err)
	}
	total, cut := 0, 0
	for _, x := range texts {
		total += len(x.Text)
		if x.Reason == extract.ReasonText {
			cut++
		}
	}
	t.Logf("%d attachments recorded in %s, %d bytes of text, %d cut by the message's text budget", len(texts), el.Round(time.Millisecond), total, cut)
	if len(texts) != len(atts) || total > 4*2000 || cut == 0 {
		t.Fatalf("%d rows, %d bytes of text (budget %d), %d cut", len(texts), total, 4*2000, cut)
	}
	if el > 20*time.Second {
		t.Fatalf("took %s", el)
	}
	if got := subjects(find(t, a, "attachment:okapi", nil)); len(got) != 1 {
		t.Fatalf("%v", got)
	}
}

// The catalog's text decoder refuses more than 64 MiB a row (a damaged row
// must not make it allocate more): an attachment's text limit above that
// would record text nothing can read back — and a message whose recorded
// text cannot be read cannot be indexed (fillAttachmentTexts fails). The
// extractor's limit is clamped to what can be read back.
func TestAttachmentTextLimitReadableBack(t *testing.T) {
	enc, dec := textCodec()
	big := bytes.Repeat([]byte("okapi wombat "), (maxAttachmentText+1<<20)/13)
	if _, err := dec.DecodeAll(enc.EncodeAll(big, nil), nil); err == nil {
		t.Fatalf("the decoder reads %d MiB back: the clamp is not needed", len(big)>>20)
	}
	ok := big[:maxAttachmentText]
	if b, err := dec.DecodeAll(enc.EncodeAll(ok, nil), nil); err != nil || len(b) != len(ok) {
		t.Fatalf("the clamp's own size does not read back: %v", err)
	}
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true, Extract: &extract.Limits{MaxText: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if l := a.extractLimits(); l.MaxText != maxAttachmentText {
		t.Fatalf("MaxText %d, want it clamped to %d", l.MaxText, maxAttachmentText)
	}
}

// When package extract refuses work because earlier extractions are stuck
// (busy), the extractor stops rather than recording every message after
// as failed: what was done is recorded, the rest stays queued, WaitExtracts
// says why, and once extract accepts work again the queue is worked off.
func TestExtractorStopsWhenBusy(t *testing.T) {
	ctx := context.Background()
	defer func(f func(context.Context, string, string, []byte, *extract.Limits) extract.Result) {
		extractAttachment = f
	}(extractAttachment)
	var busy atomic.Bool
	var calls atomic.Int64
	orig := extractAttachment
	extractAttachment = func(ctx context.Context, name, ct string, data []byte, lim *extract.Limits) extract.Result {
		if calls.Add(1) > 2 && busy.Load() {
			return extract.Result{Format: "zip", Status: extract.Failed, Reason: extract.ReasonBusy}
		}
		return orig(ctx, name, ct, data, lim)
	}
	busy.Store(true)
	a, err := Open(t.TempDir(), &Options{Layout: testLayout, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 6 {
		raw := withAttachments(fmt.Sprintf("busy %d", i), "body",
			[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "okapi"}))})
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw})
	}
	ingest(t, a, items...)
	n, err := a.extractSome(ctx)
	if !errors.Is(err, errExtractBusy) || n != 2 {
		t.Fatalf("busy: %d recorded, %v", n, err)
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 4 || c.Extracted != 2 || len(c.Failed) != 0 {
		t.Fatalf("busy: %+v (want 2 done, 4 still queued, none failed)", c)
	}
	busy.Store(false)
	for {
		k, err := a.extractSome(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	if c, _ := a.ExtractCounts(ctx); c.Pending != 0 || c.Extracted != 6 {
		t.Fatalf("after: %+v", c)
	}
}

// The extractor records and indexes a message while a Reindex is in its
// bulk pass (which read the message before its text existed): the new
// index has the text all the same (the writer's commits during a Reindex
// are its delta).
func TestExtractDuringReindexBulk(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	var once sync.Once
	var a *Archive
	raw := withAttachments("during reindex", "body",
		[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "harmless okapi"}))})
	a, err := Open(t.TempDir(), &Options{Layout: testLayout,
		extractHook: func(string) { <-release },
		reindexHook: func(stage string) {
			if stage != stageBulk {
				return
			}
			once.Do(func() { close(release) })
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if c, _ := a.ExtractCounts(ctx); c.Pending == 0 && c.Extracted == 1 {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Error("the extractor did not record during the bulk pass")
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw})
	if err := a.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := subjects(find(t, a, "attachment:okapi", nil)); len(got) != 1 {
		t.Fatalf("new index: %v", got)
	}
}

// The extractor reads blobs while messages are disposed of and the pack
// store compacts the segment that holds them, again and again: no healthy
// blob is recorded unreadable, every message kept gets its text, none
// disposed of keeps any.
func TestExtractWhilePackCompacts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir, &Options{Layout: LayoutPack, NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 60 {
		raw := withAttachments(fmt.Sprintf("packed %d", i), "body",
			[3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": fmt.Sprintf("okapi%d %s", i, strings.Repeat("x", 20000))}))})
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw})
	}
	ingest(t, a, items...)
	a.Close()

	a, err = Open(dir, &Options{Layout: LayoutPack})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	done := make(chan int)
	go func() {
		n := 0
		for i := 0; i < len(items); i += 2 { // every other message, from the first
			if _, err := a.Dispose(ctx, Disposal{Key: store.KeyOf(items[i].Raw), Reason: "expired", Rule: "retention:t", Actor: "t",
				MayDelete: func(context.Context) error { return nil }}); err != nil {
				t.Error(err)
			}
			rep, err := a.CompactStore(ctx)
			if err != nil {
				t.Error(err)
			}
			n += rep.Segments
		}
		done <- n
	}()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = a.WaitExtracts(wctx, nil)
	n := <-done
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	c, _ := a.ExtractCounts(ctx)
	t.Logf("%d segment rewrites while extracting: %+v", n, c)
	if c.Pending != 0 || c.Extracted != len(items)/2 || len(c.Failed) != 0 {
		t.Fatalf("%+v, want %d extracted and none failed", c, len(items)/2)
	}
	if got := subjects(find(t, a, "attachment:okapi59", nil)); len(got) != 1 {
		t.Fatalf("a message kept: %v", got)
	}
	if got := find(t, a, "attachment:okapi58", nil); len(got) != 0 {
		t.Fatalf("a message disposed of: %v", got)
	}
}

// WaitExtracts retries a round that failed once before it reports the
// error (a passing failure does not fail an import), and reports one that
// fails again instead of waiting for ever.
func TestWaitExtractsRetriesOnce(t *testing.T) {
	ctx := context.Background()
	defer func(f func(context.Context, string, string, []byte, *extract.Limits) extract.Result) {
		extractAttachment = f
	}(extractAttachment)
	orig := extractAttachment
	for _, failures := range []int64{1, 1 << 40} {
		var calls atomic.Int64
		extractAttachment = func(ctx context.Context, name, ct string, data []byte, lim *extract.Limits) extract.Result {
			if calls.Add(1) <= failures {
				return extract.Result{Format: "zip", Status: extract.Failed, Reason: extract.ReasonBusy}
			}
			return orig(ctx, name, ct, data, lim)
		}
		dir := t.TempDir()
		a, err := Open(dir, &Options{Layout: testLayout, NoExtract: true})
		if err != nil {
			t.Fatal(err)
		}
		mustMailbox(t, a, "alice", "INBOX")
		ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1,
			Raw: withAttachments("retry", "body", [3]string{"fine.zip", "application/zip", string(zipOf(t, map[string]string{"a.txt": "okapi"}))})})
		a.Close()
		a, err = Open(dir, &Options{Layout: testLayout})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = a.WaitExtracts(wctx, nil)
		cancel()
		c, _ := a.ExtractCounts(ctx)
		a.Close()
		switch failures {
		case 1:
			if err != nil || c.Pending != 0 || c.Extracted != 1 {
				t.Errorf("a passing failure: %v, %+v", err, c)
			}
		default:
			if !errors.Is(err, errExtractBusy) || c.Pending != 1 {
				t.Errorf("a lasting failure: %v (want the busy error, not a wait), %+v", err, c)
			}
		}
	}
}
