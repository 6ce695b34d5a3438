package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/mailfile"
	"mailvault/service"
)

func runImport(ctx context.Context, e *env, args []string) error {
	var data, account, mailbox string
	var asJSON, takeout, noTakeout, noExtract bool
	var pstTimeout time.Duration
	fs := newFlags(e, "import", &data)
	fs.StringVar(&account, "account", "", "account `NAME` the mail belongs to (required)")
	fs.StringVar(&mailbox, "mailbox", "", "mailbox `NAME` for a single Maildir, mbox or message; a prefix for a tree, a Takeout's labels, a PST's folders")
	fs.BoolVar(&takeout, "takeout", false, "read every mbox as a Gmail Takeout (X-Gmail-Labels), also when its first message has no labels")
	fs.BoolVar(&noTakeout, "no-takeout", false, "read every mbox as one plain mailbox, even a Gmail Takeout")
	fs.DurationVar(&pstTimeout, "pst-timeout", mailfile.DefaultPSTTimeout, "time limit `DURATION` for each readpst run converting a PST/OST file")
	fs.BoolVar(&noExtract, "no-extract", false, "leave the attachments' text extraction queued (serve, or the next import, does it) instead of waiting for it")
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
	if takeout && noTakeout {
		fmt.Fprintln(e.stderr, "mailvault import: --takeout and --no-takeout exclude each other")
		return errUsage
	}
	if pstTimeout <= 0 {
		fmt.Fprintln(e.stderr, "mailvault import: --pst-timeout must be positive")
		return errUsage
	}
	req := service.ImportRequest{Account: account, Mailbox: mailbox, Takeout: takeout, NoTakeout: noTakeout, PSTTimeoutSeconds: int(pstTimeout.Seconds())}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		req.Paths = append(req.Paths, abs)
	}

	prog := newProgress(e.stderr, "importing")
	var sum *service.ImportSummary
	if d, derr := dialDaemon(ctx, data); derr == nil {
		// serve holds the archive: it runs the import as a job, and this
		// command follows it. Ctrl-C cancels the job; what it imported is
		// kept, and the same import run again resumes.
		j, jerr := runDaemonJob(ctx, d, jobStart{Kind: service.JobImport, Import: &req}, prog)
		sum = &service.ImportSummary{}
		if len(j.Result) > 0 {
			if uerr := json.Unmarshal(j.Result, sum); uerr != nil && jerr == nil {
				jerr = fmt.Errorf("import: bad summary from serve: %w", uerr)
			}
		}
		for _, n := range sum.Notes {
			fmt.Fprintf(e.stderr, "mailvault import: %s\n", n)
		}
		err = jerr
	} else {
		limitImportMemory(req.Paths)
		svc, closeFn, oerr := openLocalWith(e, data, indexer.Options{NoExtract: noExtract})
		if oerr != nil {
			return oerr
		}
		// Recorded before a file is read (fail closed), as the daemon's
		// import job is.
		if aerr := svc.Audit(ctx, service.Operator(), service.ActionImport, fmt.Sprintf("offline, account %s: %s", req.Account, strings.Join(req.Paths, " "))); aerr != nil {
			closeFn()
			return aerr
		}
		sum, err = service.Import(ctx, svc.Archive(), req, prog.update, func(note string) {
			prog.done()
			fmt.Fprintf(e.stderr, "mailvault import: %s\n", note)
		})
		prog.done()
		if err == nil && noExtract {
			if c, cerr := svc.Archive().ExtractCounts(ctx); cerr == nil && c.Pending > 0 {
				fmt.Fprintf(e.stderr, "mailvault import: attachment text of %d messages left queued (--no-extract): serve or the next import extracts it\n", c.Pending)
			}
		} else if err == nil {
			// The import is done when its mail is searchable in full: the
			// attachments' text too (the extractor works behind ingest).
			xp := newProgress(e.stderr, "extracting attachment text (messages)")
			err = svc.Archive().WaitExtracts(ctx, xp.update)
			xp.done()
		}
		closeFn()
	}
	if sum != nil {
		if asJSON {
			out := *sum
			out.Notes = nil // already on stderr
			json.NewEncoder(e.stdout).Encode(out)
		} else {
			rate := 0.0
			if sum.Seconds > 0 {
				rate = float64(sum.Imported()+sum.Present) / sum.Seconds
			}
			fmt.Fprintf(e.stdout, "imported %d (%d new, %d copies of known mail), already present %d, parse errors %d, unreadable %d; %.1fs, %.0f msg/s\n",
				sum.Imported(), sum.Stored, sum.Linked, sum.Present, sum.ParseErrors, sum.FileErrors, sum.Seconds, rate)
		}
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
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
// a collection. It was 200 MB, which kept an import near 250-300 MB of RSS
// but under the live heap of a full pipeline (three 16 MiB import batches,
// the 96 MiB index queue, a 1,000-document Bleve batch being analysed and a
// merge), so the collector ran nearly without pause: a third of the import's
// CPU was GC at 20,000 messages (issue 14, docs/benchmarks.md "Scale"). At
// 512 MiB the import takes about 30 % less CPU; its RSS peaks near 500 MB at
// 20,000 messages and at 869 MB at 200,000 (the heap plus the index segments
// a merge maps, which maxSegmentDocs caps).
// What bounds memory is the structures (those queues and batches, and the
// index segment cap, maxSegmentDocs in indexer/mapping.go), not this limit:
// TestImportScale runs an import under a hard cap and checks its VmHWM.
const bulkMemoryLimit = 512 << 20

func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bulkMemoryLimit)
	}
}

// An import of less than smallImportBytes of mail gets smallImportLimit
// instead of bulkMemoryLimit, so that its peak RSS stays within the 300 MB
// the foundation issue set for the corpus. Measured 2026-12-01 (quiet
// machine, `mailvault import`, GNU time): the SpamAssassin corpus (33 MB)
// peaked at 325–424 MB under 512 MiB and at 237–238 MB under 200 MiB, in
// 6.5–8.4 s against 7.5–7.8 s; the corpus with one message in ten carrying
// a PDF/Office attachment (49 MB) at 269–331 MB against 247–257 MB, in
// 7.2–9.4 s against 7.2–7.4 s. A small import is a few batches: the
// collector's extra work under the lower limit is lost in the run-to-run
// spread. 64 MiB of input keeps the 20,000-message set of TestImportScale
// (about 140 MB) and everything larger on the bulk limit issue 14 measured.
const (
	smallImportBytes = 64 << 20
	smallImportLimit = 200 << 20
)

// limitImportMemory is limitMemory for an import of paths: the lower limit
// when they hold less than smallImportBytes (the walk stops as soon as they
// hold more).
func limitImportMemory(paths []string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	var n int64
	stop := errors.New("enough")
	for _, p := range paths {
		filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
			if n >= smallImportBytes {
				return stop
			}
			return nil
		})
		if n >= smallImportBytes {
			break
		}
	}
	if n < smallImportBytes {
		debug.SetMemoryLimit(smallImportLimit)
		return
	}
	debug.SetMemoryLimit(bulkMemoryLimit)
}
