package indexer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"mailvault/indexer/catalog"
	"mailvault/indexer/extract"
	"mailvault/indexer/mime"
	"mailvault/indexer/store"
)

// Attachment text (issue 15), off the path that makes mail searchable.
//
// Ingest indexes a message at once with its headers, body and the text of
// its text-like attachments (package mime), and, when it has attachments
// package extract may read (PDF, Office, archives, TNEF …), queues their
// extraction in the same catalog transaction (catalog/extracts.go). One
// background goroutine, the extractor, takes the queue in order: it reads
// the message back, decodes its attachments, extracts each within
// Options.Extract's limits, records the results and the text in the catalog
// and hands the index writer the message's document again, text included,
// at a new gen. So a message is searchable by its own words within the
// index's usual delay, whatever its attachments, and by its attachments'
// words once the extractor has reached it (docs/benchmarks.md has both
// latencies); a slow or hostile attachment delays only the messages queued
// behind it, by at most its time limit.
//
// Decision: one extractor goroutine. Extraction is CPU work competing with
// ingest for the same cores; one goroutine takes at most one core, so a
// burst of attachments slows ingest by at most that, and the queue is
// durable, so nothing is lost when it falls behind (it catches up when
// mail is quiet). Imports wait for the queue at their end (WaitExtracts),
// so an import reports done when its mail is searchable in full.
//
// Every document builder reads the recorded text back (fillAttachmentTexts):
// CatchUp, Reindex and the index document of known content in a new place,
// so a rebuilt index holds the attachments' text without extracting again.

// wantsExtraction reports whether an attachment is for package extract:
// one package mime gave no text, of a type that may hold text. Audio and
// video carry none that extract reads; images only with OCR on.
func wantsExtraction(at mime.Attachment, ocr bool) bool {
	if at.Text != "" || at.Size == 0 {
		return false
	}
	ct := at.ContentType
	if ocr && strings.HasPrefix(ct, "image/") {
		return true
	}
	for _, p := range []string{"image/", "audio/", "video/", "font/", "model/"} {
		if strings.HasPrefix(ct, p) {
			return false
		}
	}
	return ct != "message/rfc822" && ct != "message/global" && ct != "application/pgp-signature" &&
		ct != "application/pkcs7-signature" && ct != "application/x-pkcs7-signature"
}

// needsExtraction reports whether any of m's attachments wants extraction.
func needsExtraction(m *mime.Message, ocr bool) bool {
	for _, at := range m.Attachments {
		if wantsExtraction(at, ocr) {
			return true
		}
	}
	return false
}

// ocr reports whether images are extracted (OCR, off by default).
func (a *Archive) ocr() bool { return a.opts.Extract != nil && a.opts.Extract.OCR }

// textCodec compresses attachment text for the catalog. Text compresses
// about 3–5×; the level is the fastest, since extraction, not this, is the
// cost.
var textCodec = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	// Text is at most extract's MaxText (4 MiB by default) an attachment,
	// never more than maxAttachmentText; a damaged row cannot make the
	// decoder allocate more than that.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxAttachmentText))
	if err != nil {
		panic(err)
	}
	return enc, dec
})

// extractor is the background goroutine that empties the extraction queue.
type extractor struct {
	wake    chan struct{} // a message was queued
	idle    chan struct{} // closed and replaced each time the queue is found empty
	mu      sync.Mutex
	lastErr error // of the last round, nil when it went well
	rounds  int64 // rounds done (WaitExtracts tells a retry's error from the one it saw)
	cancel  context.CancelFunc
	done    chan struct{}
}

// extractPoll is how often the extractor looks at the queue without being
// woken (work queued by another run, a retry after an error).
const extractPoll = 30 * time.Second

func (a *Archive) startExtractor() {
	ctx, cancel := context.WithCancel(context.Background())
	x := &extractor{wake: make(chan struct{}, 1), idle: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	a.extractor = x
	go func() {
		defer close(x.done)
		for ctx.Err() == nil {
			n, err := a.extractSome(ctx)
			if err != nil && ctx.Err() == nil {
				a.log.Warn("attachment text", "err", err)
			}
			x.mu.Lock()
			x.lastErr = err
			x.rounds++
			x.mu.Unlock()
			if n > 0 && err == nil {
				continue
			}
			x.mu.Lock()
			close(x.idle)
			x.idle = make(chan struct{})
			x.mu.Unlock()
			select {
			case <-x.wake:
			case <-time.After(extractPoll):
			case <-ctx.Done():
			}
		}
	}()
}

// stopExtractor stops the extractor and waits for it; an extraction in
// flight is abandoned (it stays queued).
func (a *Archive) stopExtractor() {
	if x := a.extractor; x != nil {
		x.cancel()
		<-x.done
	}
}

// wakeExtractor tells the extractor that work was queued.
func (a *Archive) wakeExtractor() {
	if x := a.extractor; x != nil {
		select {
		case x.wake <- struct{}{}:
		default:
		}
	}
}

// WaitExtracts waits until the extraction queue is empty (or ctx ends),
// calling progress with the messages done and the messages that were
// queued when it started. Without an extractor (read-only, or extraction
// off) it returns at once.
func (a *Archive) WaitExtracts(ctx context.Context, progress func(done, total int)) error {
	x := a.extractor
	if x == nil {
		return nil
	}
	start, err := a.cat.ExtractCounts(ctx, extract.Version)
	if err != nil || start.Pending == 0 {
		return err
	}
	// A round's error is retried once (the wake below) before it counts:
	// it may be passing (a busy database, one stuck extraction freed
	// since), and the extractor would otherwise wait 30 s to retry while
	// an import reported a failure. The same error after the retry is
	// returned rather than waited on for ever; the queue stays as it is
	// (durable) and the next run retries (TestWaitExtractsRetriesOnce).
	errAt := int64(-1) // the round whose error was seen, -1 when none
	for {
		x.mu.Lock()
		idle, lastErr, round := x.idle, x.lastErr, x.rounds
		x.mu.Unlock()
		switch {
		case lastErr == nil:
			errAt = -1
		case errAt < 0:
			errAt = round
		case round > errAt:
			return fmt.Errorf("attachment text: %w", lastErr)
		}
		a.wakeExtractor()
		tick := time.NewTicker(time.Second)
		select {
		case <-idle:
		case <-tick.C:
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		}
		tick.Stop()
		c, err := a.cat.ExtractCounts(ctx, extract.Version)
		if err != nil {
			return err
		}
		if progress != nil {
			progress(max(0, start.Pending-c.Pending), start.Pending)
		}
		if c.Pending == 0 {
			return nil
		}
	}
}

// extractSome extracts a batch of queued messages, records them in one
// catalog transaction (one fsync for the batch, not one a message) and
// hands the index their new documents; it returns how many.
func (a *Archive) extractSome(ctx context.Context) (int, error) {
	tasks, err := a.cat.PendingExtracts(ctx, 0, extractBatch)
	if err != nil || len(tasks) == 0 {
		return 0, err
	}
	var done []extracted
	var stop error
	textBytes := 0
	batchStart := time.Now()
	for _, t := range tasks {
		if len(done) > 0 && time.Since(batchStart) > extractBatchTime {
			break // recorded now, so that the text is searchable and a Close loses little
		}
		begin := time.Now()
		x, err := a.extractOne(ctx, t)
		if errors.Is(err, errExtractBusy) {
			stop = err // what is done is recorded; this message and the rest stay queued
			break
		}
		if err != nil {
			return 0, err // stopping: the batch stays queued
		}
		if x != nil {
			done = append(done, *x)
			textBytes += x.held()
		}
		a.yieldToIngest(ctx, time.Since(begin))
		if textBytes > extractBatchText {
			break // the rest waits for the next batch
		}
	}
	if h := a.opts.extractHook; h != nil {
		h("record")
	}
	// Record and hand over under commitMu, like Commit. Dispose holds
	// commitMu from its check to its scrub, so taking it before the record
	// means the record's disposed check and the documents below see the
	// same state: recorded after a disposal is skipped, and a disposal
	// cannot slip in between the record and the document (before, one
	// could: the extractor then handed the index the whole document of a
	// message just erased, its body and attachments' text included —
	// TestExtractorRaces/disposal). Gen and places are read under the lock
	// too, so that a Commit of a new copy (which read the text already,
	// or queued nothing since the row exists) is never overtaken by an
	// older document: a message's documents reach the writer in the order
	// of their gens. The cost is one catalog transaction (one fsync) a
	// batch of up to 32 messages held inside the commit lock.
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	recs := make([]catalog.ExtractRecord, len(done))
	for i, x := range done {
		recs[i] = catalog.ExtractRecord{ID: x.task.ID, Texts: x.texts}
	}
	recorded, err := a.cat.RecordExtracts(ctx, extract.Version, recs)
	if err != nil {
		return 0, fmt.Errorf("record attachment text: %w", err)
	}
	a.gen.Add(1)
	for i, x := range done {
		if !recorded[i] || x.m == nil {
			continue // disposed of meanwhile, or its blob unreadable
		}
		gen, err := a.cat.Gen(ctx, x.task.ID)
		if err != nil {
			return len(done), fmt.Errorf("gen of message %s: %w", x.task.SHA256Hex(), err)
		}
		places, err := a.cat.Places(ctx, x.task.ID)
		if err != nil {
			return len(done), fmt.Errorf("places of message %s: %w", x.task.SHA256Hex(), err)
		}
		doc, n := buildDoc(x.m, x.size, places)
		if err := a.writer.submit(ctx, indexJob{task: catalog.IndexTask{ID: x.task.ID, SHA256: x.task.SHA256, Gen: gen}, doc: doc, size: n}); err != nil {
			// The catalog marks it unindexed at the new gen: CatchUp takes it.
			a.log.Warn("index queue", "sha256", x.task.SHA256Hex(), "err", err)
		}
	}
	return len(done), stop
}

// errExtractBusy stops the extractor when package extract refuses work
// because earlier extractions are stuck past their deadline (ReasonBusy):
// a stuck third-party parser does not free itself, so every message after
// would be refused too, and recording each as failed would drain the
// whole queue into failures in seconds. The message stays queued, the
// extractor retries at its next round (a restart frees the stuck ones),
// and WaitExtracts reports the error (TestExtractorStopsWhenBusy).
var errExtractBusy = errors.New("attachment extraction refused: earlier extractions are stuck past their deadline (mailvault_extract_abandoned); the queue waits, a restart frees them")

// extractAttachment is extract.Extract (a var for the tests).
var extractAttachment = extract.Extract

// A batch of the extractor: at most extractBatch messages, and no more
// once what their parses and records hold (extracted.held: body, headers
// and attachments' text) passes extractBatchText bytes: what it holds in
// memory until the record.
const extractBatch = 32

// extractBatchText is a var for the tests alone.
var extractBatchText = 32 << 20

// extractBatchTime ends a batch once it has run this long (a var for the
// tests): a batch is recorded, and its text searchable, only at its end,
// and a Close before that leaves it all to do again. Without it a batch of
// 32 slow messages (6 attachment timeouts each, 6 minutes with OCR's 60 s)
// could hold its results for hours; 32 large PDFs at 2 s each, plus the
// rests a busy ingest asks, held them for minutes.
var extractBatchTime = 10 * time.Second

// A message's attachments together: at most messageTimeouts attachment
// timeouts (60 s by default) and messageTextLimits attachment text limits
// (16 MiB).
const (
	messageTimeouts   = 6
	messageTextLimits = 4
)

// extracted is one message's extraction, not yet recorded.
type extracted struct {
	task  catalog.ExtractTask
	texts []catalog.AttachmentText
	m     *mime.Message // its parse with the attachments' text filled in; nil when the blob was unreadable
	size  int64
}

// held is about what x holds until the batch is recorded: the parse's
// text (body, headers, every attachment's) and the compressed rows. The
// body counts too: mime keeps up to 4 MiB of it a message, so a batch
// bounded by the attachments' text alone could hold 128 MiB of bodies
// (TestExtractBatchCountsBodyText).
func (x *extracted) held() int {
	n := 0
	for _, r := range x.texts {
		n += len(r.Text) + len(r.Detail)
	}
	if m := x.m; m != nil {
		n += len(m.Text)
		for _, h := range m.Headers {
			n += len(h.Key) + len(h.Value)
		}
		for _, at := range m.Attachments {
			n += len(at.Text)
		}
	}
	return n
}

// maxAttachmentText is the most text one attachment may record: what the
// catalog's decoder reads back (textCodec, 64 MiB). More would be recorded
// and then unreadable, and a message whose recorded text cannot be read
// cannot be indexed (TestAttachmentTextLimitReadableBack).
const maxAttachmentText = 64 << 20

// extractLimits is Options.Extract with its defaults, MaxText at most
// maxAttachmentText.
func (a *Archive) extractLimits() extract.Limits {
	xl := a.opts.Extract.WithDefaults() // a nil *Limits gives the defaults
	xl.MaxText = min(xl.MaxText, maxAttachmentText)
	return xl
}

// extractOne extracts message t's attachments; nil when it was disposed of.
func (a *Archive) extractOne(ctx context.Context, t catalog.ExtractTask) (*extracted, error) {
	raw, err := a.readBlob(ctx, t.SHA256)
	if errors.Is(err, ErrDisposed) {
		return nil, nil // the disposal scrubbed its queue row too; a race at worst
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // stopping (Close): a read cut short is no verdict on the blob
	}
	x := &extracted{task: t, size: int64(len(raw))}
	if err != nil {
		// Recorded as a failure, not retried for ever: verify names the
		// blob, and a reindex after a repair queues it again
		// (catalog.Reextract; TestUnreadableBlobReextractedAfterRepair).
		x.texts = []catalog.AttachmentText{{Part: -1, Status: string(extract.Failed), Reason: "unreadable", Detail: cutDetail(err.Error())}}
		return x, nil
	}
	xl := a.extractLimits()
	lim := mime.Limits{}
	if a.opts.Limits != nil {
		lim = *a.opts.Limits
	}
	// Decode only the attachments read below: not a video, not one over
	// MaxInput (refused unread below). Decoding all of them (KeepData
	// alone) held every attachment of the message whole at once, a 200 MB
	// video included, beside the blob (TestExtractorDecodesOnlyWhatItReads).
	lim.KeepData = true
	lim.KeepDataIf = func(at mime.Attachment) bool { return wantsExtraction(at, xl.OCR) && at.Size <= xl.MaxInput }
	m := mime.Parse(raw, &lim)
	raw = nil //nolint:ineffassign // the parse shares no memory with it: the GC may take it during the extractions
	enc, _ := textCodec()
	// One message's attachments together get messageTimeouts times one
	// attachment's time and messageTextLimits times its text: a message of
	// a thousand attachments (mime's part limit) must not hold the queue
	// for hours nor make an index document of gigabytes. What is left when
	// the budget is spent is recorded as truncated or failed, with why.
	mctx, cancel := context.WithTimeout(ctx, messageTimeouts*xl.Timeout)
	defer cancel()
	textLeft := messageTextLimits * xl.MaxText
	for i, at := range m.Attachments {
		if !wantsExtraction(at, xl.OCR) {
			m.Attachments[i].Data = nil
			continue
		}
		al := xl
		al.MaxText = min(al.MaxText, textLeft)
		var r extract.Result
		switch {
		case at.Size > xl.MaxInput:
			// Left undecoded by the parse (KeepDataIf above).
			r = extract.Result{Format: extract.Detect(at.Filename, at.ContentType, nil), Status: extract.Failed,
				Reason: extract.ReasonTooLarge, Detail: fmt.Sprintf("%d bytes, over the %d-byte limit", at.Size, xl.MaxInput)}
		case mctx.Err() != nil:
			r = extract.Result{Format: extract.Detect(at.Filename, at.ContentType, at.Data), Status: extract.Failed,
				Reason: extract.ReasonTimeout, Detail: "the message's attachments used up its extraction time before this one"}
		case al.MaxText <= 0:
			r = extract.Result{Format: extract.Detect(at.Filename, at.ContentType, at.Data), Status: extract.Failed,
				Reason: extract.ReasonText, Detail: "the message's attachments used up its text limit before this one"}
		default:
			r = extractAttachment(mctx, at.Filename, at.ContentType, at.Data, &al)
			if r.Reason == extract.ReasonBusy {
				return nil, errExtractBusy
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err() // stopping: it stays queued
		}
		textLeft -= len(r.Text)
		row := catalog.AttachmentText{Part: i, Name: at.Filename, ContentType: at.ContentType, Format: r.Format,
			Status: string(r.Status), Reason: r.Reason, Detail: cutDetail(r.Detail), Members: len(r.Members), TextBytes: len(r.Text)}
		if r.Text != "" {
			row.Text = enc.EncodeAll([]byte(r.Text), nil)
		}
		x.texts = append(x.texts, row)
		m.Attachments[i].Text = r.Text
		m.Attachments[i].Data = nil
	}
	x.m = m
	return x, nil
}

func cutDetail(s string) string {
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}

// fillAttachmentTexts puts the recorded text of message id's attachments
// into m (parsed from its blob), for an index document or a page.
func (a *Archive) fillAttachmentTexts(ctx context.Context, id int64, m *mime.Message) error {
	if !needsExtraction(m, a.ocr()) {
		return nil
	}
	texts, err := a.cat.AttachmentTexts(ctx, id)
	if err != nil {
		return err
	}
	if len(texts) == 0 {
		// Not extracted: queued, or archived before extraction existed.
		if queued, err := a.cat.EnsureExtract(ctx, id); err != nil {
			return err
		} else if queued {
			a.wakeExtractor()
		}
		return nil
	}
	_, dec := textCodec()
	matched := make([]bool, len(m.Attachments))
	for _, t := range texts {
		if t.Part < 0 || t.Part >= len(m.Attachments) || m.Attachments[t.Part].Filename != t.Name {
			continue
		}
		matched[t.Part] = true
		if len(t.Text) == 0 {
			continue
		}
		b, err := dec.DecodeAll(t.Text, nil)
		if err != nil {
			return fmt.Errorf("attachment text of message %d part %d: %w", id, t.Part, err)
		}
		m.Attachments[t.Part].Text = string(b)
	}
	// An attachment the extractor would read now that the record does not
	// cover: OCR turned on since (the record has the PDF, not the scan), a
	// parse that lists the attachments otherwise than when extracted (the
	// name check above refused a row), or a blob once unreadable (its one
	// row is part -1). The message is queued again, so that its document
	// gets the text once the extractor is there; the text recorded meanwhile
	// is used (TestOCRTurnedOnLaterReachesOldMail).
	for i, at := range m.Attachments {
		if !matched[i] && wantsExtraction(at, a.ocr()) {
			if queued, err := a.cat.RequeueExtract(ctx, id); err != nil {
				return err
			} else if queued {
				a.wakeExtractor()
			}
			break
		}
	}
	return nil
}

// AttachmentText is an attachment's extraction as the message page and
// exports show it.
type AttachmentText struct {
	Part        int    `json:"part"` // index in the message's attachments (mime.Parse order)
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Format      string `json:"format"`           // extract's format name; "" when not recognised
	Status      string `json:"status"`           // ok, truncated, failed, unsupported
	Reason      string `json:"reason,omitempty"` // why truncated or failed
	Detail      string `json:"detail,omitempty"`
	Members     int    `json:"members,omitempty"` // archive members / TNEF attachments listed
	Text        string `json:"text"`
}

// AttachmentTexts returns the recorded extraction of message hex's
// attachments, and whether it is still queued.
func (a *Archive) AttachmentTexts(ctx context.Context, hex string) (texts []AttachmentText, pending bool, err error) {
	k, err := store.ParseKey(hex)
	if err != nil {
		return nil, false, ErrNoMessage
	}
	id, err := a.cat.MessageRowID(ctx, k)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, false, ErrNoMessage
	}
	if err != nil {
		return nil, false, err
	}
	rows, err := a.cat.AttachmentTexts(ctx, id)
	if err != nil {
		return nil, false, err
	}
	_, dec := textCodec()
	for _, r := range rows {
		t := AttachmentText{Part: r.Part, Name: r.Name, ContentType: r.ContentType, Format: r.Format, Status: r.Status,
			Reason: r.Reason, Detail: r.Detail, Members: r.Members}
		if len(r.Text) > 0 {
			b, err := dec.DecodeAll(r.Text, nil)
			if err != nil {
				return nil, false, fmt.Errorf("attachment text of %s part %d: %w", hex, r.Part, err)
			}
			t.Text = string(b)
		}
		texts = append(texts, t)
	}
	pending, err = a.cat.ExtractPending(ctx, id)
	return texts, pending, err
}

// ExtractCounts counts attachments extracted, failed and queued (status).
func (a *Archive) ExtractCounts(ctx context.Context) (catalog.ExtractCounts, error) {
	return a.cat.ExtractCounts(ctx, extract.Version)
}

// ExtractCountsOf counts the attachment text of the archive in dir without
// opening it (status beside a running writer, like Status). A catalog made
// before attachment text existed has none to count.
func ExtractCountsOf(ctx context.Context, dir string) (catalog.ExtractCounts, error) {
	cat, err := catalog.OpenReadOnly(filepath.Join(dir, "catalog.db"))
	if err != nil {
		return catalog.ExtractCounts{}, err
	}
	defer cat.Close()
	c, err := cat.ExtractCounts(ctx, extract.Version)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		return catalog.ExtractCounts{}, nil
	}
	return c, err
}

// ExtractOf is where a message stands with the extractor.
type ExtractOf = catalog.ExtractOf

// ExtractStates returns where each of keys stands with the extractor
// (an export reads a batch at a time: which have text to read, which wait).
func (a *Archive) ExtractStates(ctx context.Context, keys [][32]byte) (map[[32]byte]ExtractOf, error) {
	return a.cat.ExtractStates(ctx, keys)
}

// Bulk marks a bulk job (an import, a compaction, a reindex) running until
// the returned func is called: the extractor yields to it all along, not
// only while batches are committed, so the job's own time stays what it is
// without extraction, and the queue is worked off when it ends (an import
// waits for that: WaitExtracts).
func (a *Archive) Bulk() (done func()) {
	a.bulk.Add(1)
	var once sync.Once
	return func() { once.Do(func() { a.bulk.Add(-1) }) }
}

// WantsExtraction reports whether pm, a parse of a message, has
// attachments the extractor would read. An export asks it of a message
// archived before attachment text existed (no extraction row: its first
// reindex queues it), from the parse the export makes anyway, and notes
// such a message as it notes one still queued.
func (a *Archive) WantsExtraction(pm *mime.Message) bool { return needsExtraction(pm, a.ocr()) }

// While mail is being ingested, the extractor rests busyRest times as long
// as each extraction took (at most maxRest), so that it takes at most a
// twentieth of a core from ingest (with a fifth, an import of mail with an
// attachment in one message of ten was 16 % slower, over the 10 % the
// issue allows: docs/benchmarks.md): the messages' own words stay as fast to
// become searchable, the attachments' text follows, and what is left when
// the ingest pauses (the end of an import) is done at full speed. It never
// stops altogether, so a harvest that never pauses still gets its text.
const (
	busyRest = 19
	maxRest  = 2 * time.Second
	busyFor  = time.Second // ingest is busy if a batch was committed this recently
)

func (a *Archive) yieldToIngest(ctx context.Context, spent time.Duration) {
	if a.bulk.Load() == 0 && time.Since(time.Unix(0, a.lastCommit.Load())) > busyFor {
		return
	}
	t := time.NewTimer(min(busyRest*spent, maxRest))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
