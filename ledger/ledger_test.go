package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// mth is RFC 6962's Merkle Tree Hash, written from the RFC (section 2.1),
// independently of tlog: the reference the log's roots are checked against.
func mth(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func randLeaf(rng *rand.Rand, i int) []byte {
	return []byte(fmt.Sprintf(`{"kind":"audit","id":%d,"detail":"%s"}`, i+1, strings.Repeat("x", rng.IntN(300))))
}

func TestRootsMatchRFC6962(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var all [][]byte
	for len(all) < 300 {
		var add [][]byte
		for range rng.IntN(9) + 1 {
			add = append(add, randLeaf(rng, len(all)+len(add)))
		}
		if _, err := l.Append(add, false); err != nil {
			t.Fatal(err)
		}
		all = append(all, add...)
		for _, n := range []int{len(all), rng.IntN(len(all)) + 1} {
			h, err := l.TreeHash(int64(n))
			if err != nil {
				t.Fatal(err)
			}
			if h != tlog.Hash(mth(all[:n])) {
				t.Fatalf("root of %d leaves differs from RFC 6962's", n)
			}
		}
	}
	for i, want := range all {
		got, err := l.Leaf(int64(i))
		if err != nil || string(got) != string(want) {
			t.Fatalf("leaf %d = %q, %v", i, got, err)
		}
	}
	if _, err := l.Append([][]byte{[]byte("a\nb")}, false); err != ErrBadLeaf {
		t.Errorf("a leaf with a newline: %v, want ErrBadLeaf", err)
	}
}

// A crash can leave any prefix of any file's last writes on disk: cut each
// file at random points and check the log opens to a consistent prefix.
func TestCrashLeavesAPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 40 {
		dir := t.TempDir()
		l, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var all [][]byte
		for range 30 {
			all = append(all, randLeaf(rng, len(all)))
		}
		if _, err := l.Append(all, true); err != nil {
			t.Fatal(err)
		}
		l.Close()
		for _, f := range []string{leavesFile, indexFile, hashesFile} {
			if rng.IntN(2) == 0 {
				continue
			}
			p := filepath.Join(dir, f)
			fi, _ := os.Stat(p)
			os.Truncate(p, rng.Int64N(fi.Size()+1))
		}
		l, err = Open(dir)
		if err != nil {
			t.Fatalf("trial %d: reopen: %v", trial, err)
		}
		n := l.Size()
		h, err := l.TreeHash(n)
		if err != nil || h != tlog.Hash(mth(all[:n])) {
			t.Fatalf("trial %d: after the crash the tree of %d leaves is wrong: %v", trial, n, err)
		}
		// It goes on appending correctly.
		more := randLeaf(rng, 99)
		if _, err := l.Append([][]byte{more}, false); err != nil {
			t.Fatal(err)
		}
		if h, _ := l.TreeHash(n + 1); h != tlog.Hash(mth(append(all[:n:n], more))) {
			t.Fatalf("trial %d: append after the crash gives a wrong tree", trial)
		}
		l.Close()
	}
}

// Two Logs on one directory (two processes) append without losing or
// doubling a leaf.
func TestTwoAppenders(t *testing.T) {
	dir := t.TempDir()
	a, _ := Open(dir)
	b, _ := Open(dir)
	defer a.Close()
	defer b.Close()
	var wg sync.WaitGroup
	for w, l := range []*Log{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, err := l.Append([][]byte{[]byte(fmt.Sprintf(`{"kind":"audit","id":%d}`, w*1000+i+1))}, false); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	a.Refresh()
	if a.Size() != 400 {
		t.Fatalf("size %d, want 400", a.Size())
	}
	var all [][]byte
	seen := map[string]bool{}
	for i := range int64(400) {
		lf, _ := a.Leaf(i)
		all = append(all, lf)
		seen[string(lf)] = true
	}
	if len(seen) != 400 {
		t.Errorf("%d distinct leaves, want 400", len(seen))
	}
	if h, _ := a.TreeHash(400); h != tlog.Hash(mth(all)) {
		t.Error("the tree two appenders built is wrong")
	}
}

func TestBundles(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	defer l.Close()
	skey, vkey, err := GenerateKey("archive.example.com/test")
	if err != nil {
		t.Fatal(err)
	}
	signer, derived, err := LoadSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if derived != vkey {
		t.Fatalf("the verifier key derived from the signing key is %q, GenerateKey gave %q", derived, vkey)
	}
	_, otherV, _ := GenerateKey("archive.example.com/test")
	msg := []byte("From: a@example.com\r\n\r\nhello\r\n")
	sum := sha256.Sum256(msg)
	var leaves [][]byte
	for i := range 1000 {
		leaves = append(leaves, Leaf{Kind: KindMessage, ID: int64(i + 1), SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte{byte(i), byte(i >> 8)})), Size: 10}.Encode())
	}
	target := Leaf{Kind: KindMessage, ID: 1001, SHA256: fmt.Sprintf("%x", sum), Size: int64(len(msg))}
	leaves = append(leaves, target.Encode())
	l.Append(leaves, false)
	if _, err := l.WriteCheckpoint(signer, ""); err != nil {
		t.Fatal(err)
	}
	signed, _ := os.ReadFile(filepath.Join(dir, Latest))
	b, err := l.Prove(1000, signed, vkey)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(b)
	if len(raw) > 4096 {
		t.Errorf("a bundle for a tree of 1001 leaves is %d bytes, want a few KB (O(log n))", len(raw))
	}
	v, err := VerifyBundle(b, vkey)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.CheckMessage(msg); err != nil {
		t.Error(err)
	}
	if err := v.CheckMessage(append(msg, 'x')); err == nil {
		t.Error("another message passed CheckMessage")
	}
	// Each alteration is refused.
	bad := map[string]func(b *Bundle){
		"leaf edited": func(b *Bundle) { b.Leaf = strings.Replace(b.Leaf, `"size":`, `"size":1`, 1) },
		"index moved": func(b *Bundle) { b.Index-- },
		"proof hash flipped": func(b *Bundle) {
			b.Proof = append([]tlog.Hash(nil), b.Proof...)
			b.Proof[0][0] ^= 1
		},
		"proof cut":         func(b *Bundle) { b.Proof = b.Proof[1:] },
		"tree size":         func(b *Bundle) { b.TreeSize++ },
		"checkpoint forged": func(b *Bundle) { b.Checkpoint = strings.Replace(b.Checkpoint, "\n1001\n", "\n1002\n", 1) },
		"format":            func(b *Bundle) { b.Format = "x" },
	}
	for name, f := range bad {
		c := *b
		f(&c)
		if _, err := VerifyBundle(&c, vkey); err == nil {
			t.Errorf("%s: the bundle still verifies", name)
		}
	}
	if _, err := VerifyBundle(b, otherV); err == nil {
		t.Error("the bundle verifies under another key")
	}
	// A leaf that is not in the checkpoint's tree cannot be proved.
	l.Append([][]byte{Leaf{Kind: KindMessage, ID: 1002, SHA256: "00", Size: 1}.Encode()}, false)
	if _, err := l.Prove(1001, signed, vkey); err == nil {
		t.Error("a leaf newer than the checkpoint was proved against it")
	}
}

// memSource is a table of rows, as the catalog or the audit trail would
// give them.
type memSource struct{ rows map[string][]Leaf }

func (m *memSource) LedgerRows(_ context.Context, kind string, after int64, fn func(Leaf) error) error {
	rs := m.rows[kind]
	if !sort.SliceIsSorted(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID }) {
		rs = append([]Leaf(nil), rs...)
		sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	}
	start := sort.Search(len(rs), func(i int) bool { return rs[i].ID > after })
	for _, r := range rs[start:] {
		{
			if err := fn(r); err != nil {
				if err == ErrStop {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

func TestFollowAndVerifyTamper(t *testing.T) {
	setup := func(t *testing.T) (*Log, *memSource, map[string]Source, string, string) {
		dir := t.TempDir()
		l, err := Open(filepath.Join(dir, "ledger"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		src := &memSource{rows: map[string][]Leaf{}}
		for i := 1; i <= 50; i++ {
			sha := fmt.Sprintf("%064x", i)
			src.rows[KindMessage] = append(src.rows[KindMessage], Leaf{Kind: KindMessage, ID: int64(i), SHA256: sha, Size: int64(100 + i)})
			src.rows[KindOccurrence] = append(src.rows[KindOccurrence], Leaf{Kind: KindOccurrence, ID: int64(i), SHA256: sha, Account: "a", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i)})
			src.rows[KindAudit] = append(src.rows[KindAudit], Leaf{Kind: KindAudit, ID: int64(i), At: "2026-12-01T10:00:00Z", User: "u", Action: "search", Detail: "q"})
		}
		sources := map[string]Source{KindMessage: src, KindOccurrence: src, KindAudit: src}
		f := &Follower{Log: l, Sources: sources}
		if n, err := f.Follow(context.Background(), true); err != nil || n != 150 {
			t.Fatalf("follow: %d, %v", n, err)
		}
		// Following again adds nothing; a new row is added once.
		if n, _ := f.Follow(context.Background(), false); n != 0 {
			t.Fatalf("second follow added %d", n)
		}
		skey, vkey, _ := GenerateKey("archive.example.com/t")
		s, _, _ := LoadSigner(skey)
		copyDir := filepath.Join(dir, "elsewhere")
		if _, err := l.WriteCheckpoint(s, copyDir); err != nil {
			t.Fatal(err)
		}
		return l, src, sources, vkey, copyDir
	}
	ctx := context.Background()
	l, _, sources, vkey, copyDir := setup(t)
	rep, err := Verify(ctx, l, sources, vkey, copyDir)
	if err != nil || !rep.OK || rep.Checkpoints != 3 || rep.Leaves != 150 {
		t.Fatalf("clean ledger: %+v, %v", rep, err)
	}

	cases := []struct {
		name   string
		tamper func(l *Log, src *memSource)
		want   string
	}{
		{"catalog row edited", func(_ *Log, s *memSource) { s.rows[KindMessage][9].Size = 1 }, "message row 10 was changed"},
		{"audit row edited", func(_ *Log, s *memSource) { s.rows[KindAudit][3].Detail = "innocent" }, "audit row 4 was changed"},
		{"row deleted", func(_ *Log, s *memSource) {
			s.rows[KindOccurrence] = append(s.rows[KindOccurrence][:4], s.rows[KindOccurrence][5:]...)
		}, "occurrence row 5 is in the ledger"},
		{"row inserted in a gap", func(_ *Log, s *memSource) {
			s.rows[KindAudit][7].ID = 1000 // row 8 moved away...
			s.rows[KindAudit] = append(s.rows[KindAudit], Leaf{Kind: KindAudit, ID: 8, User: "forger"})
		}, "audit row 8 was changed"},
		{"ledger truncated", func(l *Log, _ *memSource) {
			os.Truncate(filepath.Join(l.dir, indexFile), 100*8)
		}, "the ledger was truncated"},
		{"checkpoint replaced", func(l *Log, _ *memSource) {
			skey, _, _ := GenerateKey("archive.example.com/t")
			s, _, _ := LoadSigner(skey)
			l.WriteCheckpoint(s, "")
		}, "replaced or forged"},
		{"leaf edited in place", func(l *Log, _ *memSource) {
			p := filepath.Join(l.dir, leavesFile)
			b, _ := os.ReadFile(p)
			b = []byte(strings.Replace(string(b), `"uid":3}`, `"uid":4}`, 1))
			os.WriteFile(p, b, 0o600)
		}, "does not hash to the stored tree"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, src, sources, vkey, copyDir := setup(t)
			c.tamper(l, src)
			rep, err := Verify(ctx, l, sources, vkey, copyDir)
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, p := range rep.Problems {
				all = append(all, p.What)
			}
			if rep.OK || !strings.Contains(strings.Join(all, "\n"), c.want) {
				t.Errorf("ok=%v, problems:\n%s\nwant one saying %q", rep.OK, strings.Join(all, "\n"), c.want)
			}
		})
	}

	// A followed kind's rows newer than the ledger are pending, not
	// problems, until they have waited longer than MaxPending; a direct
	// kind's row with no leaf is a problem unless it is in flight.
	now := time.Now().UTC()
	l2, src2, sources2, vkey2, _ := setup(t)
	src2.rows[KindMessage] = append(src2.rows[KindMessage], Leaf{Kind: KindMessage, ID: 51, SHA256: "ab", Size: 1, At: now.Format(time.RFC3339Nano)})
	src2.rows[KindAudit] = append(src2.rows[KindAudit], Leaf{Kind: KindAudit, ID: 51, User: "now", At: now.Format(time.RFC3339Nano)})
	rep, _ = Verify(ctx, l2, sources2, vkey2)
	if !rep.OK || rep.Pending[KindMessage] != 1 || rep.Pending[KindAudit] != 1 {
		t.Errorf("new rows: %+v", rep)
	}
	for _, c := range []struct {
		kind, want string
	}{{KindMessage, "the ledger stopped following"}, {KindAudit, "has no leaf: it was not written by mailvault"}} {
		l3, src3, sources3, vkey3, _ := setup(t)
		old := now.Add(-MaxPending - time.Minute).Format(time.RFC3339Nano)
		src3.rows[c.kind] = append(src3.rows[c.kind], Leaf{Kind: c.kind, ID: 51, SHA256: "ab", Size: 1, User: "forger", At: old})
		rep, _ = Verify(ctx, l3, sources3, vkey3)
		if rep.OK || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].What, c.want) {
			t.Errorf("an old %s row with no leaf: %+v", c.kind, rep)
		}
	}
}

// LeafByID finds message leaves by row id through its hint, and still
// finds them when the hint is gone or lies.
func TestLeafByID(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	defer l.Close()
	src := &memSource{rows: map[string][]Leaf{}}
	for i := 1; i <= 300; i++ {
		src.rows[KindMessage] = append(src.rows[KindMessage], Leaf{Kind: KindMessage, ID: int64(i), SHA256: fmt.Sprintf("%064x", i), Size: 1})
		src.rows[KindAudit] = append(src.rows[KindAudit], Leaf{Kind: KindAudit, ID: int64(i), User: "u"})
	}
	f := &Follower{Log: l, Sources: map[string]Source{KindMessage: src, KindAudit: src}}
	// In several follows, so that kinds interleave.
	all := src.rows
	for _, upto := range []int{10, 11, 150, 300} {
		src.rows = map[string][]Leaf{KindMessage: all[KindMessage][:upto], KindAudit: all[KindAudit][:upto]}
		if _, err := f.Follow(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) {
		for _, id := range []int64{1, 10, 11, 12, 150, 151, 300} {
			i, err := l.LeafByID(KindMessage, id)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			b, _ := l.Leaf(i)
			lf, _ := DecodeLeaf(b)
			if lf.Kind != KindMessage || lf.ID != id {
				t.Fatalf("%s: row %d found at leaf %d, which is %s %d", what, id, i, lf.Kind, lf.ID)
			}
		}
		if _, err := l.LeafByID(KindMessage, 301); err == nil {
			t.Errorf("%s: a row not in the ledger was found", what)
		}
	}
	check("with the hint")
	os.WriteFile(filepath.Join(dir, "byid-message"), make([]byte, 8*400), 0o600)
	check("with a zeroed hint")
	b := make([]byte, 8*400)
	for i := range b {
		b[i] = 0x01
	}
	os.WriteFile(filepath.Join(dir, "byid-message"), b, 0o600)
	check("with a lying hint")
	os.Remove(filepath.Join(dir, "byid-message"))
	check("without the hint")
}

// An edited cursor (to make the follower skip rows) is found out: the
// follower reads the leaves again and ledgers every row.
func TestCursorLies(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	defer l.Close()
	src := &memSource{rows: map[string][]Leaf{}}
	for i := 1; i <= 20; i++ {
		src.rows[KindMessage] = append(src.rows[KindMessage], Leaf{Kind: KindMessage, ID: int64(i), SHA256: "ab", Size: 1})
	}
	f := &Follower{Log: l, Sources: map[string]Source{KindMessage: src}}
	if n, _ := f.Follow(context.Background(), false); n != 20 {
		t.Fatalf("first follow: %d", n)
	}
	for _, lie := range []string{
		`{"size":20,"last":{"message":1000000000}}`,
		`{"size":20,"last":{"message":1000000000},"at":{"message":19}}`,
		`{"size":20,"last":{"message":1000000000},"at":{"message":5}}`,
		`{"size":0,"last":{},"at":{}}`,
	} {
		os.WriteFile(filepath.Join(dir, cursorFile), []byte(lie), 0o600)
		for i := 21; i <= 22; i++ {
			src.rows[KindMessage] = append(src.rows[KindMessage], Leaf{Kind: KindMessage, ID: int64(len(src.rows[KindMessage]) + 1), SHA256: "ab", Size: 1})
		}
		g := &Follower{Log: l, Sources: map[string]Source{KindMessage: src}} // a new process
		n, err := g.Follow(context.Background(), false)
		if err != nil || n != 2 {
			t.Errorf("cursor %s: the follower appended %d leaves (%v), want the 2 new rows", lie, n, err)
		}
	}
}
