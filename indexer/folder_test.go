package indexer

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestFolderEpochsAndGenerations: the IMAP view's reads of the archive.
// FolderEpochs lists every epoch of the accounts asked for (an emptied
// mailbox too), FolderMessages returns an epoch's copies with the full
// INTERNALDATE and expunged ones, and FolderGeneration moves for the
// folder written and for no other.
func TestFolderEpochsAndGenerations(t *testing.T) {
	ctx := context.Background()
	a, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	at := time.Date(2024, 3, 4, 5, 6, 7, 0, time.FixedZone("", 2*3600))
	ingest := func(acct, mbox string, uv, uid uint32) {
		t.Helper()
		if _, err := a.EnsureMailbox(ctx, acct, mbox, "imap", uv); err != nil {
			t.Fatal(err)
		}
		raw := fmt.Appendf(nil, "Subject: %s %s %d\r\n\r\nbody\r\n", acct, mbox, uid)
		if _, err := a.Ingest(ctx, []Item{{Account: acct, Mailbox: mbox, UIDValidity: uv, UID: uid, InternalDate: at, Flags: []string{`\Seen`}, Raw: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	ingest("a", "INBOX", 1, 5)
	if _, _, err := a.OpenEpoch(ctx, "a", "", "INBOX", 2); err != nil {
		t.Fatal(err)
	}
	ingest("a", "INBOX", 2, 7)
	ingest("b", "INBOX", 3, 1)
	if _, err := a.EnsureMailbox(ctx, "a", "Empty", "imap", 9); err != nil {
		t.Fatal(err)
	}
	eps, err := a.FolderEpochs(ctx, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	want := []FolderEpoch{{"a", "INBOX", 2, true}, {"a", "INBOX", 1, false}, {"a", "Empty", 9, true}}
	if fmt.Sprint(eps) != fmt.Sprint(want) {
		t.Errorf("FolderEpochs(a) = %v, want %v", eps, want)
	}
	msgs, err := a.FolderMessages(ctx, "a", "INBOX", 1)
	if err != nil || len(msgs) != 1 || msgs[0].UID != 5 || !msgs[0].InternalDate.Equal(at) || msgs[0].Flags != `\Seen` {
		t.Fatalf("FolderMessages(a, INBOX, 1) = %+v, %v", msgs, err)
	}
	if _, err := a.FolderMessages(ctx, "a", "Nope", 1); err == nil {
		t.Error("FolderMessages of a mailbox that does not exist: no error")
	}

	ga, gb := a.FolderGeneration("a", "INBOX"), a.FolderGeneration("b", "INBOX")
	ingest("a", "INBOX", 2, 8)
	if a.FolderGeneration("a", "INBOX") <= ga {
		t.Error("a/INBOX's generation did not move with new mail in it")
	}
	if a.FolderGeneration("b", "INBOX") != gb {
		t.Error("b/INBOX's generation moved with mail for a/INBOX")
	}
	ga = a.FolderGeneration("a", "INBOX")
	if _, _, err := a.Reconcile(ctx, "a", "INBOX", 2, map[uint32][]string{8: {`\Flagged`}}); err != nil {
		t.Fatal(err)
	}
	if a.FolderGeneration("a", "INBOX") <= ga {
		t.Error("a/INBOX's generation did not move with a reconcile (expunge of UID 7, flags of 8)")
	}
	msgs, err = a.FolderMessages(ctx, "a", "INBOX", 2)
	if err != nil || len(msgs) != 2 || msgs[0].Expunged == "" || msgs[1].Flags != `\Flagged` {
		t.Errorf("after the reconcile: %+v, %v", msgs, err)
	}
}
