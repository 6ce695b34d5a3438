package service

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"mailvault/ledger"
)

// RFC 3161 timestamps of the ledger's checkpoints (LedgerOptions.TSA).
//
// A TSA that is down, slow or lying must not stop the ledger: the ledger
// is what every audited request waits for (fail closed), a TSA is someone
// else's server. So a checkpoint is written and signed first, and only then
// handed to a stamper goroutine, outside the request; a failure is logged
// and counted (mailvault_ledger_timestamp_failures_total) and the next
// checkpoint tries again: it stamps a larger tree, which holds every leaf
// the failed one did. When checkpoints come faster than the TSA answers,
// only the newest waiting is stamped. Whoever needs the token now (Settle
// when a command or serve ends, Prove, an export's proofs, Close) waits for
// the stamper, at most the TSA's timeout.

// stamper is the ledger's timestamping state; mu guards all but the
// counters.
type stamper struct {
	mu         sync.Mutex
	idle       *sync.Cond // signalled when busy turns false
	busy       bool
	want, done int64 // checkpoint sizes: the newest to stamp, the last tried
	last       *ledger.Stamp
	lastErr    error
	ok, failed atomic.Int64
}

// stampLater has the checkpoint c timestamped, in the background, when the
// ledger has a TSA.
func (l *Ledger) stampLater(c ledger.Checkpoint) {
	if l.opts.TSA == nil {
		return
	}
	s := &l.ts
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle == nil {
		s.idle = sync.NewCond(&s.mu)
	}
	s.want = c.Size
	if s.busy {
		return
	}
	s.busy = true
	go l.stampLoop()
}

func (l *Ledger) stampLoop() {
	s := &l.ts
	log := l.opts.Logger
	if log == nil {
		log = slog.Default()
	}
	for {
		s.mu.Lock()
		size := s.want
		if size == s.done {
			s.busy = false
			s.idle.Broadcast()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		st, err := l.Log.StampCheckpoint(context.Background(), l.opts.TSA, size, l.opts.CopyDir)
		if err != nil {
			s.failed.Add(1)
			log.Warn("ledger: checkpoint not timestamped; it is kept, signed, and the next checkpoint tries again", "size", size, "tsa", l.opts.TSA.URL, "err", err)
		} else {
			s.ok.Add(1)
			log.Debug("ledger: checkpoint timestamped", "size", size, "tsa", st.TSA, "time", st.Time)
		}
		s.mu.Lock()
		s.done, s.last, s.lastErr = size, st, err
		s.mu.Unlock()
	}
}

// WaitTimestamp waits until no timestamp is being requested and returns
// the outcome of the last request (nil, nil when there was none, or the
// ledger has no TSA).
func (l *Ledger) WaitTimestamp() (*ledger.Stamp, error) {
	s := &l.ts
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.busy {
		s.idle.Wait()
	}
	return s.last, s.lastErr
}

// TimestampCounts are the checkpoints timestamped and the requests that
// failed since the ledger was opened.
func (l *Ledger) TimestampCounts() (ok, failed int64) {
	return l.ts.ok.Load(), l.ts.failed.Load()
}

// tsaRoots are the roots `ledger verify` checks the checkpoints' tokens
// against: those given (PEM text), else the configured TSA's, else none
// (each token against its own certificate).
func (l *Ledger) tsaRoots(pemText string) (*x509.CertPool, error) {
	if strings.TrimSpace(pemText) != "" {
		roots, err := ledger.ParseRoots([]byte(pemText))
		if err != nil {
			return nil, fmt.Errorf("TSA roots: %w", err)
		}
		return roots, nil
	}
	if l.opts.TSA != nil {
		return l.opts.TSA.Roots, nil
	}
	return nil, nil
}
