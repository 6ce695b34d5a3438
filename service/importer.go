package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/mailfile"
	"mailvault/indexer/store"
)

// File import: the second source beside IMAP harvest. Mail read from
// Maildir, Maildir++ and mbox files gets stable occurrence keys like mail
// from a server: each mailbox gets a UIDVALIDITY when first imported (the
// Unix time then) and each new message the next UID, in file order.
//
// The dedup rule: a message counts as already imported when the mailbox
// already holds as many copies of its content (sha256) as the import has
// seen so far. So running the same import again adds nothing, an import
// killed at any point (or whose serve was killed) can simply be run again,
// and mail added to the Maildir since is picked up with new UIDs. Nothing
// deduplicates by Message-ID. Loose .eml/.emlx directories follow the same
// rule, walked in the order of their file names.
//
// A Gmail Takeout mbox is walked once; each message names the label
// mailboxes it is in (mailfile.Message.Mailboxes) and becomes an occurrence
// in each, every mailbox with its own UIDVALIDITY, UIDs and dedup counts:
// the first occurrence stores the blob, the others link to it (invariant 4).
//
// A PST/OST file is converted by readpst (mailfile.ConvertPST) into a
// private temporary directory (mode 0700, removed afterwards; it needs
// about as much disk space as the PST), whose folder tree is then imported
// as loose .eml mailboxes named after the PST's folders.

// ImportRequest is one import.
type ImportRequest struct {
	Account string `json:"account"`
	// Mailbox names a single Maildir or mbox, or prefixes a Maildir++ tree;
	// "" names a Maildir INBOX and an mbox after its file.
	Mailbox string `json:"mailbox,omitempty"`
	// Paths are read by the process that runs the import: absolute when
	// handed to a daemon.
	Paths []string `json:"paths"`
	// Takeout reads every mbox as a Gmail Takeout mbox, also when
	// detection (X-Gmail-Labels in the first message) does not see one.
	Takeout bool `json:"takeout,omitempty"`
	// NoTakeout reads every mbox as one plain mailbox, X-Gmail-Labels or not.
	NoTakeout bool `json:"no_takeout,omitempty"`
	// PSTTimeoutSeconds bounds each readpst run; 0 is
	// mailfile.DefaultPSTTimeout.
	PSTTimeoutSeconds int `json:"pst_timeout_seconds,omitempty"`
}

// ImportSummary is what an import did.
type ImportSummary struct {
	Stored      int     `json:"stored"`          // new content: blob + message + occurrence
	Linked      int     `json:"linked"`          // known content in a new place: occurrence only
	Present     int     `json:"already_present"` // skipped: already in the archive
	ParseErrors int     `json:"parse_errors"`    // stored, but flagged with a parse error
	FileErrors  int     `json:"file_errors"`     // files or paths that could not be read
	Seconds     float64 `json:"seconds"`
	// Notes are the problems met (unreadable files, odd mbox lines), the
	// first maxNotes of them, each naming its file.
	Notes []string `json:"notes,omitempty"`
}

// Imported counts the messages added (stored or linked).
func (s ImportSummary) Imported() int { return s.Stored + s.Linked }

const maxNotes = 200

// importBatch caps the messages and raw bytes handed to one Ingest call.
const (
	importBatchMessages = 256
	importBatchBytes    = 16 << 20
)

// StartImport starts an import job for c. Its result is an ImportSummary.
// Imports run one at a time, in order.
func (s *Service) StartImport(c Caller, req ImportRequest) (JobInfo, error) {
	if err := mayRun(c); err != nil {
		return JobInfo{}, err
	}
	if req.Account == "" || len(req.Paths) == 0 {
		return JobInfo{}, errorf(ErrBadRequest, "import: an account and at least one path are required")
	}
	for _, p := range req.Paths {
		if !filepath.IsAbs(p) {
			return JobInfo{}, errorf(ErrBadRequest, "import: path %q is not absolute (the daemon has its own working directory)", p)
		}
	}
	what := fmt.Sprintf("account %s: %s", req.Account, strings.Join(req.Paths, " "))
	info, err := s.jobs.start(c, JobImport, what, func(ctx context.Context, progress func(int, int)) (any, error) {
		sum, err := Import(ctx, s.a, req, progress, func(note string) { s.log.Warn("import", "account", req.Account, "note", note) })
		return sum, err
	})
	return info, err
}

// Import reads the mail of req into a and returns what it did; the summary
// is complete also when err is not nil (everything imported so far is kept).
// A path or file that cannot be read is noted (and passed to note, when not
// nil) and the rest is imported; progress, when not nil, is called with the
// messages done and the total.
func Import(ctx context.Context, a *indexer.Archive, req ImportRequest, progress func(done, total int), note func(string)) (*ImportSummary, error) {
	start := time.Now()
	// The attachments' text is extracted when the import is done (the
	// caller waits for it: cmd/mailvault import), not beside it.
	defer a.Bulk()()
	imp := &importer{a: a, account: req.Account, sum: &ImportSummary{}, noteFn: note}
	defer func() { imp.sum.Seconds = time.Since(start).Seconds() }()
	// Find every mailbox first, so progress can show a total.
	var boxes []mailfile.Mailbox
	total := 0
	for _, p := range req.Paths {
		found, err := mailfile.DiscoverOptions(p, mailfile.Options{Mailbox: req.Mailbox, Takeout: req.Takeout, NoTakeout: req.NoTakeout})
		if err != nil {
			imp.note(err.Error())
			imp.sum.FileErrors++
			continue
		}
		for _, mb := range found {
			n, err := mailfile.Count(mb)
			if err != nil {
				imp.note(err.Error())
			}
			total += n
		}
		boxes = append(boxes, found...)
	}
	// Finish indexing whatever an interrupted run left behind. A message whose
	// blob is unreadable stays unindexed (verify names it); importing goes on.
	if err := a.CatchUp(ctx, nil); err != nil {
		if ctx.Err() != nil {
			return imp.sum, ctx.Err()
		}
		imp.note(err.Error())
	}
	done := 0
	var mu sync.Mutex
	advance := func(n int) {
		mu.Lock()
		done += n
		d := done
		mu.Unlock()
		if progress != nil {
			progress(d, max(total, d))
		}
	}
	for _, box := range boxes {
		var err error
		if box.Kind == mailfile.KindPST {
			err = imp.pst(ctx, box, req, advance)
		} else {
			err = imp.mailbox(ctx, box, advance)
		}
		if err != nil {
			var we *walkError
			if !errors.As(err, &we) {
				return imp.sum, err
			}
			imp.note(err.Error())
			imp.sum.FileErrors++
		}
	}
	if err := a.Flush(ctx); err != nil {
		return imp.sum, err
	}
	if imp.sum.Imported() > 0 {
		return imp.sum, a.Compact(ctx)
	}
	return imp.sum, nil
}

type importer struct {
	a       *indexer.Archive
	account string
	noteFn  func(string)

	mu  sync.Mutex // guards sum.Notes and sum.FileErrors, written by the walker too
	sum *ImportSummary
}

func (imp *importer) note(s string) {
	imp.mu.Lock()
	if len(imp.sum.Notes) < maxNotes {
		imp.sum.Notes = append(imp.sum.Notes, s)
	}
	imp.mu.Unlock()
	if imp.noteFn != nil {
		imp.noteFn(s)
	}
}

// pstSpaceFactor is the temporary space a PST conversion is given, in PST
// sizes: readpst writes every message out before the import reads them,
// attachments base64 (4/3 of their size) and headers added.
const pstSpaceFactor = 2

// pstSpace refuses a PST whose conversion would not fit in dir's file
// system (review of issue 16: the temporary directory may be a small
// tmpfs, and readpst filling it failed the import only once the disk was
// full, for everything else on it too). The check is before readpst
// starts; the space can still run out when other writers share it, and
// then readpst's error is the import's.
func pstSpace(pst, dir string) error {
	fi, err := os.Stat(pst)
	if err != nil {
		return err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := fi.Size() * pstSpaceFactor; free < need {
		return fmt.Errorf("converting it needs about %d MiB of temporary space (%d× the PST), %d MiB are free in %s: set TMPDIR to a directory with room",
			need>>20, pstSpaceFactor, free>>20, filepath.Dir(dir))
	}
	return nil
}

// pst converts a PST/OST file with readpst into a private temporary
// directory and imports the folder tree it wrote as loose mailboxes.
func (imp *importer) pst(ctx context.Context, box mailfile.Mailbox, req ImportRequest, advance func(int)) error {
	dir, err := os.MkdirTemp("", "mailvault-pst-*")
	if err != nil {
		return fmt.Errorf("import %s: %w", box.Path, err)
	}
	defer os.RemoveAll(dir)
	if err := pstSpace(box.Path, dir); err != nil {
		return &walkError{fmt.Errorf("import %s: %w", box.Path, err)}
	}
	res, err := mailfile.ConvertPST(ctx, box.Path, dir, time.Duration(req.PSTTimeoutSeconds)*time.Second)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &walkError{err}
	}
	if res.Skipped > 0 {
		imp.note(fmt.Sprintf("%s: %d of readpst's files are not mail (contacts, calendar items, notes) and were not imported", box.Path, res.Skipped))
	}
	found, err := mailfile.Discover(res.Root, box.Name)
	if errors.Is(err, mailfile.ErrNoMailbox) {
		imp.note(fmt.Sprintf("%s: readpst found no mail in it", box.Path))
		return nil
	}
	if err != nil {
		return &walkError{fmt.Errorf("import %s: %w", box.Path, err)}
	}
	for _, sub := range found {
		if err := imp.mailbox(ctx, sub, advance); err != nil {
			var we *walkError
			if !errors.As(err, &we) {
				return err
			}
			imp.note(err.Error())
			imp.sum.FileErrors++
		}
	}
	return nil
}

// errHarvested: an import named a mailbox that IMAP harvest fills.
var errHarvested = errors.New("not an imported mailbox")

// target is one mailbox an import writes to, with its dedup state.
type target struct {
	mb   catalog.Mailbox
	have map[store.Key]int // copies of each content in the mailbox before the import
	seen map[store.Key]int // copies met by this import
	uid  uint32            // the next free UID
}

func (imp *importer) target(ctx context.Context, name string) (*target, error) {
	mb, err := imp.a.EnsureMailbox(ctx, imp.account, name, catalog.SourceImport, uint32(time.Now().Unix()))
	if err != nil {
		return nil, err
	}
	if mb.Source != catalog.SourceImport {
		return nil, fmt.Errorf("mailbox %q of account %q is harvested from IMAP; import into another account or --mailbox: %w", name, imp.account, errHarvested)
	}
	have, uid, err := imp.a.ImportState(ctx, mb)
	if err != nil {
		return nil, err
	}
	return &target{mb: mb, have: have, seen: map[store.Key]int{}, uid: uid}, nil
}

// mailbox imports one mailbox (or, for a Takeout, the label mailboxes its
// messages name). Reading files runs in its own goroutine, one batch ahead
// of Ingest, so disk reads overlap hashing and indexing.
func (imp *importer) mailbox(ctx context.Context, box mailfile.Mailbox, advance func(int)) error {
	a, sum := imp.a, imp.sum
	if box.Note != "" {
		imp.note(box.Path + ": " + box.Note)
	}
	targets := map[string]*target{}
	if box.Kind != mailfile.KindTakeout {
		t, err := imp.target(ctx, box.Name)
		if err != nil {
			return err
		}
		targets[box.Name] = t
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []indexer.Item, 1)
	walkErr := make(chan error, 1)
	present := 0
	go func() {
		defer close(batches)
		var batch []indexer.Item
		size := 0
		send := func() bool {
			if len(batch) == 0 {
				return true
			}
			select {
			case batches <- batch:
				batch, size = nil, 0
				return true
			case <-ctx.Done():
				return false
			}
		}
		err := box.Walk(func(m mailfile.Message) error {
			k := store.KeyOf(m.Raw)
			names := m.Mailboxes
			if box.Kind != mailfile.KindTakeout {
				names = []string{box.Name}
			}
			noted := false
			for _, name := range names {
				t, ok := targets[name]
				if !ok {
					var err error
					t, err = imp.target(ctx, name)
					if errors.Is(err, errHarvested) {
						// A Takeout label naming a harvested mailbox: that
						// label is left out, the rest of the Takeout goes on.
						imp.note(err.Error() + " (its Takeout occurrences are left out)")
						imp.mu.Lock()
						sum.FileErrors++
						imp.mu.Unlock()
					} else if err != nil {
						return err
					}
					targets[name] = t
				}
				if t == nil {
					continue
				}
				t.seen[k]++
				if t.seen[k] <= t.have[k] {
					present++
					continue
				}
				if m.Note != "" && !noted {
					imp.note(m.Source + ": " + m.Note)
					noted = true
				}
				batch = append(batch, indexer.Item{
					Account: imp.account, Mailbox: t.mb.Name, UIDValidity: t.mb.UIDValidity, UID: t.uid,
					Flags: m.Flags, InternalDate: m.InternalDate, Raw: m.Raw,
				})
				t.uid++
				size += len(m.Raw)
			}
			if len(batch) >= importBatchMessages || size >= importBatchBytes {
				if !send() {
					return ctx.Err()
				}
			}
			return nil
		}, func(err error) {
			imp.note(err.Error())
			imp.mu.Lock()
			sum.FileErrors++
			imp.mu.Unlock()
		})
		// Whatever was read before a fatal read error is still imported.
		if !send() && err == nil {
			err = ctx.Err()
		}
		walkErr <- err
	}()
	// Three stages run at once: the walker reads files, Prepare hashes, parses
	// and compresses batch n+1 while Commit makes batch n durable (mostly
	// waiting on fsync), so both cores stay busy.
	prepared := make(chan *indexer.Prepared, 1)
	committed := make(chan error, 1)
	go func() {
		var err error
		for p := range prepared {
			if err != nil {
				p.Abort()
				continue
			}
			var results []indexer.Result
			if results, err = a.Commit(ctx, p); err != nil {
				cancel()
				continue
			}
			for _, r := range results {
				switch r.Outcome {
				case indexer.Stored:
					sum.Stored++
				case indexer.Linked:
					sum.Linked++
				case indexer.Present:
					sum.Present++
				}
				if r.ParseError != "" && r.Outcome != indexer.Present {
					sum.ParseErrors++
				}
			}
			advance(len(results))
		}
		committed <- err
	}()
	var prepErr error
	for batch := range batches {
		if prepErr != nil {
			continue // drain so the walker can finish
		}
		p, err := a.Prepare(ctx, batch)
		if err != nil {
			prepErr = err
			cancel()
			continue
		}
		prepared <- p
	}
	close(prepared)
	commitErr := <-committed
	werr := <-walkErr
	// present is written by the walker goroutine, which has finished now.
	sum.Present += present
	advance(present)
	if err := errors.Join(prepErr, commitErr); err != nil {
		return err
	}
	if werr != nil && !errors.Is(werr, context.Canceled) {
		return &walkError{fmt.Errorf("import %s: %w", box.Path, werr)}
	}
	return ctx.Err()
}

// walkError is a mailbox that could not be read to its end: reported, and the
// import goes on with the next one.
type walkError struct{ err error }

func (e *walkError) Error() string { return e.err.Error() }
func (e *walkError) Unwrap() error { return e.err }
