package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"mailvault/indexer/store"
)

// CompactReport says what Compact did.
type CompactReport struct {
	Segments  int   `json:"segments"`  // segments rewritten (or removed, when nothing in them was live)
	Moved     int   `json:"moved"`     // live blobs copied to new segments
	Dropped   int   `json:"dropped"`   // records left behind: deleted, duplicate or never published
	Reclaimed int64 `json:"reclaimed"` // bytes freed
	Skipped   int   `json:"skipped"`   // segments left for later: records of them are still being published
}

// Compact rewrites every sealed segment that holds deleted blobs, or whose
// live bytes are less than half its size, without its dead records. When
// the active segment holds deleted blobs it is sealed first, so that after
// Compact no deleted blob's bytes remain (unless Skipped > 0: records staged
// in that segment were still in flight; run it again).
//
// Each segment is one crash-safe step (the package doc): target recorded as
// "new" → written and fsynced → index switched and source marked "retired"
// in one transaction → source removed → its row dropped. Open finishes or
// undoes an interrupted step. Readers go on meanwhile: they see the old
// place or the new, never a removed file.
func (s *Store) Compact(ctx context.Context) (CompactReport, error) {
	var rep CompactReport
	if s.opts.ReadOnly {
		return rep, errors.New("compact: the pack store is open read-only")
	}
	s.delMu.Lock()
	defer s.delMu.Unlock()
	s.mu.Lock()
	var activeDeleted int64
	err := s.db.QueryRowContext(ctx, `SELECT deleted FROM segments WHERE id = ?`, s.active).Scan(&activeDeleted)
	if err == nil && activeDeleted > 0 {
		err = s.rollLocked()
	}
	s.mu.Unlock()
	if err != nil {
		return rep, fmt.Errorf("compact: seal the active segment: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM segments WHERE state = 'sealed' AND (deleted > 0 OR live * 2 < size) ORDER BY id`)
	if err != nil {
		return rep, fmt.Errorf("compact: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return rep, fmt.Errorf("compact: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("compact: %w", err)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		s.mu.Lock()
		busy := s.inFlight[id] > 0
		s.mu.Unlock()
		if busy {
			rep.Skipped++
			continue
		}
		if err := s.compactSegment(ctx, id, &rep); err != nil {
			return rep, fmt.Errorf("compact segment %d: %w", id, err)
		}
	}
	return rep, nil
}

func (s *Store) hook(step string) error {
	if s.opts.compactHook != nil {
		return s.opts.compactHook(step)
	}
	return nil
}

// compactSegment rewrites one sealed segment (under delMu).
func (s *Store) compactSegment(ctx context.Context, old int64, rep *CompactReport) error {
	var size, live int64
	if err := s.db.QueryRowContext(ctx, `SELECT size, live FROM segments WHERE id = ?`, old).Scan(&size, &live); err != nil {
		return err
	}
	src, err := os.Open(s.segPath(old))
	if err != nil {
		return err
	}
	defer src.Close()

	type move struct {
		k                store.Key
		oldOff, off, len int64
	}
	var moves []move
	var nid int64
	var dst *os.File
	var dstEnd int64
	// Records are read one at a time (memory: one record), checked, and
	// copied when the index still points at exactly this one.
	r := io.NewSectionReader(src, 0, size)
	hdr := make([]byte, headerLen)
	for off := int64(0); off < size; {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return fmt.Errorf("%w: record at %d: %v (run `mailvault verify`; nothing was changed)", store.ErrCorrupt, off, err)
		}
		h, err := parseHeader(hdr)
		if err != nil {
			return fmt.Errorf("record at %d: %w (nothing was changed)", off, err)
		}
		n := int64(headerLen + h.clen)
		var seg, at int64
		err = s.db.QueryRowContext(ctx, `SELECT seg, off FROM blobs WHERE key = ?`, h.key[:]).Scan(&seg, &at)
		if err != nil || seg != old || at != off {
			rep.Dropped++
			off += n
			continue
		}
		rec := make([]byte, n)
		if _, err := r.ReadAt(rec, off); err != nil {
			return fmt.Errorf("%w: record at %d: %v (nothing was changed)", store.ErrCorrupt, off, err)
		}
		if _, _, err := parseRecord(rec); err != nil {
			return fmt.Errorf("record at %d: %w (nothing was changed)", off, err)
		}
		if dst == nil {
			if nid, err = s.newSegment("new"); err != nil {
				return err
			}
			if err := s.hook("target created"); err != nil {
				return err
			}
			if dst, err = os.OpenFile(s.segPath(nid), os.O_WRONLY, store.FileMode); err != nil {
				return err
			}
			defer dst.Close()
		}
		if _, err := dst.WriteAt(rec, dstEnd); err != nil {
			return err
		}
		moves = append(moves, move{h.key, off, dstEnd, n})
		dstEnd += n
		off += n
	}
	if dstEnd != live {
		// The index's account of live bytes and the records it points at
		// disagree: refuse to drop anything on that basis.
		if dst != nil {
			dst.Close()
			os.Remove(s.segPath(nid))
			s.db.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, nid)
		}
		return fmt.Errorf("%w: %d live bytes found, the index counts %d (run `mailvault verify`; nothing was changed)", store.ErrCorrupt, dstEnd, live)
	}
	if dst != nil {
		if err := s.hook("target written"); err != nil {
			return err
		}
		if err := dst.Sync(); err != nil {
			return err
		}
		if err := s.hook("target synced"); err != nil {
			return err
		}
	}

	// The switch: one transaction, with no reader between lookup and open.
	s.swapMu.Lock()
	err = func() error {
		defer s.swapMu.Unlock()
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, m := range moves {
			res, err := tx.ExecContext(ctx, `UPDATE blobs SET seg = ?, off = ? WHERE key = ? AND seg = ? AND off = ?`, nid, m.off, m.k[:], old, m.oldOff)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("blob %s moved meanwhile (nothing was changed)", m.k)
			}
		}
		if nid != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'sealed', size = ?, live = ? WHERE id = ?`, dstEnd, dstEnd, nid); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'retired' WHERE id = ?`, old); err != nil {
			return err
		}
		if err := s.hook("before switch"); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		if err := s.hook("switched"); err != nil {
			return err
		}
		return os.Remove(s.segPath(old))
	}()
	if err != nil {
		return err
	}
	if err := store.SyncDir(s.dir); err != nil {
		return err
	}
	if err := s.hook("source removed"); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, old); err != nil {
		return err
	}
	rep.Segments++
	rep.Moved += len(moves)
	rep.Reclaimed += size - dstEnd
	return nil
}
