package indexer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mailvault/indexer/catalog"
)

// gapCatalog is the catalog's gap-check half (catalog/gaps.go). The archive
// asks its catalog for it by assertion: a catalog without it (another
// backend) answers ErrNoGapChecks, and the harvesters do no gap checks.
type gapCatalog interface {
	HeldUIDs(ctx context.Context, mailboxID int64, uidvalidity uint32, fn func(uid uint32, held int) error) error
	RecordGapCheck(ctx context.Context, g catalog.GapCheck) (catalog.GapCheck, error)
	LastGapCheck(ctx context.Context, account, name string) (time.Time, error)
	GapChecks(ctx context.Context) ([]catalog.GapCheck, error)
}

// ErrNoGapChecks: the archive's catalog keeps no gap checks.
var ErrNoGapChecks = errors.New("this catalog keeps no gap checks")

func (a *Archive) gapCatalog() (gapCatalog, error) {
	g, ok := a.cat.(gapCatalog)
	if !ok {
		return nil, ErrNoGapChecks
	}
	return g, nil
}

// HeldUIDs calls fn with every UID of a harvested mailbox's epoch the
// archive holds, in ascending order (catalog.HeldUIDs). A mailbox not in
// the catalog holds nothing.
func (a *Archive) HeldUIDs(ctx context.Context, account, mailbox string, uidvalidity uint32, fn func(uid uint32, held int) error) error {
	g, err := a.gapCatalog()
	if err != nil {
		return err
	}
	mb, err := a.cat.Mailbox(ctx, account, mailbox)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return g.HeldUIDs(ctx, mb.ID, uidvalidity, fn)
}

// RecordGapCheck keeps r as its mailbox's last gap check, with the
// epoch's indexed count filled in.
func (a *Archive) RecordGapCheck(ctx context.Context, r catalog.GapCheck) (catalog.GapCheck, error) {
	g, err := a.gapCatalog()
	if err != nil {
		return r, err
	}
	return g.RecordGapCheck(ctx, r)
}

// LastGapCheck returns when a mailbox was last gap-checked (zero: never).
func (a *Archive) LastGapCheck(ctx context.Context, account, mailbox string) (time.Time, error) {
	g, err := a.gapCatalog()
	if err != nil {
		return time.Time{}, err
	}
	return g.LastGapCheck(ctx, account, mailbox)
}

// GapChecks returns the last gap check of every mailbox checked.
func (a *Archive) GapChecks(ctx context.Context) ([]catalog.GapCheck, error) {
	g, err := a.gapCatalog()
	if err != nil {
		return nil, err
	}
	return g.GapChecks(ctx)
}

// GapChecksOf is GapChecks of the archive in dir, read without taking the
// archive (as Status is).
func GapChecksOf(ctx context.Context, dir string) ([]catalog.GapCheck, error) {
	path := filepath.Join(dir, "catalog.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("gap checks: no archive in %s", dir)
	}
	cat, err := catalog.OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	return cat.GapChecks(ctx)
}
