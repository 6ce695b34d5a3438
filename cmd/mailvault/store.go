package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"mailvault/indexer"
	"mailvault/indexer/store"
)

// Audit actions of `mailvault store` (the audit trail takes any action name;
// these are the ones the store commands write).
const (
	actionStoreInit    = "store-init"
	actionStoreMigrate = "store-migrate"
	actionStoreCompact = "store-compact"
)

// runStore is `mailvault store init|migrate|compact`: the layout of the
// store of record. Each runs offline (serve must be stopped: a migration or
// compaction owns the archive) and is audited before it starts, failing
// closed when the audit trail cannot be written.
func runStore(ctx context.Context, e *env, args []string) error {
	var data, to, layout string
	var asJSON, keepOld bool
	fs := newFlags(e, "store", &data)
	fs.StringVar(&to, "to", "", "with migrate: the layout to move the archive to, `pack` or files")
	fs.StringVar(&layout, "layout", indexer.LayoutPack, "with init: the `layout` of the new archive, pack or files")
	fs.BoolVar(&keepOld, "keep-old", false, "with migrate: keep the old layout's files after the switch (they are no longer read)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as one JSON object")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 || (words[0] != "init" && words[0] != "migrate" && words[0] != "compact") {
		fmt.Fprintln(e.stderr, "mailvault store: want init, migrate or compact")
		fs.Usage()
		return errUsage
	}
	if _, err := dialDaemon(ctx, data); err == nil {
		return &exitError{code: 2, err: fmt.Errorf("store %s: serve is running on %s: stop it first (the store's layout is changed offline)", words[0], data)}
	}
	print := func(v any, text string) {
		if asJSON {
			json.NewEncoder(e.stdout).Encode(v)
		} else {
			fmt.Fprintln(e.stdout, text)
		}
	}
	switch words[0] {
	case "init":
		if layout != indexer.LayoutPack && layout != indexer.LayoutFiles {
			return &exitError{code: 2, err: fmt.Errorf("store init: --layout %q: want pack or files", layout)}
		}
		if _, err := os.Stat(filepath.Join(data, "catalog.db")); err == nil {
			return &exitError{code: 2, err: fmt.Errorf("store init: %s holds an archive already (its layout is kept; `mailvault store migrate --to %s` changes it)", data, layout)}
		}
		if err := store.MkdirSecure(data); err != nil {
			return fmt.Errorf("store init: %w", err)
		}
		if err := auditLocal(ctx, data, actionStoreInit, "new archive in "+data+", store layout "+layout); err != nil {
			return err
		}
		a, err := indexer.Open(data, &indexer.Options{Logger: e.log, Layout: layout})
		if err != nil {
			return err
		}
		got := a.Layout()
		if err := a.Close(); err != nil {
			return err
		}
		print(map[string]string{"data": data, "layout": got}, fmt.Sprintf("new archive in %s, store layout %s", data, got))
		return nil

	case "migrate":
		if to != indexer.LayoutPack && to != indexer.LayoutFiles {
			return &exitError{code: 2, err: fmt.Errorf("store migrate: --to %q: want pack or files", to)}
		}
		if _, err := os.Stat(filepath.Join(data, "catalog.db")); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("store migrate: no archive in %s (check --data)", data)}
		}
		if err := auditLocal(ctx, data, actionStoreMigrate, "offline, every blob in "+data+" to layout "+to); err != nil {
			return err
		}
		a, err := indexer.Open(data, &indexer.Options{Logger: e.log, StoreMigration: true})
		if err != nil {
			return err
		}
		prog := newProgress(e.stderr, "migrating blobs to "+to)
		rep, err := a.MigrateStore(ctx, to, keepOld, prog.update)
		prog.done()
		if cerr := a.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%w: run the same command again to resume (the archive keeps its %s layout until then)", err, rep.From)
			}
			return err
		}
		text := fmt.Sprintf("store migrated from %s to %s: %d blobs verified (%d copied by this run), %.1f MB, %.1f s", rep.From, rep.To, rep.Blobs, rep.Copied, float64(rep.Bytes)/1e6, rep.Seconds)
		if !rep.Removed {
			text += "; the old layout's files were kept"
		}
		print(rep, text)
		return nil

	default: // compact
		if _, err := os.Stat(filepath.Join(data, "catalog.db")); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("store compact: no archive in %s (check --data)", data)}
		}
		if err := auditLocal(ctx, data, actionStoreCompact, "offline, the pack segments of "+data); err != nil {
			return err
		}
		a, err := indexer.Open(data, &indexer.Options{Logger: e.log})
		if err != nil {
			return err
		}
		rep, err := a.CompactStore(ctx)
		if cerr := a.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		text := fmt.Sprintf("store compacted: %d segments rewritten, %d blobs moved, %d dead records dropped, %.1f MB reclaimed", rep.Segments, rep.Moved, rep.Dropped, float64(rep.Reclaimed)/1e6)
		if rep.Skipped > 0 {
			text += fmt.Sprintf("; %d segments skipped (records in flight): run it again", rep.Skipped)
		}
		print(rep, text)
		return nil
	}
}
