package indexer

import (
	"context"
	"testing"
	"time"

	"mailvault/indexer/catalog"
)

// TestFlagChangeSurvivesCancel: a caller whose context ends right after
// the catalog has recorded a flag change (a harvester stopped just then)
// still gets the change into the index by the next Flush. Before, the
// re-index was abandoned with the context and the index kept the old
// flags until CatchUp at the next start: is:read found a message the
// server had marked unread (TestDovecotFlagHistory, one run in six).
func TestFlagChangeSurvivesCancel(t *testing.T) {
	for _, via := range []string{"reconcile", "changes"} {
		t.Run(via, func(t *testing.T) {
			var cancel context.CancelFunc
			a, err := Open(t.TempDir(), &Options{Layout: testLayout, flagsHook: func() {
				if cancel != nil {
					cancel()
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			bg := context.Background()
			mustMailbox(t, a, "alice", "INBOX")
			ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1,
				Raw:   msg("Carol <carol@example.org>", "flags", "Mon, 4 Mar 2024 23:30:00 -0800", "body"),
				Flags: []string{`\Seen`}, InternalDate: time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)})
			if err := a.Flush(bg); err != nil {
				t.Fatal(err)
			}
			if hits := find(t, a, "is:read", nil); len(hits) != 1 {
				t.Fatalf("is:read before: %d hits, want 1", len(hits))
			}

			ctx, c := context.WithCancel(bg)
			cancel = c
			switch via {
			case "reconcile":
				_, _, err = a.Reconcile(ctx, "alice", "INBOX", 7, map[uint32][]string{1: {`\Answered`}})
			case "changes":
				_, _, err = a.Changes(ctx, "alice", "INBOX", 7, catalog.EpochChanges{
					Flags: map[uint32][]string{1: {`\Answered`}}, ModSeq: 5})
			}
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Err() == nil {
				t.Fatal("the hook did not run: the test tests nothing")
			}
			if err := a.Flush(bg); err != nil {
				t.Fatal(err)
			}
			for q, want := range map[string]int{"is:read": 0, "is:answered": 1} {
				if hits := find(t, a, q, nil); len(hits) != want {
					t.Errorf("%s after a flag change whose caller was cancelled: %d hits, want %d", q, len(hits), want)
				}
			}
		})
	}
}
