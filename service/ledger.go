package service

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"mailvault/indexer"
	"mailvault/ledger"
)

// LedgerDir is the ledger's directory in the data directory.
const LedgerDir = "ledger"

// LedgerOptions configure an archive's ledger.
type LedgerOptions struct {
	// Signer signs checkpoints; without one leaves are still appended and
	// checked, but no checkpoint is written (and `ledger verify` says that
	// nothing then proves the ledger was not rewritten whole).
	Signer note.Signer
	// VerifierKey is Signer's public key (ledger.LoadSigner gives both).
	VerifierKey string
	// CopyDir, when set, receives a copy of every checkpoint: a directory
	// on other storage, out of reach of whoever could rewrite the data
	// directory.
	CopyDir string
	// Every and Interval: a checkpoint is due after Every new leaves or
	// Interval since the last one, whichever first (defaults 1000, 60 s).
	Every    int64
	Interval time.Duration
	// NoFollow opens the ledger as it is, appending nothing: for `ledger
	// verify`, which must judge the ledger, not repair it.
	NoFollow bool
	// TSA, when set, timestamps every checkpoint (RFC 3161), in the
	// background; a failure is logged to Logger and does not stop the
	// ledger (ledger_tsa.go).
	TSA    *ledger.TSA
	Logger *slog.Logger
}

// Ledger is an archive's tamper-evident ledger (package ledger) following
// its catalog and audit trail: every message stored, occurrence recorded,
// expunge seen, tombstone and audit entry becomes a leaf, in order.
type Ledger struct {
	Log    *ledger.Log
	f      *ledger.Follower
	verify map[string]ledger.Source // what Verify replays (f's and the audit trail)
	opts   LedgerOptions

	mu       sync.Mutex
	lastSize int64
	lastAt   time.Time

	ts stamper // the checkpoints' timestamps (ledger_tsa.go)
}

// OpenLedger opens (creating when needed) the ledger of archive a, following
// a's catalog and, when users is not nil, its audit trail. It appends what
// is not yet in it before returning.
func OpenLedger(ctx context.Context, a *indexer.Archive, users *Users, opts LedgerOptions) (*Ledger, error) {
	if opts.Every <= 0 {
		opts.Every = 1000
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	log, err := ledger.Open(filepath.Join(a.Dir(), LedgerDir))
	if err != nil {
		return nil, err
	}
	src := map[string]ledger.Source{}
	for _, k := range []string{ledger.KindMessage, ledger.KindOccurrence, ledger.KindExpunge, ledger.KindTombstone} {
		src[k] = a
	}
	if users != nil {
		src[ledger.KindAudit] = users
		src[ledger.KindState] = states{users, a}
	}
	// The follower follows the catalog only: audit entries are appended by
	// their writer (Users.Audit), so that a row put into the audit table
	// by anything else is never ledgered as if it were true. Verify
	// replays both.
	follow := map[string]ledger.Source{}
	for k, v := range src {
		if !ledger.Direct[k] {
			follow[k] = v
		}
	}
	l := &Ledger{Log: log, f: &ledger.Follower{Log: log, Sources: follow}, verify: src, opts: opts}
	if b, err := os.ReadFile(filepath.Join(log.Dir(), ledger.Latest)); err == nil && opts.Signer != nil {
		if vk, err := l.VerifierKey(); err == nil {
			if c, err := ledger.OpenCheckpoint(b, vk); err == nil {
				l.lastSize = c.Size
			}
		}
	}
	l.lastAt = time.Now()
	if opts.NoFollow {
		return l, nil
	}
	if err := l.Follow(ctx, true); err != nil {
		log.Close()
		return nil, err
	}
	return l, nil
}

// Close waits for a timestamp being requested and closes the ledger's files.
func (l *Ledger) Close() error {
	l.WaitTimestamp()
	return l.Log.Close()
}

// Sources are what ledger.Verify replays, by kind: the catalog's and the
// audit trail's rows.
func (l *Ledger) Sources() map[string]ledger.Source { return l.verify }

// CopyDir is where checkpoints are copied, if anywhere.
func (l *Ledger) CopyDir() string { return l.opts.CopyDir }

// Signs reports whether this ledger writes checkpoints.
func (l *Ledger) Signs() bool { return l.opts.Signer != nil }

// VerifierKey is the public key of the checkpoints' signer.
func (l *Ledger) VerifierKey() (string, error) {
	if l.opts.Signer == nil {
		return "", errors.New("ledger: no signing key configured (mailvault key init; ledger_key_file)")
	}
	return l.opts.VerifierKey, nil
}

// Follow appends every row not yet in the ledger (of kinds, or all), then
// writes a checkpoint when one is due.
func (l *Ledger) Follow(ctx context.Context, sync bool, kinds ...string) error {
	if _, err := l.f.Follow(ctx, sync, kinds...); err != nil {
		return err
	}
	l.mu.Lock()
	due := l.opts.Signer != nil && l.Log.Size() > l.lastSize &&
		(l.Log.Size()-l.lastSize >= l.opts.Every || time.Since(l.lastAt) >= l.opts.Interval)
	l.mu.Unlock()
	if due {
		_, err := l.Checkpoint()
		return err
	}
	return nil
}

// Checkpoint writes a signed checkpoint of the ledger as it is now.
func (l *Ledger) Checkpoint() (ledger.Checkpoint, error) {
	if l.opts.Signer == nil {
		return ledger.Checkpoint{}, errors.New("ledger: no signing key configured, so no checkpoint can be written (mailvault key init)")
	}
	c, err := l.Log.WriteCheckpoint(l.opts.Signer, l.opts.CopyDir)
	if err != nil {
		return c, err
	}
	l.mu.Lock()
	l.lastSize, l.lastAt = c.Size, time.Now()
	l.mu.Unlock()
	l.stampLater(c)
	return c, nil
}

// Settle follows every row, synced, and signs a checkpoint when there are
// leaves no checkpoint holds yet: what a one-shot command does before it
// exits, and serve when it stops.
func (l *Ledger) Settle(ctx context.Context) error {
	if err := l.Follow(ctx, true); err != nil {
		return err
	}
	l.mu.Lock()
	due := l.opts.Signer != nil && l.Log.Size() > l.lastSize
	l.mu.Unlock()
	if due {
		if _, err := l.Checkpoint(); err != nil {
			return err
		}
	}
	l.WaitTimestamp()
	return nil
}

// Run follows the catalog every interval until ctx ends (serve), and writes
// a last checkpoint then.
func (l *Ledger) Run(ctx context.Context, every time.Duration, logf func(err error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := l.Settle(context.Background()); err != nil {
				logf(err)
			}
			return
		case <-t.C:
			if err := l.Follow(ctx, true); err != nil && ctx.Err() == nil {
				logf(err)
			}
		}
	}
}

// Prove makes the proof bundle of the message sha256: its leaf, the
// inclusion proof and the latest signed checkpoint (a new one first when
// the latest does not hold the leaf yet).
func (l *Ledger) Prove(ctx context.Context, a *indexer.Archive, sha256hex string) (*ledger.Bundle, error) {
	id, err := a.MessageLeafID(ctx, sha256hex)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %s: %w", sha256hex, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := l.Follow(ctx, true); err != nil {
		return nil, err
	}
	idx, err := l.Log.LeafByID(ledger.KindMessage, id)
	if err != nil {
		return nil, err
	}
	vk, err := l.VerifierKey()
	if err != nil {
		return nil, err
	}
	signed, err := os.ReadFile(filepath.Join(l.Log.Dir(), ledger.Latest))
	var c ledger.Checkpoint
	if err == nil {
		c, err = ledger.OpenCheckpoint(signed, vk)
	}
	if err != nil || c.Size <= idx {
		if _, err := l.Checkpoint(); err != nil {
			return nil, err
		}
		if signed, err = os.ReadFile(filepath.Join(l.Log.Dir(), ledger.Latest)); err != nil {
			return nil, err
		}
	}
	l.WaitTimestamp() // the bundle carries the checkpoint's token when it has one
	return l.Log.Prove(idx, signed, vk)
}

// LedgerRows gives the audit trail's rows as leaves (ledger.Source).
func (s *Users) LedgerRows(ctx context.Context, kind string, after int64, fn func(ledger.Leaf) error) error {
	if kind != ledger.KindAudit {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, user, action, detail, remote FROM audit WHERE id > ? ORDER BY id`, after)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		f := ledger.Leaf{Kind: ledger.KindAudit}
		if err := rows.Scan(&f.ID, &f.At, &f.User, &f.Action, &f.Detail, &f.Remote); err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Ledger is the service's ledger, nil when it has none.
func (s *Service) Ledger() *Ledger { return s.opts.Ledger }

// ledgerProofs are an export's proofs: one checkpoint, signed after every
// message was ledgered, and each message's bundle against it. A message's
// leaf is found by its catalog row id (Log.LeafByID), so an export reads
// the leaves of the messages it exports, not the whole log.
type ledgerProofs struct {
	l      *Ledger
	a      *indexer.Archive
	signed []byte
	vkey   string
}

// exportProofs settles the ledger (every row in it, a checkpoint of it),
// for an export's PROOF/ folder.
func (l *Ledger) exportProofs(ctx context.Context, a *indexer.Archive) (*ledgerProofs, error) {
	if err := l.Follow(ctx, true); err != nil {
		return nil, err
	}
	if _, err := l.Checkpoint(); err != nil {
		return nil, err
	}
	l.WaitTimestamp()
	vk, err := l.VerifierKey()
	if err != nil {
		return nil, err
	}
	signed, err := os.ReadFile(filepath.Join(l.Log.Dir(), ledger.Latest))
	if err != nil {
		return nil, err
	}
	return &ledgerProofs{l: l, a: a, signed: signed, vkey: vk}, nil
}

func (p *ledgerProofs) Checkpoint() []byte { return p.signed }

func (p *ledgerProofs) Bundle(sha string) ([]byte, error) {
	id, err := p.a.MessageLeafID(context.Background(), sha)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", sha, err)
	}
	i, err := p.l.Log.LeafByID(ledger.KindMessage, id)
	if err != nil {
		return nil, err
	}
	b, err := p.l.Log.Prove(i, p.signed, p.vkey)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(b, "", "  ")
}

// states gives Verify the digests of every table whose state is ledgered.
type states []ledger.StateSource

func (states) LedgerRows(context.Context, string, int64, func(ledger.Leaf) error) error { return nil }

func (ss states) LedgerStates(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range ss {
		m, err := s.LedgerStates(ctx)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}

// ledgerHolds appends the holds' new state to the ledger after a change
// (create, release): a hold released or edited by SQL then shows in ledger
// verify. Two processes changing holds in the same instant could append
// their states in the other order than they committed; verify would then
// name the holds as changed (a false alarm, never a miss).
func (s *Service) ledgerHolds(ctx context.Context) error {
	l := s.opts.Ledger
	if l == nil {
		return nil
	}
	st, err := s.a.LedgerStates(ctx)
	if err != nil {
		return fmt.Errorf("ledger: the holds' state: %w", err)
	}
	leaf := ledger.Leaf{Kind: ledger.KindState, Name: indexer.HoldsState, SHA256: st[indexer.HoldsState], At: time.Now().UTC().Format(time.RFC3339Nano)}
	if err := l.Log.CommitAndAppend(func() error { return nil }, leaf); err != nil {
		return fmt.Errorf("ledger: the holds' state: %w", err)
	}
	return nil
}
