package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"mailvault/indexer"
	"mailvault/service"
)

// `mailvault recover`: catalog the mail the catalog lost.
//
// It runs offline only. A running serve holds the data directory, and the
// service has no recover job (recover is rare, done by an operator after
// `verify` reported blob-unreferenced, and wants the archive to itself so
// that what it reports is the whole story), so with a serve answering on
// <data>/mailvault.sock it refuses and says to stop serve first. It opens
// the archive writable the way the offline reindex does.

func init() {
	helpText["recover"] = `A blob that no catalog row references is mail the archive holds but cannot
show: the catalog lost it (a truncated catalog.db-wal, an older catalog.db
restored, a disk fault), or a crash fell between its blob write and its
catalog commit. ` + "`mailvault verify`" + ` reports each as blob-unreferenced, and
reindex refuses to run while any exists (a rebuilt index would drop the
last trace of them).

recover catalogs every such blob from what the blob itself holds (its exact
bytes, headers and parse), in account ` + indexer.RecoveredAccount + `, mailbox ` + indexer.LostAndFound + `:
where it lived is unknown, and says so. The account name is reserved. Find
them with ` + "`mailvault search account:" + indexer.RecoveredAccount + " ...`" + ` and ` + "`mailvault status`" + `; a message
its server delivers again is linked in its real place too. Blobs whose
bytes are not their key's message are left alone and listed (exit 1).
recover runs SQLite's quick_check first and refuses a damaged catalog.

Stop serve first: recover works on the archive alone. Run it again at any
time; it does nothing when nothing is lost.
`
}

func runRecover(ctx context.Context, e *env, args []string) error {
	var data string
	var asJSON bool
	fs := newFlags(e, "recover", &data)
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if _, err := dialDaemon(ctx, data); err == nil {
		return &exitError{code: 1, err: fmt.Errorf("a serve is running on %s: stop it first (recover needs the archive to itself), then run `mailvault recover` again", data)}
	}
	if _, err := os.Stat(filepath.Join(data, "catalog.db")); err != nil {
		return fmt.Errorf("no archive in %s to recover (check --data)", data)
	}
	if err := auditLocal(ctx, data, service.ActionRecover, "offline, "+data); err != nil {
		return err
	}
	limitMemory()
	a, err := indexer.Open(data, &indexer.Options{Logger: e.log})
	if err != nil {
		return err
	}
	prog := newProgress(e.stderr, "recovering")
	rep, err := a.Recover(ctx, prog.update)
	prog.done()
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.Encode(rep)
	} else {
		for _, m := range rep.Recovered {
			fmt.Fprintf(e.stdout, "recovered %s as %s/%s UID %d: %q\n", m.SHA256, rep.Account, rep.Mailbox, m.UID, m.Subject)
		}
		for _, p := range rep.Failed {
			fmt.Fprintf(e.stdout, "not recovered: %s\n", p)
		}
		fmt.Fprintf(e.stdout, "%d unreferenced blobs: %d recovered into %s/%s (`mailvault search account:%s` finds them), %d cataloged meanwhile, %d not recoverable\n",
			rep.Unreferenced, len(rep.Recovered), rep.Account, rep.Mailbox, rep.Account, rep.Linked, len(rep.Failed))
	}
	if len(rep.Failed) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d blobs could not be recovered (listed above; `mailvault verify` reports them too)", len(rep.Failed))}
	}
	return nil
}
