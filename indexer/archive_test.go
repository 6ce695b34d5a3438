package indexer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
	"mailvault/query"
)

func msg(from, subject, date, body string) []byte {
	return fmt.Appendf(nil, "From: %s\r\nTo: archive@example.org\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s\r\n",
		from, subject, date, subject, body)
}

func openTest(t *testing.T, dir string) *Archive {
	t.Helper()
	a, err := Open(dir, &Options{Layout: testLayout})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustMailbox(t *testing.T, a *Archive, account, name string) catalog.Mailbox {
	t.Helper()
	mb, err := a.EnsureMailbox(context.Background(), account, name, catalog.SourceIMAP, 7)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func ingest(t *testing.T, a *Archive, items ...Item) []Outcome {
	t.Helper()
	res, err := a.Ingest(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Outcome, len(res))
	for i, r := range res {
		out[i] = r.Outcome
	}
	return out
}

func find(t *testing.T, a *Archive, q string, opts *SearchOptions) []Hit {
	t.Helper()
	n, err := query.ParseHuman(q)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := a.Search(context.Background(), n, opts)
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	return res.Hits
}

func subjects(hits []Hit) []string {
	var s []string
	for _, h := range hits {
		s = append(s, h.Subject)
	}
	sort.Strings(s)
	return s
}

func countBlobs(t *testing.T, a *Archive) int {
	t.Helper()
	n := 0
	a.Blobs(context.Background(), func(store.Key) error { n++; return nil })
	return n
}

func TestIngestIsIdempotentAndStoresOnce(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "alice", "Archive")
	mustMailbox(t, a, "bob", "INBOX")
	m1 := msg("Carol <carol@example.org>", "budget review", "Mon, 4 Mar 2024 10:00:00 +0100", "the numbers")
	m2 := msg("Dave <dave@example.org>", "lunch", "Tue, 5 Mar 2024 12:00:00 +0000", "pizza")
	in := func(acct, mb string, uid uint32, raw []byte) Item {
		return Item{Account: acct, Mailbox: mb, UIDValidity: 7, UID: uid, Raw: raw, Flags: []string{`\Seen`}}
	}

	if got, want := ingest(t, a, in("alice", "INBOX", 1, m1), in("alice", "INBOX", 2, m2)), []Outcome{Stored, Stored}; !slices.Equal(got, want) {
		t.Fatalf("first ingest = %v, want %v", got, want)
	}
	if got, want := ingest(t, a, in("alice", "INBOX", 1, m1), in("alice", "INBOX", 2, m2)), []Outcome{Present, Present}; !slices.Equal(got, want) {
		t.Fatalf("repeated ingest = %v, want %v", got, want)
	}
	// The same content in two more places, one of them in the same batch twice.
	if got, want := ingest(t, a, in("alice", "Archive", 9, m1), in("bob", "INBOX", 3, m1), in("bob", "INBOX", 3, m1)), []Outcome{Linked, Linked, Present}; !slices.Equal(got, want) {
		t.Fatalf("ingest elsewhere = %v, want %v", got, want)
	}
	// New content in two places within one batch: indexed with both places.
	m3 := msg("Erin <erin@example.org>", "offsite", "Wed, 6 Mar 2024 09:00:00 +0000", "hiking")
	if got, want := ingest(t, a, in("alice", "INBOX", 4, m3), in("bob", "INBOX", 4, m3)), []Outcome{Stored, Linked}; !slices.Equal(got, want) {
		t.Fatalf("new content twice in a batch = %v, want %v", got, want)
	}
	if hits := find(t, a, "hiking account:bob", nil); len(hits) != 1 {
		t.Fatalf("hiking account:bob: %d hits, want 1", len(hits))
	}
	if n := countBlobs(t, a); n != 3 {
		t.Fatalf("store holds %d blobs, want 3 (one per content)", n)
	}
	hits := find(t, a, "budget", nil)
	if len(hits) != 1 {
		t.Fatalf("search budget: %d hits, want 1 (one per unique message)", len(hits))
	}
	var places []string
	for _, o := range hits[0].Occurrences {
		places = append(places, fmt.Sprintf("%s/%s/%d", o.Account, o.Mailbox, o.UID))
	}
	if want := []string{"alice/Archive/9", "alice/INBOX/1", "bob/INBOX/3"}; !slices.Equal(places, want) {
		t.Fatalf("occurrences = %v, want %v", places, want)
	}
	// The index knows every place of the message, so account/mailbox filters work.
	if hits := find(t, a, "budget account:bob", nil); len(hits) != 1 || len(hits[0].Occurrences) != 1 || hits[0].Occurrences[0].Account != "bob" {
		t.Fatalf("budget account:bob = %+v, want one hit with only bob's occurrence", hits)
	}
	if hits := find(t, a, "lunch", &SearchOptions{Accounts: []string{"bob"}}); len(hits) != 0 {
		t.Fatalf("lunch in bob's account = %v, want none", subjects(hits))
	}
	// An account and a mailbox filter together mean that mailbox of that
	// account: alice+INBOX must not match a message in alice/Archive and carol/INBOX.
	mustMailbox(t, a, "carol", "INBOX")
	m4 := msg("Fay <fay@example.org>", "crossed", "Thu, 7 Mar 2024 09:00:00 +0000", "wires")
	ingest(t, a, in("alice", "Archive", 20, m4), in("carol", "INBOX", 20, m4))
	if hits := find(t, a, "wires", &SearchOptions{Accounts: []string{"alice"}, Mailboxes: []string{"INBOX"}}); len(hits) != 0 {
		t.Fatalf("wires in alice/INBOX = %+v, want none (it is in alice/Archive and carol/INBOX)", hits)
	}
	if hits := find(t, a, "wires account:alice mailbox:INBOX", nil); len(hits) != 0 {
		t.Fatalf("wires account:alice mailbox:INBOX = %+v, want none", hits)
	}
	if hits := find(t, a, "budget", &SearchOptions{Mailboxes: []string{"Archive"}}); len(hits) != 1 || len(hits[0].Occurrences) != 1 {
		t.Fatalf("budget in Archive = %+v, want one hit with one occurrence", hits)
	}
	st, err := Status(context.Background(), a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 4 || st[1].Account != "alice" || st[1].Mailbox != "INBOX" || st[1].Occurrences != 3 || st[1].Unindexed != 0 {
		t.Fatalf("status = %+v", st)
	}
}

func TestUnknownMailboxIsAnError(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	_, err := a.Ingest(context.Background(), []Item{{Account: "x", Mailbox: "INBOX", UID: 1, Raw: []byte("a")}})
	if err == nil {
		t.Fatal("Ingest into a mailbox never created = nil error")
	}
}

func TestMalformedMessageIsStoredByteExact(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	broken := []byte("From: <<<not an address\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: text/plain\r\n\r\nwobbly kerfuffle\r\n") // bad From, no closing boundary
	binary := []byte("\x00\xff\xfeThis is not: mail\r\n--\r\n\x00\x01\x02")
	res, err := a.Ingest(context.Background(), []Item{
		{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: broken},
		{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 2, Raw: binary},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]byte{broken, binary} {
		raw, err := a.Raw(res[i].Key.String())
		if err != nil || !bytes.Equal(raw, want) {
			t.Fatalf("item %d: stored bytes differ from the input (err %v)", i, err)
		}
		if res[i].ParseError == "" || res[i].Outcome != Stored {
			t.Errorf("item %d: outcome %v, parse error %q; want stored and flagged", i, res[i].Outcome, res[i].ParseError)
		}
	}
	if hits := find(t, a, "kerfuffle", nil); len(hits) != 1 || hits[0].ParseError == "" || hits[0].Subject != "broken" {
		t.Fatalf("salvaged text not searchable or not flagged: %+v", hits)
	}
	st, err := Status(context.Background(), a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if st[0].ParseErrors != 2 || st[0].Occurrences != 2 {
		t.Fatalf("status = %+v, want 2 occurrences with 2 parse errors", st[0])
	}
}

func TestPhrasesWithStopWordsAndDates(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	items := []Item{
		{Raw: msg("a@example.org", "hamlet", "Fri, 1 Mar 2024 23:30:00 -0800", "To be, or not to be: that is the question")},
		{Raw: msg("b@example.org", "other", "Sat, 2 Mar 2024 00:30:00 +0100", "to be sure, not now")},
	}
	for i := range items {
		items[i].Account, items[i].Mailbox, items[i].UIDValidity, items[i].UID = "alice", "INBOX", 7, uint32(i+1)
	}
	ingest(t, a, items...)
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{`"to be or not to be"`, []string{"hamlet"}},
		{`"not to be"`, []string{"hamlet"}},
		{`on:2024-03-01`, []string{"hamlet"}}, // 2 March in UTC, 1 March where it was written
		{`on:2024-03-02`, []string{"other"}},
		{`before:2024-03-02`, []string{"hamlet"}},
		{`after:2024-03-02`, []string{"other"}},
		{`from:b@example.org`, []string{"other"}},
		{`-from:b@example.org`, []string{"hamlet"}},
		{`from:example`, []string{"hamlet", "other"}}, // the domain alone, split from the address
		{`from:b`, []string{"other"}},
	} {
		if got := subjects(find(t, a, tc.q, nil)); !slices.Equal(got, tc.want) {
			t.Errorf("search %s = %v, want %v", tc.q, got, tc.want)
		}
	}
	// Default order is newest first.
	hits := find(t, a, "be", nil)
	if len(hits) != 2 || hits[0].Subject != "hamlet" {
		// hamlet: 2 Mar 07:30 UTC; other: 1 Mar 23:30 UTC.
		t.Fatalf("order = %v, want hamlet (newer in absolute time) first", subjects(hits))
	}
}

func TestIndexIsRebuiltFromStoreAndCatalog(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 30 {
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1),
			Raw: msg("x@example.org", fmt.Sprintf("report %d", i), "Mon, 4 Mar 2024 10:00:00 +0100", "quarterly zebra")})
	}
	ingest(t, a, items...)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Lose the index entirely: the next writer rebuilds it.
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	a = openTest(t, dir)
	if err := a.CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if hits := find(t, a, "zebra", &SearchOptions{Limit: 100}); len(hits) != 30 {
		t.Fatalf("after losing the index: %d hits, want 30", len(hits))
	}
	a.Close()
	// DiscardIndex (mailvault reindex) rebuilds too, and verify agrees after.
	a, err := Open(dir, &Options{DiscardIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	a.Close()
	ro, err := Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Blobs != 30 || rep.Messages != 30 || rep.Indexed != 30 {
		t.Fatalf("verify after reindex = %+v", rep)
	}
}

func TestVerifyFindsProblems(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	raws := [][]byte{
		msg("x@example.org", "one", "Mon, 4 Mar 2024 10:00:00 +0100", "a"),
		msg("x@example.org", "two", "Mon, 4 Mar 2024 10:00:00 +0100", "b"),
		msg("x@example.org", "three", "Mon, 4 Mar 2024 10:00:00 +0100", "c"),
	}
	var items []Item
	for i, r := range raws {
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: r})
	}
	ingest(t, a, items...)
	a.Close()
	// Corrupt one blob, delete another.
	s, _ := store.Open(filepath.Join(dir, "blobs"))
	if err := os.WriteFile(s.Path(store.KeyOf(raws[0])), []byte("rot"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.Path(store.KeyOf(raws[1]))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	if want := []string{"blob-corrupt", "blob-missing"}; !slices.Equal(kinds, want) {
		t.Fatalf("verify problems = %v, want %v", rep.Problems, want)
	}
}

func TestDataDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	defer a.Close()
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer Open = %v, want ErrLocked", err)
	}
	if _, err := Open(dir, &Options{ReadOnly: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("reader beside a writer = %v, want ErrLocked", err)
	}
}

func TestIndexLagIsShort(t *testing.T) {
	// A lone message must become searchable without an explicit Flush: the
	// writer commits partial batches after a short idle pause.
	a := openTest(t, t.TempDir())
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1,
		Raw: msg("x@example.org", "solitary", "Mon, 4 Mar 2024 10:00:00 +0100", "walrus")})
	q, _ := query.ParseHuman("walrus")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		res, err := a.Search(context.Background(), q, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) == 1 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("message not searchable 5s after Ingest returned")
}

func TestMessageURL(t *testing.T) {
	for _, tc := range []struct {
		base, account, mailbox string
		want                   string
	}{
		{"imap://alice@mail.example.org", "alice", "INBOX", "imap://alice@mail.example.org/INBOX;UIDVALIDITY=7/;UID=42"},
		{"imap://alice@mail.example.org", "alice", "Archive/2024 Q1", "imap://alice@mail.example.org/Archive/2024%20Q1;UIDVALIDITY=7/;UID=42"},
		{"", "bob", "Sent", "mailvault://bob/Sent;UIDVALIDITY=7/;UID=42"},
		{"", "alice@example.org", "INBOX", "mailvault://alice%40example.org/INBOX;UIDVALIDITY=7/;UID=42"},
	} {
		if got := MessageURL(tc.base, tc.account, tc.mailbox, 7, 42); got != tc.want {
			t.Errorf("MessageURL(%q, %q, %q) = %q, want %q", tc.base, tc.account, tc.mailbox, got, tc.want)
		}
	}
}

func TestDamagedIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1,
		Raw: msg("x@example.org", "kept", "Mon, 4 Mar 2024 10:00:00 +0100", "narwhal")})
	a.Close()
	// What a crash while bleve was writing its metadata leaves behind.
	if err := os.WriteFile(filepath.Join(dir, "index", "index_meta.json"), []byte(`{"storage":`), 0o640); err != nil {
		t.Fatal(err)
	}
	a = openTest(t, dir)
	defer a.Close()
	if err := a.CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if hits := find(t, a, "narwhal", nil); len(hits) != 1 {
		t.Fatalf("after a damaged index: %d hits, want 1", len(hits))
	}
}
