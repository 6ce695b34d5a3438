package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"mailvault/export"
	"mailvault/indexer"
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
	if err := s.audit(ctx, c, "export", fmt.Sprintf("%d messages to %s: %s", len(src.hits), req.Dir, exportWhat(req))); err != nil {
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
type exportSource struct {
	a    *indexer.Archive
	hits []Hit
}

// exportScope resolves the scope: every page of the search (or the listed
// ids) within c's scope, narrowed by the dates, merged per message.
func (s *Service) exportScope(ctx context.Context, c Caller, req ExportRequest) (*exportSource, error) {
	byID := map[string]*Hit{}
	var order []string
	add := func(h Hit) {
		if x, ok := byID[h.SHA256]; ok {
			for _, o := range h.Occurrences {
				if !slices.ContainsFunc(x.Occurrences, func(y indexer.Occurrence) bool {
					return y.Account == o.Account && y.Mailbox == o.Mailbox && y.UIDValidity == o.UIDValidity && y.UID == o.UID
				}) {
					x.Occurrences = append(x.Occurrences, o)
				}
			}
			return
		}
		h2 := h
		byID[h.SHA256] = &h2
		order = append(order, h.SHA256)
	}
	if req.Search != nil {
		hits, err := s.searchAll(ctx, c, *req.Search)
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			add(h)
		}
	}
	if len(req.IDs) > 0 {
		listed := map[string]bool{}
		for _, id := range req.IDs {
			h, err := s.lookup(ctx, c, id)
			if err != nil {
				return nil, s.denied(ctx, c, "export", id, err)
			}
			listed[h.SHA256] = true
			if req.Search == nil {
				add(*h)
			}
		}
		if req.Search != nil {
			order = slices.DeleteFunc(order, func(id string) bool { return !listed[id] })
		}
	}
	out := &exportSource{a: s.a}
	for _, id := range order {
		h := *byID[id]
		day := ""
		if len(h.Date) >= 10 {
			day = h.Date[:10] // the day in the message's own zone
		}
		if req.After != "" && (day == "" || day < req.After) || req.Before != "" && (day == "" || day >= req.Before) {
			continue
		}
		out.hits = append(out.hits, h)
	}
	slices.SortStableFunc(out.hits, func(x, y Hit) int {
		tx, _ := time.Parse(time.RFC3339, x.Date)
		ty, _ := time.Parse(time.RFC3339, y.Date)
		if c := tx.Compare(ty); c != 0 {
			return c
		}
		return strings.Compare(x.SHA256, y.SHA256)
	})
	return out, nil
}

func (e *exportSource) Count(context.Context) (int, error) { return len(e.hits), nil }

func (e *exportSource) Each(ctx context.Context, fn func(export.Message) error) error {
	for _, h := range e.hits {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := e.a.Raw(h.SHA256)
		if err != nil {
			if errors.Is(err, indexer.ErrBlobCorrupt) {
				return fmt.Errorf("message %s: %w: %w", h.SHA256, export.ErrCorrupt, err)
			}
			return fmt.Errorf("message %s: %w", h.SHA256, err)
		}
		m := export.Message{SHA256: h.SHA256, Raw: raw, ParseError: h.ParseError}
		for _, o := range h.Occurrences {
			oc := export.Occurrence{Account: o.Account, Mailbox: o.Mailbox, UIDValidity: o.UIDValidity, UID: o.UID, URL: o.URL}
			if t, err := time.Parse(time.RFC3339, o.InternalDate); err == nil {
				oc.InternalDate = t
			}
			m.Occurrences = append(m.Occurrences, oc)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

var _ export.Source = (*exportSource)(nil)
