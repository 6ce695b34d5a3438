package indexer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/indexer/mime"
	"mailvault/indexer/store"
	"mailvault/query"
)

// Item is one copy of a message to archive: its raw bytes exactly as the
// server (or file) gave them, and where it lives.
type Item struct {
	Account      string
	Mailbox      string
	UIDValidity  uint32
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Raw          []byte
	// Envelope, when set, is the SMTP envelope of a journaled copy
	// (package journal): recorded with the occurrence in the same catalog
	// transaction, and its recipients indexed (rcpt:, and bcc: for those
	// no header names).
	Envelope *Envelope
	// Gmail, when set, is what Gmail's X-GM-EXT-1 said of a harvested
	// copy (catalog/gmail.go), recorded with the occurrence.
	Gmail *catalog.Gmail
}

// Envelope is the SMTP envelope of a journaled message (the catalog's
// envelopes table).
type Envelope = catalog.Envelope

// Outcome says what Ingest did with an item.
type Outcome int

const (
	// Stored: new content; a blob, a message and an occurrence were written.
	Stored Outcome = iota + 1
	// Linked: known content in a new place; only an occurrence was written.
	Linked
	// Present: the occurrence was archived already; nothing changed.
	Present
)

func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Linked:
		return "linked"
	case Present:
		return "present"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result reports what happened to one item of an Ingest call.
type Result struct {
	Key        store.Key
	Outcome    Outcome
	ParseError string // non-empty when the message was stored but could not be fully parsed
}

// prepared is an item after the parallel phase of Ingest.
type prepared struct {
	key    store.Key
	msg    *mime.Message
	stored int64
	err    error
	sig    *[sigSlot]byte // IMAP SEARCH signature (ngram.go); nil without the prefilter
}

// Ingest archives items durably and queues their index documents. When it
// returns nil, every item's blob and occurrence are committed: the caller may
// advance its checkpoint past them (invariant 1). Items for mailboxes not
// created with EnsureMailbox are an error. A message that does not parse is
// still stored and cataloged, with its parse error (invariant 8).
//
// Ingest is Prepare followed by Commit; a bulk importer calls the two itself
// to prepare the next batch while the previous one commits. Ingest is safe
// for concurrent use: Prepares run in parallel, Commits one at a time.
func (a *Archive) Ingest(ctx context.Context, items []Item) ([]Result, error) {
	p, err := a.Prepare(ctx, items)
	if err != nil {
		return nil, err
	}
	return a.Commit(ctx, p)
}

// Prepared is a batch after the CPU-heavy half of ingest: hashed, parsed,
// compressed, its new blobs written but not yet durable or visible.
type Prepared struct {
	a     *Archive
	items []Item
	mbs   []catalog.Mailbox
	preps []prepared
	// staged are the new blobs (one per prepared item; Token "" for a blob
	// that exists); nil once published or discarded.
	staged []store.Staged
}

// Abort discards a prepared batch that will not be committed.
func (p *Prepared) Abort() {
	if p.staged != nil {
		p.a.store.Discard(p.staged)
		p.staged = nil
	}
}

// Prepare hashes, parses and compresses items on Options.Workers goroutines
// and writes their blobs' temporary files. It may run while Commit of an
// earlier batch runs; nothing it does is visible until Commit.
func (a *Archive) Prepare(ctx context.Context, items []Item) (*Prepared, error) {
	if a.writer == nil {
		return nil, fmt.Errorf("ingest: archive %s is open read-only", a.dir)
	}
	p := &Prepared{a: a, items: items, mbs: make([]catalog.Mailbox, len(items)), preps: make([]prepared, len(items)),
		staged: make([]store.Staged, len(items))}
	for i, it := range items {
		mb, err := a.mailbox(ctx, it.Account, it.Mailbox)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		p.mbs[i] = mb
	}
	// The blob write is idempotent (content-addressed), so doing it before the
	// catalog knows the message is safe; a crash leaves at most an
	// unreferenced blob.
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(a.opts.Workers, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pp := &p.preps[i]
				raw := items[i].Raw
				pp.key = store.KeyOf(raw)
				pp.msg = mime.Parse(raw, a.opts.Limits)
				if a.sigs != nil {
					// From the view IMAP SEARCH verifies against (ngram.go).
					pp.sig = signature(pp.key, mime.NewView(raw))
				}
				p.staged[i], pp.err = a.store.Stage(ctx, pp.key, raw)
				pp.stored = p.staged[i].Stored
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, pp := range p.preps {
		if pp.err != nil {
			p.Abort()
			return nil, fmt.Errorf("ingest: %w", pp.err)
		}
	}
	return p, nil
}

// Commit makes a prepared batch durable: blobs (fsync), then one catalog
// transaction, then hands the index documents to the writer. Commits must not
// run concurrently with each other; call them in the order the batches were
// prepared.
func (a *Archive) Commit(ctx context.Context, p *Prepared) ([]Result, error) {
	defer func() {
		for _, it := range p.items {
			a.touch(it.Account, it.Mailbox)
		}
	}()
	defer a.gen.Add(1)
	// Commits are serialised (harvesters of many accounts call Ingest
	// concurrently): a message's index documents must reach the writer in the
	// order of the catalog generations they reflect.
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	a.lastCommit.Store(time.Now().UnixNano())
	items, mbs, preps := p.items, p.mbs, p.preps
	defer p.Abort() // no-op after the blobs are published
	// A blob present at Prepare may have been disposed of since (dispose.go).
	if err := a.restage(ctx, p); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if err := a.writePending(p.staged); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if err := a.store.Publish(ctx, p.staged); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	p.staged = nil

	// Catalog phase: one transaction for the whole batch.
	arrivals := make([]catalog.Arrival, len(items))
	for i, it := range items {
		arrivals[i] = catalog.Arrival{
			Message: catalogMessage(preps[i], len(it.Raw), a.ocr()),
			Occurrence: catalog.Occurrence{
				MailboxID: mbs[i].ID, UIDValidity: it.UIDValidity, UID: it.UID,
				Flags: it.Flags, InternalDate: it.InternalDate, Size: int64(len(it.Raw)),
			},
			Checkpoint: it.UIDValidity == mbs[i].UIDValidity,
			Envelope:   it.Envelope,
			Gmail:      it.Gmail,
		}
	}
	recs, err := a.cat.RecordIngest(ctx, arrivals)
	if err != nil {
		// The blobs are published, the catalog does not have them: an
		// interrupted ingest, like a crash here (journal.go).
		if jerr := a.movePending(); jerr != nil {
			a.log.Error("ingest journal", "err", jerr)
		}
		return nil, fmt.Errorf("ingest: %w", err)
	}
	a.clearPending()
	results := make([]Result, len(items))
	ids := make([]int64, len(items)) // message row id of each item
	touched := map[int64]int{}       // message id → index into items of one copy, for re-indexing
	for i, r := range recs {
		results[i] = Result{Key: preps[i].key, ParseError: preps[i].msg.ParseError()}
		switch r.Outcome {
		case catalog.RecordedNew:
			results[i].Outcome = Stored
		case catalog.RecordedLinked:
			results[i].Outcome = Linked
		default:
			results[i].Outcome = Present
			continue
		}
		ids[i] = r.MessageID
		if r.NewPlace {
			touched[r.MessageID] = i
		}
	}

	// IMAP SEARCH signatures of new and linked content (a cache: a failed
	// write leaves slots unknown, which searches scan).
	for i, id := range ids {
		if id != 0 && preps[i].sig != nil {
			if err := a.sigs.put(id, preps[i].sig, -1); err != nil {
				a.log.Warn("IMAP SEARCH signature", "sha256", preps[i].key, "err", err)
				break
			}
		}
	}

	// Index phase: hand documents to the writer. From here on a failure loses
	// nothing: the catalog marks these messages unindexed until the writer
	// commits them, and CatchUp redoes whatever is left. New content was
	// inserted at gen 1 and lives exactly where this batch put it; known
	// content in a new place asks the catalog for its gen and every place.
	places := map[int64][]catalog.Place{}
	for i, r := range results {
		if r.Outcome == Stored {
			places[ids[i]] = nil
		}
	}
	for i, r := range results {
		if ps, fresh := places[ids[i]]; fresh && r.Outcome != Present {
			pl := catalog.Place{Account: items[i].Account, Mailbox: items[i].Mailbox, Flags: items[i].Flags}
			if e := items[i].Envelope; e != nil {
				pl.Recipients = e.Recipients
			}
			places[ids[i]] = append(ps, pl)
		}
	}
	// Committed: from here the caller's cancellation no longer stops the
	// documents (see reindexTouched), or a harvest stopped right after its
	// commit would leave the new copies unsearchable until a restart.
	ctx = context.WithoutCancel(ctx)
	for id, i := range touched {
		var err error
		task := catalog.IndexTask{ID: id, SHA256: preps[i].key, Gen: 1}
		ps, fresh := places[id]
		if !fresh {
			if task.Gen, err = a.cat.Gen(ctx, id); err == nil {
				ps, err = a.cat.Places(ctx, id)
			}
			if err == nil {
				// Known content: its attachments' text may be recorded.
				err = a.fillAttachmentTexts(ctx, id, preps[i].msg)
			}
			if err != nil {
				return results, fmt.Errorf("index message %s: %w", preps[i].key, err)
			}
		}
		doc, n := buildDoc(preps[i].msg, int64(len(items[i].Raw)), ps)
		if err := a.writer.submit(ctx, indexJob{task: task, doc: doc, size: n}); err != nil {
			// Committed all the same: the catalog marks the message unindexed
			// and CatchUp indexes it at the next start. Only a closed writer
			// gets here: the archive is closing.
			a.log.Warn("index queue", "sha256", task.SHA256Hex(), "err", err)
		}
	}
	for i, r := range results {
		if r.Outcome == Stored && needsExtraction(preps[i].msg, a.ocr()) {
			a.wakeExtractor()
			break
		}
	}
	return results, nil
}

func catalogMessage(p prepared, size int, ocr bool) *catalog.Message {
	m := p.msg
	from := ""
	if len(m.From) > 0 {
		from = formatAddress(m.From[0])
	}
	return &catalog.Message{
		SHA256: p.key, Size: int64(size), StoredSize: p.stored, ParseError: m.ParseError(),
		Subject: m.Subject, From: from, Date: m.Date, MessageID: m.MessageID,
		HasAttachments: m.HasAttachments(), Extract: needsExtraction(m, ocr),
		Fingerprint: Fingerprint(m), FingerprintVersion: FingerprintVersion,
	}
}

func formatAddress(a mime.Address) string {
	if a.Name == "" {
		return a.Addr
	}
	if a.Addr == "" {
		return a.Name
	}
	return a.Name + " <" + a.Addr + ">"
}

// buildDoc returns the index document of a message and its approximate size.
func buildDoc(m *mime.Message, size int64, places []catalog.Place) (map[string]any, int) {
	n := 0
	addrs := func(list []mime.Address) []string {
		out := make([]string, 0, len(list))
		for _, a := range list {
			s := strings.TrimSpace(a.Name + " " + a.Addr)
			n += len(s)
			// One value: the analyser (analysis.go) indexes alice@example.org
			// as alice, example, org.
			out = append(out, s)
		}
		return out
	}
	doc := map[string]any{
		query.IndexFrom:          addrs(append(append([]mime.Address(nil), m.From...), m.Sender...)),
		query.IndexTo:            addrs(m.To),
		query.IndexCc:            addrs(m.Cc),
		query.IndexBcc:           addrs(m.Bcc),
		query.IndexSubject:       m.Subject,
		query.IndexBody:          m.Text,
		query.IndexSize:          float64(size),
		fieldSortSize:            sortSizeKey(size),
		query.IndexHasAttachment: m.HasAttachments(),
	}
	n += len(m.Subject) + len(m.Text)
	if !m.Date.IsZero() {
		doc[query.IndexDay] = float64(query.DayValue(m.Date))
		doc[fieldTime] = float64(m.Date.Unix())
		doc[fieldSortTime] = sortTimeKey(m.Date)
		doc[fieldDayKey] = dayKey(m.Date)
	}
	var names, texts []string
	for _, at := range m.Attachments {
		if at.Filename != "" {
			names = append(names, at.Filename)
		}
		if at.Text != "" {
			texts = append(texts, at.Text)
		}
		n += len(at.Filename) + len(at.Text)
	}
	doc[query.IndexAttachment] = names
	doc[query.IndexAttachmentText] = texts
	accounts := map[string]bool{}
	mailboxes := map[string]bool{}
	pairs := map[string]bool{}
	for _, p := range places {
		accounts[p.Account] = true
		mailboxes[query.CanonicalMailbox(p.Mailbox)] = true
		pairs[placeKey(p.Account, p.Mailbox)] = true
	}
	doc[query.IndexAccount] = keys(accounts)
	doc[query.IndexMailbox] = keys(mailboxes)
	if rcpt, hidden, terms := envelopeRecipients(m, places); len(rcpt) > 0 {
		doc[query.IndexRcpt] = rcpt
		if len(hidden) > 0 {
			doc[query.IndexBccEnvelope] = hidden
		}
		doc[query.IndexEnvelope] = terms
		for _, r := range rcpt {
			n += len(r)
		}
	}
	if fl := flagTerms(places); len(fl) > 0 {
		doc[query.IndexFlag] = fl
	}
	if list := listID(m); list != "" {
		doc[query.IndexList] = list
		n += len(list)
	}
	doc[fieldPlace] = keys(pairs)
	if len(m.From) > 0 && m.From[0].Addr != "" {
		doc[fieldSender] = strings.ToLower(m.From[0].Addr)
	}
	refs := append(slices.Clone(m.References), m.InReplyTo...)
	if len(refs) > 0 {
		doc[fieldRefs] = refs
	}
	return doc, n
}

// envelopeRecipients returns the envelope recipients of the message's
// journaled places (query.IndexRcpt), each once; those of them that no To,
// Cc or Bcc header names, the blind copies (query.IndexBccEnvelope); and
// the per-account terms of both (query.IndexEnvelope), which a caller who
// does not see every account searches instead.
func envelopeRecipients(m *mime.Message, places []catalog.Place) (all, hidden, terms []string) {
	shown := map[string]bool{}
	for _, list := range [][]mime.Address{m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			shown[strings.ToLower(a.Addr)] = true
		}
	}
	seen := map[string]bool{}
	seenTerm := map[string]bool{}
	term := func(t string) {
		if !seenTerm[t] {
			seenTerm[t] = true
			terms = append(terms, t)
		}
	}
	for _, p := range places {
		for _, r := range p.Recipients {
			k := strings.ToLower(r)
			term(query.EnvelopeKey(p.Account, r))
			if !shown[k] {
				term(query.EnvelopeBlindKey(p.Account, r))
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			all = append(all, r)
			if !shown[k] {
				hidden = append(hidden, r)
			}
		}
	}
	return all, hidden, terms
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// flagTerms returns the IndexFlag terms of places: each flag held anywhere
// (is:read for a caller who sees everything) and each flag per place (the
// same in a narrower scope). Expunged copies keep the flags they had last,
// as the human syntax searches them too.
func flagTerms(places []catalog.Place) []string {
	set := map[string]bool{}
	for _, p := range places {
		for _, f := range p.Flags {
			set[query.FlagKey(f)] = true
			set[query.FlagPlaceKey(p.Account, p.Mailbox, f)] = true
		}
	}
	return keys(set)
}

// listID returns the first List-Id header's value (RFC 2919), "" without one.
func listID(m *mime.Message) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Key, "List-Id") {
			return strings.TrimSpace(h.Value)
		}
	}
	return ""
}

// Flush waits until every document queued so far is committed to the index.
func (a *Archive) Flush(ctx context.Context) error {
	if a.writer == nil {
		return nil
	}
	return a.writer.flush(ctx)
}

// CatchUp indexes every message the catalog marks as not yet indexed, reading
// it back from the store. It runs at start (a crash between the catalog commit
// and the index commit leaves such messages) and for reindex. progress, when
// not nil, is called after each message with the count done and the total.
func (a *Archive) CatchUp(ctx context.Context, progress func(done, total int)) error {
	if a.writer == nil {
		return fmt.Errorf("catch up: archive %s is open read-only", a.dir)
	}
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	total, err := a.cat.CountUnindexed(ctx)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if total == 0 {
		return nil
	}
	var after int64
	done, failed, corrupt := 0, 0, 0
	// Commit at least every few seconds, so that a catch-up interrupted again
	// and again (a crash loop) still makes progress.
	lastFlush := time.Now()
	for {
		tasks, err := a.cat.Unindexed(ctx, after, 256)
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		if len(tasks) == 0 {
			break
		}
		jobs, errs := a.loadJobs(ctx, tasks)
		for i, t := range tasks {
			after = t.ID
			if errs[i] != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// A missing or corrupt blob is verify's to report; indexing goes on.
				a.log.Error("cannot index message", "sha256", t.SHA256Hex(), "err", errs[i])
				failed++
				if errors.Is(errs[i], ErrBlobCorrupt) {
					corrupt++
				}
				continue
			}
			if err := a.writer.submit(ctx, jobs[i]); err != nil {
				return fmt.Errorf("catch up: %w", err)
			}
			done++
			if progress != nil {
				progress(done, total)
			}
		}
		if time.Since(lastFlush) > 2*time.Second {
			if err := a.Flush(ctx); err != nil {
				return fmt.Errorf("catch up: %w", err)
			}
			lastFlush = time.Now()
		}
	}
	if err := a.Flush(ctx); err != nil {
		return err
	}
	if failed > 0 {
		return unindexableError("catch up", failed, corrupt)
	}
	return nil
}

// loadJobs reads the messages of tasks back from the store and builds their
// index documents with their current places, on Options.Workers goroutines.
// errs[i] is set when task i's blob cannot be read.
func (a *Archive) loadJobs(ctx context.Context, tasks []catalog.IndexTask) (jobs []indexJob, errs []error) {
	jobs = make([]indexJob, len(tasks))
	errs = make([]error, len(tasks))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(a.opts.Workers, len(tasks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := tasks[i]
				raw, err := a.readBlob(ctx, t.SHA256)
				if err != nil {
					errs[i] = err
					continue
				}
				places, err := a.cat.Places(ctx, t.ID)
				if err != nil {
					errs[i] = fmt.Errorf("places of message %s: %w", t.SHA256Hex(), err)
					continue
				}
				m := mime.Parse(raw, a.opts.Limits)
				if err := a.fillAttachmentTexts(ctx, t.ID, m); err != nil {
					errs[i] = err
					continue
				}
				doc, n := buildDoc(m, int64(len(raw)), places)
				jobs[i] = indexJob{task: t, doc: doc, size: n}
			}
		}()
	}
	for i := range tasks {
		next <- i
	}
	close(next)
	wg.Wait()
	return jobs, errs
}

// unindexableError is the error of CatchUp and Reindex when n messages
// could not be indexed; it wraps ErrBlobCorrupt when corrupt of them had a
// blob that is not their message (never indexed under their key).
func unindexableError(action string, n, corrupt int) error {
	if corrupt > 0 {
		return fmt.Errorf("%s: %d messages could not be indexed: %d blobs are not the message their key names (%w) and were not indexed under it, %d missing or unreadable (run `mailvault verify` for the list)",
			action, n, corrupt, ErrBlobCorrupt, n-corrupt)
	}
	return fmt.Errorf("%s: %d messages could not be indexed: their blobs are missing or unreadable (run `mailvault verify` for the list)", action, n)
}
