package indexer

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"mailvault/indexer/store"
)

// ingestInBackground ingests corpus messages from..to in batches of n (new
// content in alice, a copy of an older one in bob) until done, and returns
// a channel with the outcome.
func ingestInBackground(a *Archive, from, to, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := from; i < to; i += n {
			items := append(corpusItems("alice", i, min(i+n, to)), corpusItems("bob", i-from, i-from+1)...)
			if _, err := a.Ingest(context.Background(), items); err != nil {
				done <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		done <- nil
	}()
	return done
}

// TestVerifyWhileIngesting: Verify on a writable archive, while a few hundred
// messages arrive, reports no problem: what arrives after its snapshot is
// neither index-extra nor not-indexed, and what the snapshot holds is checked.
func TestVerifyWhileIngesting(t *testing.T) {
	a, err := Open(t.TempDir(), &Options{BatchDocs: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 100)...)
	done := ingestInBackground(a, 100, 500, 4)
	runs := 0
	for {
		rep, err := a.Verify(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		runs++
		if len(rep.Problems) != 0 {
			t.Fatalf("Verify run %d during ingest: %v", runs, rep.Problems)
		}
		if rep.Messages < 100 || rep.Blobs < rep.Messages {
			t.Fatalf("Verify run %d: %d messages, %d blobs; want at least the 100 there before", runs, rep.Messages, rep.Blobs)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if runs < 2 {
				t.Fatalf("ingest finished after %d Verify runs; the test proves little", runs)
			}
			if err := a.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			verifyClean(t, a, 500)
			return
		default:
		}
	}
}

// TestVerifyReportsDamageWhileIngesting: a corrupt and a missing blob are
// reported, exactly, by a Verify that runs while ingest goes on.
func TestVerifyReportsDamageWhileIngesting(t *testing.T) {
	a, err := Open(t.TempDir(), &Options{BatchDocs: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 50)...)
	corrupt, gone := store.KeyOf(corpusMsg(3)), store.KeyOf(corpusMsg(7))
	if err := os.WriteFile(a.fsStore.Path(corrupt), []byte("rot"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(a.fsStore.Path(gone)); err != nil {
		t.Fatal(err)
	}
	done := ingestInBackground(a, 50, 350, 3)
	for runs := 0; ; runs++ {
		rep, err := a.Verify(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range rep.Problems {
			got = append(got, p.Kind+" "+p.SHA256)
		}
		want := []string{"blob-corrupt " + corrupt.String(), "blob-missing " + gone.String()}
		if !slices.Equal(got, want) {
			t.Fatalf("Verify run %d during ingest = %v, want %v", runs, rep.Problems, want)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if runs < 1 {
				t.Fatal("ingest finished before a second Verify; the test proves little")
			}
			return
		default:
		}
	}
}

// TestArchiveStatusAndLookups: Status through the open archive agrees with
// the read-only Status of the directory, and the typed lookups list what
// the catalog holds.
func TestArchiveStatusAndLookups(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 5)...)
	ingest(t, a, corpusItems("bob", 0, 2)...) // linked, not stored again
	if err := a.Skip(ctx, "bob", "INBOX", 7, 9, "server said NO"); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromDir, err := Status(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st, fromDir) {
		t.Fatalf("Archive.Status = %+v, Status(dir) = %+v; want the same", st, fromDir)
	}
	if len(st) != 2 || st[0].Account != "alice" || st[0].Occurrences != 5 || st[0].Indexed != 5 ||
		st[1].Account != "bob" || st[1].Occurrences != 2 || st[1].Unique != 2 || st[1].Skipped != 1 || st[1].UIDNext != 10 {
		t.Fatalf("status = %+v", st)
	}
	occs, err := a.Occurrences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(occs) != 7 || occs[5].Account != "bob" || occs[5].UID != 1 || occs[5].SHA256 != occs[0].SHA256 {
		t.Fatalf("Occurrences = %+v", occs)
	}
	if raw, err := a.Raw(occs[6].SHA256); err != nil || string(raw) != string(corpusMsg(1)) {
		t.Fatalf("Raw(%s) = %q, %v", occs[6].SHA256, raw, err)
	}
	sk, err := a.Skipped(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sk) != 1 || sk[0].Account != "bob" || sk[0].UID != 9 || sk[0].Reason != "server said NO" {
		t.Fatalf("Skipped = %+v", sk)
	}
	n := 0
	if err := a.Blobs(ctx, func(k store.Key) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("Blobs saw %d, %v; want 5", n, err)
	}
	// An explicit, reasoned delete through the seam (retention's way).
	k := store.KeyOf(corpusMsg(4))
	if d, err := a.deleteBlob(ctx, k, "test: retention expired"); err != nil || d.Key != k {
		t.Fatalf("deleteBlob = %+v, %v", d, err)
	}
	if _, err := a.Raw(k.String()); err == nil {
		t.Fatal("Raw after deleteBlob succeeded")
	}
}
