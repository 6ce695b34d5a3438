package service

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"mailvault/export"
	"mailvault/indexer"
	"mailvault/indexer/store"
)

// Exports: a scope (a search in either syntax over custodians and
// mailboxes, a date range, or an explicit list of messages) written by
// package export as a production, an mbox or EML files. The scope is the
// caller's: an export never holds a copy the caller may not see, and its
// occurrences (custodians, folder paths) are only those in scope.
//
// Who may export: admins, auditors and the operator. Users may not (an
// export is a bulk copy; organisations decide who makes them), which is
// the default; the scope would hold them to their accounts all the
// same.

// JobExport is the kind of export jobs.
const JobExport JobKind = "export"

// ExportRequest is one export.
type ExportRequest struct {
	// Search selects the messages (Limit and Offset are ignored: all of
	// them). Nil with IDs empty is an error.
	Search *SearchRequest `json:"search,omitempty"`
	// IDs selects messages by sha256 instead (or on top: both narrow).
	IDs []string `json:"ids,omitempty"`
	// After and Before bound the sent date (YYYY-MM-DD, the day as written
	// in the message's own zone): on or after After, before Before.
	After  string `json:"after,omitempty"`
	Before string `json:"before,omitempty"`
	// Dir is where the export is written; it must not exist or be empty
	// (with Zip, Dir + ".zip" must not exist).
	// The daemon needs an absolute path. Empty: a new directory under
	// <data>/exports.
	Dir      string          `json:"dir,omitempty"`
	Zip      bool            `json:"zip,omitempty"`
	Format   export.Format   `json:"format,omitempty"`
	Dedup    export.Dedup    `json:"dedup,omitempty"`
	Encoding export.Encoding `json:"encoding,omitempty"`
	Prefix   string          `json:"prefix,omitempty"`
	Start    int             `json:"start,omitempty"`
	Width    int             `json:"width,omitempty"`
}

// ExportResult is what an export job leaves: where, and its manifest.
type ExportResult struct {
	Dir      string           `json:"dir"`
	Manifest *export.Manifest `json:"manifest,omitempty"`
	// ManifestSHA256 is manifest.json's sha256, as custody.txt and the
	// audit trail (export-done) state it.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
}

// CanExport reports whether c may make exports: admin, auditor, the legal
// team (productions are theirs to make) and the operator.
func (c Caller) CanExport() bool {
	return c.Role == RoleAdmin || c.Role == RoleAuditor || c.Role == RoleLegal || c.Role == RoleOperator
}

// ExportsDir is where exports started without a directory go.
func (s *Service) ExportsDir() string { return filepath.Join(s.a.Dir(), "exports") }

// StartExport starts an export job for c; its result is an ExportResult.
// The scope is resolved when the job runs, within c's scope, and recorded in
// the audit trail and the manifest.
func (s *Service) StartExport(c Caller, req ExportRequest) (JobInfo, error) {
	if !c.CanExport() {
		return JobInfo{}, errorf(ErrForbidden, "user %s (%s) may not export: admins and auditors may", c.Name, c.Role)
	}
	if err := checkExportRequest(&req); err != nil {
		return JobInfo{}, err
	}
	if req.Dir != "" && !filepath.IsAbs(req.Dir) {
		return JobInfo{}, errorf(ErrBadRequest, "export: directory %q is not absolute (the daemon has its own working directory)", req.Dir)
	}
	if req.Dir == "" {
		var b [6]byte
		rand.Read(b[:])
		req.Dir = filepath.Join(s.ExportsDir(), time.Now().UTC().Format("20060102-150405")+"-"+hex.EncodeToString(b[:]))
	}
	what := exportWhat(req)
	info, err := s.jobs.start(c, JobExport, what, func(ctx context.Context, progress func(int, int)) (any, error) {
		return s.Export(ctx, c, req, progress)
	})
	return info, err
}

func exportWhat(req ExportRequest) string {
	var parts []string
	if q := req.Search; q != nil {
		parts = append(parts, fmt.Sprintf("%s search %q", cmpSyntax(q.Syntax), q.Query))
		if len(q.Accounts) > 0 {
			parts = append(parts, "custodians "+strings.Join(q.Accounts, ","))
		}
		if len(q.Mailboxes) > 0 {
			parts = append(parts, "mailboxes "+strings.Join(q.Mailboxes, ","))
		}
	}
	if len(req.IDs) > 0 {
		parts = append(parts, fmt.Sprintf("%d listed messages", len(req.IDs)))
	}
	if req.After != "" || req.Before != "" {
		parts = append(parts, fmt.Sprintf("sent %s..%s", req.After, req.Before))
	}
	return fmt.Sprintf("%s (%s, dedup %s): %s", req.Format, req.Dir, req.Dedup, strings.Join(parts, "; "))
}

func cmpSyntax(s Syntax) Syntax {
	if s == "" {
		return SyntaxHuman
	}
	return s
}

// checkExportRequest validates req and fills in the export's defaults
// (export.Options.WithDefaults is the one check of those).
func checkExportRequest(req *ExportRequest) error {
	if req.Search == nil && len(req.IDs) == 0 {
		return errorf(ErrBadRequest, "export: give a search or a list of message ids")
	}
	o, err := req.options("", nil).WithDefaults()
	if err != nil {
		return errorf(ErrBadRequest, "%v", err)
	}
	req.Format, req.Dedup, req.Encoding, req.Prefix, req.Start, req.Width = o.Format, o.Dedup, o.Encoding, o.Prefix, o.Start, o.Width
	for _, d := range []string{req.After, req.Before} {
		if d != "" {
			if _, err := time.Parse("2006-01-02", d); err != nil {
				return errorf(ErrBadRequest, "export: date %q: want YYYY-MM-DD", d)
			}
		}
	}
	for _, id := range req.IDs {
		if len(id) != 64 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
			return errorf(ErrBadRequest, "export: %q is not a message id (64 hex digits)", clipID(id))
		}
	}
	return nil
}

// options are the export package's options for req, made by who.
func (req ExportRequest) options(by string, progress func(done, total int)) export.Options {
	return export.Options{Dir: req.Dir, Zip: req.Zip, Format: req.Format, Dedup: req.Dedup, Encoding: req.Encoding,
		Prefix: req.Prefix, Start: req.Start, Width: req.Width, Scope: req, By: by, Tool: "mailvault", Progress: progress}
}

// Export writes the export of req for c now (the job's body; one-shot
// commands call it directly).
func (s *Service) Export(ctx context.Context, c Caller, req ExportRequest, progress func(done, total int)) (*ExportResult, error) {
	if !c.CanExport() {
		return nil, errorf(ErrForbidden, "user %s (%s) may not export: admins and auditors may", c.Name, c.Role)
	}
	if err := checkExportRequest(&req); err != nil {
		return nil, err
	}
	src, err := s.exportScope(ctx, c, req)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, "export", fmt.Sprintf("%d messages to %s: %s", len(src.entries), req.Dir, exportWhat(req))); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(req.Dir), 0o700); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	opts := req.options(c.Name, progress)
	if l := s.opts.Ledger; l != nil && l.Signs() && (req.Format == "" || req.Format == export.FormatProduction) {
		p, err := l.exportProofs(ctx, s.a)
		if err != nil {
			return nil, fmt.Errorf("export: the ledger's proofs: %w", err)
		}
		opts.Proofs = p
	}
	m, err := export.Write(ctx, src, opts)
	if err != nil {
		return nil, classifyExport(err)
	}
	dir := req.Dir
	if req.Zip {
		dir += ".zip"
	}
	// The production is recorded by its manifest's sha256 (which names
	// every file's) before it is handed out: an export that cannot be
	// recorded fails, and its job is never downloadable.
	if err := s.audit(ctx, c, ActionExportDone, fmt.Sprintf("%s manifest sha256 %s: %d messages, %d documents", dir, m.SHA256, m.Counts.Messages, m.Counts.Documents)); err != nil {
		return nil, err
	}
	return &ExportResult{Dir: dir, Manifest: m, ManifestSHA256: m.SHA256}, nil
}

func classifyExport(err error) error {
	if errors.Is(err, export.ErrCorrupt) {
		return fmt.Errorf("export stopped: a message failed its hash check, and altered mail is never exported (`mailvault verify` names it): %w", err)
	}
	return err
}

// exportSource is export.Source over the archive: the messages in scope,
// ordered by sent date then sha256 (stable across runs of one scope), with
// their occurrences in scope.
//
// It keeps only each message's key and sent date (40 bytes; 40 MB for a
// million) and looks the rest up a batch at a time as the export reaches
// it (hits), so that an export's memory does not grow with its scope. A
// search's scope of at most exportKeepHits messages keeps its hits as the
// search gave them instead (a few MB): looking them up again is a fifth
// of a small export's time.
type exportSource struct {
	a *indexer.Archive
	// production: the format has documents with text and the load files'
	// fields, so the attachments' extracted text, the provenance and the
	// flag histories are read, and a message never extracted is noted.
	// mbox and EML carry the raw message alone.
	production bool
	entries    []scopeEntry
	hits       func(ctx context.Context, keys [][32]byte) ([]Hit, error)
}

// exportKeepHits is the largest scope whose hits are kept whole (a
// variable for the test that compares the two ways).
var exportKeepHits = 20000

type scopeEntry struct {
	key  [32]byte
	sent int64 // Unix seconds of the Date: header (of the zero time when none)
}

// exportScope resolves the scope: the search's matches (or the listed ids)
// within c's scope, narrowed by the dates, merged per message. A search in
// the human syntax is streamed from the index (indexer.Selection); the
// IMAP syntax answers per mailbox and a list of ids is as long as the
// request, so those are kept whole.
func (s *Service) exportScope(ctx context.Context, c Caller, req ExportRequest) (*exportSource, error) {
	out := &exportSource{a: s.a, production: req.Format == export.FormatProduction}
	inDates := func(h Hit) bool {
		day := ""
		if len(h.Date) >= 10 {
			day = h.Date[:10] // the day in the message's own zone
		}
		return !(req.After != "" && (day == "" || day < req.After) || req.Before != "" && (day == "" || day >= req.Before))
	}
	var listed map[[32]byte]bool
	kept := map[[32]byte]Hit{}
	keep := func(h Hit) error {
		k, err := store.ParseKey(h.SHA256)
		if err != nil {
			return err
		}
		if listed != nil && !listed[k] {
			return nil // a search and a list: the listed messages the search matches
		}
		e := scopeEntry{key: k, sent: time.Time{}.Unix()}
		if t, err := time.Parse(time.RFC3339, h.Date); err == nil {
			e.sent = t.Unix()
		}
		out.entries = append(out.entries, e)
		if kept != nil {
			if len(kept) < exportKeepHits {
				kept[k] = h
			} else {
				kept = nil // a large scope: looked up again as it is exported
			}
		}
		return nil
	}
	byID := map[string]*Hit{}
	if len(req.IDs) > 0 {
		listed = map[[32]byte]bool{}
		for _, id := range req.IDs {
			h, err := s.lookup(ctx, c, id)
			if err != nil {
				return nil, s.denied(ctx, c, "export", id, err)
			}
			k, err := store.ParseKey(h.SHA256)
			if err != nil {
				return nil, err
			}
			listed[k] = true
			if req.Search == nil {
				byID[h.SHA256] = h
			}
		}
	}
	if sr := req.Search; sr != nil && (sr.Syntax == "" || sr.Syntax == SyntaxHuman) {
		sel, err := s.selection(ctx, c, *sr)
		if err != nil {
			return nil, err
		}
		err = sel.Each(ctx, func(batch []indexer.Hit) error {
			for _, ih := range batch {
				h, ok := scopedHit(c, ih)
				if !ok || !inDates(h) {
					continue
				}
				if err := keep(h); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, classify(err)
		}
		if kept != nil {
			out.hits = func(_ context.Context, keys [][32]byte) ([]Hit, error) {
				hits := make([]Hit, 0, len(keys))
				for _, k := range keys {
					hits = append(hits, kept[k])
				}
				return hits, nil
			}
		} else {
			out.hits = func(ctx context.Context, keys [][32]byte) ([]Hit, error) {
				ihs, err := sel.Hits(ctx, keys)
				if err != nil {
					return nil, err
				}
				hits := make([]Hit, 0, len(ihs))
				for _, ih := range ihs {
					if h, ok := scopedHit(c, ih); ok {
						hits = append(hits, h)
					}
				}
				return hits, nil
			}
		}
	} else {
		if sr != nil {
			hits, err := s.searchAll(ctx, c, *sr)
			if err != nil {
				return nil, err
			}
			for _, h := range hits {
				mergeHit(byID, h)
			}
		}
		for _, h := range byID {
			if inDates(*h) {
				if err := keep(*h); err != nil {
					return nil, err
				}
			}
		}
		out.hits = func(_ context.Context, keys [][32]byte) ([]Hit, error) {
			hits := make([]Hit, 0, len(keys))
			for _, k := range keys {
				hits = append(hits, *byID[store.Key(k).String()])
			}
			return hits, nil
		}
	}
	slices.SortFunc(out.entries, func(x, y scopeEntry) int {
		if c := cmp.Compare(x.sent, y.sent); c != 0 {
			return c
		}
		return bytes.Compare(x.key[:], y.key[:])
	})
	return out, nil
}

// mergeHit adds h to byID, or its occurrences to the hit of the same
// message already there (an IMAP search answers per mailbox).
func mergeHit(byID map[string]*Hit, h Hit) {
	x, ok := byID[h.SHA256]
	if !ok {
		byID[h.SHA256] = &h
		return
	}
	for _, o := range h.Occurrences {
		if !slices.ContainsFunc(x.Occurrences, func(y indexer.Occurrence) bool {
			return y.Account == o.Account && y.Mailbox == o.Mailbox && y.UIDValidity == o.UIDValidity && y.UID == o.UID
		}) {
			x.Occurrences = append(x.Occurrences, o)
		}
	}
}

// selection is a human-syntax search as an indexer.Selection, under c's
// access rules as Search applies them (the restricted query, the accounts
// c may search; scopedHit on every hit).
func (s *Service) selection(ctx context.Context, c Caller, req SearchRequest) (*indexer.Selection, error) {
	req.Syntax = SyntaxHuman
	n, accounts, err := s.parseScoped(ctx, c, req)
	if err != nil {
		return nil, err
	}
	sel, err := s.a.Select(ctx, c.restrict(n), &indexer.SearchOptions{Accounts: accounts, Mailboxes: req.Mailboxes})
	if err != nil {
		return nil, classify(err)
	}
	return sel, nil
}

func (e *exportSource) Count(context.Context) (int, error) { return len(e.entries), nil }

// exportBatch is how many messages Each looks up at a time.
const exportBatch = 256

// Each hands out the messages in order. Reading a blob (the file, zstd,
// the hash check) is most of a message's cost here, so readers (one per
// core) read ahead of fn, at most readAhead messages: memory stays bounded
// by a few messages.
func (e *exportSource) Each(ctx context.Context, fn func(export.Message) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type read struct {
		m     export.Message
		texts bool // it has attachment text to read
		err   error
		done  chan struct{}
	}
	readers := max(2, runtime.GOMAXPROCS(0))
	work := make(chan *read)
	order := make(chan *read, 2*readers)
	for range readers {
		go func() {
			for r := range work {
				raw, err := e.a.Raw(r.m.SHA256)
				if err == nil && r.texts {
					err = e.attachmentTexts(ctx, &r.m)
				}
				switch {
				case errors.Is(err, indexer.ErrBlobCorrupt):
					r.err = fmt.Errorf("message %s: %w: %w", r.m.SHA256, export.ErrCorrupt, err)
				case err != nil:
					r.err = fmt.Errorf("message %s: %w", r.m.SHA256, err)
				}
				r.m.Raw = raw
				close(r.done)
			}
		}()
	}
	listErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		listErr <- e.list(ctx, func(m export.Message, texts bool) error {
			r := &read{m: m, texts: texts, done: make(chan struct{})}
			select {
			case order <- r:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case work <- r:
				return nil
			case <-ctx.Done():
				r.err = ctx.Err()
				close(r.done)
				return ctx.Err()
			}
		})
	}()
	var err error
	for r := range order {
		<-r.done
		if err != nil {
			continue // drain, so that the lister stops
		}
		if err = r.err; err == nil {
			err = fn(r.m)
		}
		if err != nil {
			cancel()
		}
	}
	if lerr := <-listErr; err == nil && lerr != nil && !errors.Is(lerr, context.Canceled) {
		err = lerr
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// list calls fn with each message in scope, in order, without its bytes:
// the hits of the scope's keys, looked up a batch at a time.
func (e *exportSource) list(ctx context.Context, fn func(m export.Message, texts bool) error) error {
	keys := make([][32]byte, 0, exportBatch)
	for start := 0; start < len(e.entries); start += exportBatch {
		keys = keys[:0]
		for _, en := range e.entries[start:min(start+exportBatch, len(e.entries))] {
			keys = append(keys, en.key)
		}
		hits, err := e.hits(ctx, keys)
		if err != nil {
			return err
		}
		if len(hits) != len(keys) {
			return fmt.Errorf("%d of %d messages in scope left the archive (or the caller's scope) while it was exported: export again", len(keys)-len(hits), len(keys))
		}
		var (
			states map[[32]byte]indexer.ExtractOf
			prov   map[[32]byte]string
			fhs    map[string][]indexer.FlagHistory
		)
		if e.production {
			// Which have attachment text (the text itself is read beside
			// the blob, for those alone), which still wait for the
			// extractor, which were archived before it existed: one
			// query a batch. Those waiting miss their attachments' TEXT,
			// and the production says so (export/draft.go).
			if states, err = e.a.ExtractStates(ctx, keys); err != nil {
				return err
			}
			// PROVENANCE: over every copy, as the message page's "seen
			// by" (provenance.go): which sources, not whose mailboxes.
			// One query a batch.
			if prov, err = e.a.Provenances(ctx, keys); err != nil {
				return err
			}
			// FLAGS: each copy's flags now, with since when (the flag
			// history). One query a batch; only the copies in scope are
			// looked up in it.
			hexes := make([]string, len(hits))
			for i, h := range hits {
				hexes[i] = h.SHA256
			}
			if fhs, err = e.a.FlagHistories(ctx, hexes); err != nil {
				return err
			}
		}
		for _, h := range hits {
			m := export.Message{SHA256: h.SHA256, ParseError: h.ParseError}
			k, _ := store.ParseKey(h.SHA256)
			m.Provenance = prov[k]
			for _, o := range h.Occurrences {
				oc := export.Occurrence{Account: o.Account, Mailbox: o.Mailbox, UIDValidity: o.UIDValidity, UID: o.UID, URL: o.URL}
				if e.production {
					oc.Flags = flagsSince(fhs[h.SHA256], o)
				}
				if t, err := time.Parse(time.RFC3339, o.InternalDate); err == nil {
					oc.InternalDate = t
				}
				m.Occurrences = append(m.Occurrences, oc)
			}
			st := states[k]
			m.AttachmentTextsPending = st.Queued
			if e.production && !st.Tracked {
				// Archived before attachment text existed: nothing
				// recorded nor queued. The draft's own parse tells
				// whether it has attachments the extractor would read;
				// such a message is noted like a queued one.
				m.Unextracted = e.a.WantsExtraction
			}
			if err := fn(m, st.HasText); err != nil {
				return err
			}
		}
	}
	return nil
}

// flagsSince is occurrence o's flags, in their order on the occurrence,
// each with since when its history says it has been set (zero when the
// history does not say).
func flagsSince(hs []indexer.FlagHistory, o indexer.Occurrence) []export.FlagSince {
	var since map[string]string
	for _, h := range hs {
		if h.Account == o.Account && h.Mailbox == o.Mailbox && h.UIDValidity == o.UIDValidity && h.UID == o.UID {
			since = h.Since
			break
		}
	}
	out := make([]export.FlagSince, 0, len(o.Flags))
	for _, f := range o.Flags {
		fs := export.FlagSince{Flag: f}
		if at, ok := since[f]; ok {
			fs.Since, _ = time.Parse(time.RFC3339Nano, at)
		}
		out = append(out, fs)
	}
	return out
}

// attachmentTexts reads the text extraction made of m's attachments: the
// TEXT of their documents (export/draft.go).
func (e *exportSource) attachmentTexts(ctx context.Context, m *export.Message) error {
	texts, _, err := e.a.AttachmentTexts(ctx, m.SHA256)
	if err != nil {
		return err
	}
	for _, t := range texts {
		if t.Text != "" && t.Part >= 0 {
			if m.AttachmentTexts == nil {
				m.AttachmentTexts = map[int]string{}
			}
			m.AttachmentTexts[t.Part] = t.Text
		}
	}
	return nil
}

var _ export.Source = (*exportSource)(nil)
