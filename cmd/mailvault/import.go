package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/mailfile"
	"mailvault/indexer/store"
)

// importSummary is what an import did; printed as text or, with --json, as one object.
type importSummary struct {
	Stored      int     `json:"stored"`          // new content: blob + message + occurrence
	Linked      int     `json:"linked"`          // known content in a new place: occurrence only
	Present     int     `json:"already_present"` // skipped: already in the archive
	ParseErrors int     `json:"parse_errors"`    // stored, but flagged with a parse error
	FileErrors  int     `json:"file_errors"`     // files or paths that could not be read
	Seconds     float64 `json:"seconds"`
}

func (s importSummary) imported() int { return s.Stored + s.Linked }

// importBatch caps the messages and raw bytes handed to one Ingest call.
const (
	importBatchMessages = 256
	importBatchBytes    = 16 << 20
)

func runImport(ctx context.Context, e *env, args []string) error {
	var data, account, mailbox string
	var asJSON bool
	fs := newFlags(e, "import", &data)
	fs.StringVar(&account, "account", "", "account `NAME` the mail belongs to (required)")
	fs.StringVar(&mailbox, "mailbox", "", "mailbox `NAME` for a single Maildir or mbox; a prefix for a Maildir++ tree")
	fs.BoolVar(&asJSON, "json", false, "print the summary as one JSON object")
	paths, err := parse(fs, args)
	if err != nil {
		return err
	}
	if account == "" || len(paths) == 0 {
		fmt.Fprintln(e.stderr, "mailvault import: --account and at least one PATH are required")
		fs.Usage()
		return errUsage
	}

	// Find every mailbox first, so progress can show a total. A bad path is
	// reported and skipped; the other paths are still imported.
	var sum importSummary
	var boxes []mailfile.Mailbox
	total := 0
	for _, p := range paths {
		found, err := mailfile.Discover(p, mailbox)
		if err != nil {
			fmt.Fprintf(e.stderr, "mailvault import: %v\n", err)
			sum.FileErrors++
			continue
		}
		for _, mb := range found {
			n, err := mailfile.Count(mb)
			if err != nil {
				fmt.Fprintf(e.stderr, "mailvault import: %v\n", err)
			}
			total += n
		}
		boxes = append(boxes, found...)
	}

	limitMemory()
	a, err := indexer.Open(data, &indexer.Options{Logger: e.log})
	if err != nil {
		return err
	}
	start := time.Now()
	err = importAll(ctx, e, a, account, boxes, total, &sum)
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	sum.Seconds = time.Since(start).Seconds()
	if asJSON {
		json.NewEncoder(e.stdout).Encode(sum)
	} else {
		rate := 0.0
		if sum.Seconds > 0 {
			rate = float64(sum.imported()+sum.Present) / sum.Seconds
		}
		fmt.Fprintf(e.stdout, "imported %d (%d new, %d copies of known mail), already present %d, parse errors %d, unreadable %d; %.1fs, %.0f msg/s\n",
			sum.imported(), sum.Stored, sum.Linked, sum.Present, sum.ParseErrors, sum.FileErrors, sum.Seconds, rate)
	}
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130, err: errors.New("interrupted; everything imported so far is kept: run the same import again to resume")}
	}
	if err != nil {
		return err
	}
	if sum.FileErrors > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d unreadable (files or paths, listed above); everything else was imported", sum.FileErrors)}
	}
	return nil
}

// bulkMemoryLimit is the Go heap's soft limit for bulk commands (import,
// reindex) unless GOMEMLIMIT says otherwise. Bleve's batches and merges make
// garbage fast; without a limit the heap grows to twice the live data before
// a collection. With it, an import of any size stays near 250-300 MB of RSS
// for a little more GC work (measured in docs/benchmarks.md).
const bulkMemoryLimit = 200 << 20

func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bulkMemoryLimit)
	}
}

func importAll(ctx context.Context, e *env, a *indexer.Archive, account string, boxes []mailfile.Mailbox, total int, sum *importSummary) error {
	// Finish indexing whatever an interrupted run left behind. A message whose
	// blob is unreadable stays unindexed (verify names it); importing goes on.
	if err := a.CatchUp(ctx, nil); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(e.stderr, "mailvault import: %v\n", err)
	}
	prog := newProgress(e.stderr, "importing")
	defer prog.done()
	done := 0
	for _, box := range boxes {
		if err := importMailbox(ctx, e, a, account, box, sum, func(n int) {
			done += n
			prog.update(done, max(total, done))
		}); err != nil {
			var we *walkError
			if !errors.As(err, &we) {
				return err
			}
			fmt.Fprintf(e.stderr, "mailvault import: %v\n", err)
			sum.FileErrors++
		}
	}
	if err := a.Flush(ctx); err != nil {
		return err
	}
	if sum.imported() > 0 {
		return a.Compact(ctx)
	}
	return nil
}

// importMailbox imports one mailbox. Reading files runs in its own goroutine,
// one batch ahead of Ingest, so disk reads overlap hashing and indexing.
func importMailbox(ctx context.Context, e *env, a *indexer.Archive, account string, box mailfile.Mailbox, sum *importSummary, advance func(int)) error {
	mb, err := a.EnsureMailbox(ctx, account, box.Name, catalog.SourceImport, uint32(time.Now().Unix()))
	if err != nil {
		return err
	}
	if mb.Source != catalog.SourceImport {
		return fmt.Errorf("mailbox %q of account %q is harvested from IMAP; import into another account or --mailbox", box.Name, account)
	}
	have, err := a.Catalog().ContentCounts(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		return err
	}
	maxUID, err := a.Catalog().MaxUID(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		return err
	}
	uid := max(mb.UIDNext, maxUID+1)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []indexer.Item, 1)
	walkErr := make(chan error, 1)
	seen := map[store.Key]int{}
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
			seen[k]++
			if seen[k] <= have[k] {
				present++
				return nil
			}
			if m.Note != "" {
				fmt.Fprintf(e.stderr, "mailvault import: %s: %s\n", m.Source, m.Note)
			}
			batch = append(batch, indexer.Item{
				Account: account, Mailbox: mb.Name, UIDValidity: mb.UIDValidity, UID: uid,
				Flags: m.Flags, InternalDate: m.InternalDate, Raw: m.Raw,
			})
			uid++
			size += len(m.Raw)
			if len(batch) >= importBatchMessages || size >= importBatchBytes {
				if !send() {
					return ctx.Err()
				}
			}
			return nil
		}, func(err error) {
			fmt.Fprintf(e.stderr, "mailvault import: %v\n", err)
			sum.FileErrors++
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
