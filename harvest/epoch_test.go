package harvest_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// epochSink is the archive's Sink, with the UIDVALIDITY of every
// Checkpoint (each one opens that epoch) recorded in call order.
type epochSink struct {
	*service.Sink
	mu     sync.Mutex
	opened []uint32
}

func (s *epochSink) Checkpoint(ctx context.Context, account, accountURL, mailbox string, uidvalidity uint32) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opened = append(s.opened, uidvalidity)
	return s.Sink.Checkpoint(ctx, account, accountURL, mailbox, uidvalidity)
}

func (s *epochSink) calls() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.opened)
}

// TestUIDValidityChangeDuringIdle: the server renumbers the mailbox while
// the harvester IDLEs on it and says nothing about it, as Dovecot does
// after "doveadm mailbox update --uid-validity" until it notices. The sync
// after the IDLE EXAMINEs the mailbox, finds the new UIDVALIDITY and opens
// the new epoch. Once it has, no epoch is opened with the old UIDVALIDITY
// (the EXAMINE from before the IDLE is out of date), and the catalog's
// current epoch is the new one with its checkpoint past the 3 messages.
//
// This failed before the fix: watch read the checkpoint after that sync
// with the UIDVALIDITY of its EXAMINE from before the IDLE, which opened
// the old epoch again, at UID 1 (TestDovecotOldEpochStale, one run in three).
func TestUIDValidityChangeDuringIdle(t *testing.T) {
	msgs := hsMessages(3)
	var armed, changed atomic.Bool
	var idlesAfter atomic.Int32
	srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
		if cmd != "IDLE" || !armed.Load() {
			return false
		}
		if !changed.Swap(true) {
			s.srv.setUIDValidity(8) // the EXAMINE before this IDLE said 7
		} else {
			idlesAfter.Add(1)
		}
		return false
	})
	a := harvesttest.OpenArchive(t, t.TempDir())
	sink := &epochSink{Sink: service.NewSink(a.Archive)}
	var log strings.Builder
	var logMu sync.Mutex
	acct := harvest.Account{Name: "mallory", Host: "127.0.0.1", Port: srv.port(), TLS: "none",
		Username: "alice", Password: "secret", Idle: []string{"INBOX"}, PollInterval: 200 * time.Millisecond}
	opts := hsOptions()
	opts.GapCheck = -1
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &log}, nil))
	h := harvest.New(acct, sink, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run still running 5 s after cancel")
			}
		})
	}
	defer stop()
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("harvester log:\n%s", log.String())
			logMu.Unlock()
		}
	})

	harvesttest.WaitFor(t, 10*time.Second, "epoch 7 archived", func() (bool, string) {
		st := harvesttest.Status(t, a)["mallory/INBOX"]
		return st.UIDValidity == 7 && st.Occurrences == 3, ""
	})
	armed.Store(true)
	// Two IDLEs after the one the change came in: the sync that found
	// epoch 8, and everything watch did after it, are over.
	harvesttest.WaitFor(t, 10*time.Second, "epoch 8 archived, then two more IDLEs", func() (bool, string) {
		return idlesAfter.Load() >= 2, ""
	})
	stop()

	calls := sink.calls()
	first := slices.Index(calls, 8)
	if first < 0 {
		t.Fatalf("no checkpoint of epoch 8; checkpoints by UIDVALIDITY: %v", calls)
	}
	if i := slices.Index(calls[first:], 7); i >= 0 {
		t.Errorf("checkpoint %d opened epoch 7 after epoch 8 was opened; checkpoints by UIDVALIDITY: %v", first+i, calls)
	}
	st := harvesttest.Status(t, a)["mallory/INBOX"]
	if st.UIDValidity != 8 || st.UIDNext != 4 || st.Occurrences != 6 {
		t.Errorf("catalog after stop: uidvalidity %d, uidnext %d, %d occurrences; want 8, 4, 6", st.UIDValidity, st.UIDNext, st.Occurrences)
	}
}

// lockedWriter serializes writes to w with mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
