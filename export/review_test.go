package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The review's attacks on the streamed zip, the pooled writes and the
// hashed load files: failures part-way must leave nothing that looks
// complete, remove their working files and stop every goroutine they
// started; the bytes and hashes written must be the bytes handed over.

// bigCorpus is n messages of about size bytes each, with distinct bodies.
func bigCorpus(n, size int) []Message {
	r := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	out := make([]Message, n)
	for i := range out {
		var b strings.Builder
		fmt.Fprintf(&b, "From: a%d@example.org\nTo: b@example.org\nSubject: m %d\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <m%d@example.org>\n\n", i, i, i)
		for b.Len() < size {
			fmt.Fprintf(&b, "line %d %x\n", b.Len(), r.Uint64())
		}
		out[i] = msg(b.String(), occ("alice", "INBOX", uint32(i+1)))
	}
	return out
}

// settleGoroutines waits until no more goroutines run than before.
func settleGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left running (were %d):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leftovers lists what an export to base left in base's directory.
func leftovers(t *testing.T, base string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(base))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filepath.Base(base)) {
			out = append(out, e.Name())
		}
	}
	return out
}

func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test mounts a tmpfs and needs root (CI runs as root)")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// TestReviewFailedExportsLeaveNothing: a zip export cancelled part-way or
// cut short by a full disk returns the error, leaves no zip, no temporary
// zip and no working directory, and stops its goroutines; a directory
// export (every format) cut short by a full disk says so, has no
// manifest, does not verify, and stops its goroutines.
func TestReviewFailedExportsLeaveNothing(t *testing.T) {
	msgs := bigCorpus(40, 40<<10) // 1.6 MB: more than the tmpfs holds, several load-file chunks
	for _, format := range []Format{FormatProduction, FormatEML, FormatMbox} {
		t.Run("cancel/zip/"+string(format), func(t *testing.T) {
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			base := filepath.Join(t.TempDir(), "prod")
			_, err := Write(ctx, &memSource{msgs: msgs}, Options{Dir: base, Zip: true, Format: format,
				Progress: func(done, _ int) {
					if done == 10 {
						cancel()
					}
				}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled zip export: %v", err)
			}
			if l := leftovers(t, base); len(l) > 0 {
				t.Errorf("a cancelled zip export left %v", l)
			}
			settleGoroutines(t, before)
		})
		t.Run("diskfull/zip/"+string(format), func(t *testing.T) {
			mnt := mountTmpfs(t, "256k")
			before := runtime.NumGoroutine()
			base := filepath.Join(mnt, "prod")
			_, err := Write(context.Background(), &memSource{msgs: msgs}, Options{Dir: base, Zip: true, Format: format})
			if err == nil || !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("zip export onto a full disk: %v", err)
			}
			if l := leftovers(t, base); len(l) > 0 {
				t.Errorf("a zip export cut short left %v", l)
			}
			settleGoroutines(t, before)
		})
		t.Run("diskfull/dir/"+string(format), func(t *testing.T) {
			mnt := mountTmpfs(t, "256k")
			before := runtime.NumGoroutine()
			dir := filepath.Join(mnt, "prod")
			_, err := Write(context.Background(), &memSource{msgs: msgs}, Options{Dir: dir, Format: format})
			if err == nil || !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("export onto a full disk: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
				t.Error("an export cut short has a manifest")
			}
			if rep, err := Verify(dir); err == nil && rep.OK {
				t.Error("an export cut short verifies")
			}
			settleGoroutines(t, before)
		})
	}
}

// TestReviewOpenLoadFilesFails: when one load file cannot be created, the
// ones created before it are closed and their goroutines stopped (the
// writer has no loadFiles to abort then).
func TestReviewOpenLoadFilesFails(t *testing.T) {
	for _, name := range []string{CSVName, XMLName, OPTName, relsName} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"DATA", tmpDir} {
				os.MkdirAll(filepath.Join(dir, d), 0o755)
			}
			// A file where the load file goes (created exclusively), or a
			// folder where the relationships go (created over).
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); name == relsName {
				os.Remove(filepath.Join(dir, name))
				err = os.Mkdir(filepath.Join(dir, name), 0o755)
			} else if err != nil {
				t.Fatal(err)
			}
			before := runtime.NumGoroutine()
			w := newWriter(Options{Dir: dir, Encoding: EncodingUTF8BOM})
			if lf, err := w.openLoadFiles(); err == nil {
				lf.abort()
				t.Fatalf("openLoadFiles over an existing %s succeeded", name)
			}
			settleGoroutines(t, before)
		})
	}
}

// TestReviewHashedFile: a hashedFile written in pieces of every size
// around its chunk size holds, counts and hashes exactly the bytes handed
// over (generated, against a direct hash of the same bytes).
func TestReviewHashedFile(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		dir := t.TempDir()
		w := newWriter(Options{Dir: dir})
		os.MkdirAll(w.path(tmpDir), 0o755)
		var err error
		if w.files, err = os.Create(w.path(tmpDir + "/files.jsonl")); err != nil {
			t.Fatal(err)
		}
		w.fbuf = bufio.NewWriter(w.files)
		w.sumsF, _ = os.Create(w.path(tmpDir + "/sums"))
		w.sums = bufio.NewWriter(w.sumsF)
		h, err := w.create("f")
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		for range r.IntN(40) {
			var n int
			switch r.IntN(4) {
			case 0:
				n = r.IntN(16)
			case 1:
				n = hashedChunk - 1 + r.IntN(3)
			case 2:
				n = r.IntN(3 * hashedChunk)
			default:
				n = r.IntN(1 << 12)
			}
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			want = append(want, p...)
			if r.IntN(2) == 0 {
				h.Write(p)
			} else {
				h.WriteString(string(p))
			}
			for i := range p {
				p[i] = 0 // the caller may reuse its buffer once Write returns
			}
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(w.path("f"))
		s, m := sha256.Sum256(want), md5.Sum(want)
		if string(got) != string(want) || h.n != int64(len(want)) ||
			hex.EncodeToString(h.sha.Sum(nil)) != hex.EncodeToString(s[:]) || hex.EncodeToString(h.md.Sum(nil)) != hex.EncodeToString(m[:]) {
			t.Fatalf("round %d: %d bytes written, %d on disk, counted %d; hashes differ or bytes differ", round, len(want), len(got), h.n)
		}
		w.files.Close()
		w.sumsF.Close()
	}
}

// TestReviewVerifyZipOddNames: a zipped export with entries added,
// renamed, replaced or shadowed by names that are odd (dot segments,
// absolute, backslashes, folder entries with data, names given twice in
// two spellings) never verifies, and the untouched zip does.
func TestReviewVerifyZipOddNames(t *testing.T) {
	base := filepath.Join(t.TempDir(), "prod")
	if _, err := Write(context.Background(), &memSource{msgs: corpus()}, Options{Dir: base, Zip: true}); err != nil {
		t.Fatal(err)
	}
	in, err := zip.OpenReader(base + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	type entry struct {
		name string
		data []byte
	}
	var orig []entry
	native := -1
	for _, f := range in.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if native < 0 && strings.HasPrefix(f.Name, "NATIVES/") {
			native = len(orig)
		}
		orig = append(orig, entry{f.Name, b})
	}
	if native < 0 {
		t.Fatal("no native in the zip")
	}
	nat := orig[native]
	flip := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }
	for _, c := range []struct {
		name   string
		ok     bool
		mutate func([]entry) []entry
	}{
		{"untouched", true, func(e []entry) []entry { return e }},
		{"extra ./x", false, func(e []entry) []entry { return append(e, entry{"./x", []byte("x")}) }},
		{"extra a/../b", false, func(e []entry) []entry { return append(e, entry{"a/../b", []byte("x")}) }},
		{"extra absolute", false, func(e []entry) []entry { return append(e, entry{"/etc/x", []byte("x")}) }},
		{"extra backslash", false, func(e []entry) []entry { return append(e, entry{`NATIVES\x`, []byte("x")}) }},
		{"extra plain file", false, func(e []entry) []entry { return append(e, entry{"NATIVES/0001/extra.eml", []byte("x")}) }},
		{"native missing", false, func(e []entry) []entry { return slices.Delete(slices.Clone(e), native, native+1) }},
		{"native altered", false, func(e []entry) []entry {
			e = slices.Clone(e)
			e[native].data = flip(nat.data)
			return e
		}},
		{"native renamed ./", false, func(e []entry) []entry {
			e = slices.Clone(e)
			e[native].name = "./" + nat.name
			return e
		}},
		{"native renamed a/../", false, func(e []entry) []entry {
			e = slices.Clone(e)
			e[native].name = "a/../" + nat.name
			return e
		}},
		{"native with backslashes", false, func(e []entry) []entry {
			e = slices.Clone(e)
			e[native].name = strings.ReplaceAll(nat.name, "/", `\`)
			return e
		}},
		{"native a folder with its data", false, func(e []entry) []entry {
			e = slices.Clone(e)
			e[native].name += "/"
			return e
		}},
		{"altered native, original after it as ./", false, func(e []entry) []entry {
			e = slices.Clone(e)
			e[native].data = flip(nat.data)
			return append(e, entry{"./" + nat.name, nat.data})
		}},
		{"original, altered copy after it as ./", false, func(e []entry) []entry {
			return append(slices.Clone(e), entry{"./" + nat.name, flip(nat.data)})
		}},
		{"altered copy first as a/../", false, func(e []entry) []entry {
			return append([]entry{{"a/../" + nat.name, flip(nat.data)}}, e...)
		}},
		{"native twice, altered second", false, func(e []entry) []entry {
			return append(slices.Clone(e), entry{nat.name, flip(nat.data)})
		}},
		{"folder entry shadowing the native", false, func(e []entry) []entry {
			return append(slices.Clone(e), entry{nat.name + "/", nil})
		}},
		{"folder then a file of its name", false, func(e []entry) []entry {
			return append(slices.Clone(e), entry{"evil/", nil}, entry{"evil", []byte("hidden")})
		}},
		{"file then a folder of its name", false, func(e []entry) []entry {
			return append(slices.Clone(e), entry{"evil", []byte("hidden")}, entry{"evil/", nil})
		}},
		{"a file under a native's name", false, func(e []entry) []entry {
			return append(slices.Clone(e), entry{nat.name + "/x", []byte("hidden")})
		}},
		{"folder entry with data", true, func(e []entry) []entry {
			// A folder holds no bytes an unzip would write: the export is
			// intact.
			return append(slices.Clone(e), entry{"NATIVES/", []byte("hidden")})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.zip")
			f, _ := os.Create(p)
			zw := zip.NewWriter(f)
			for _, e := range c.mutate(orig) {
				w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
				if err != nil {
					t.Fatal(err)
				}
				w.Write(e.data)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			rep, err := Verify(p)
			if err != nil {
				if c.ok {
					t.Fatalf("Verify: %v", err)
				}
				return // refused outright: not verified
			}
			if rep.OK != c.ok {
				t.Errorf("Verify OK = %v, want %v: %+v", rep.OK, c.ok, rep.Problems)
			}
		})
	}
}

// TestReviewMboxDiskFullStopsEarly: an mbox export onto a full disk stops
// at the write that failed, not after reading every remaining message
// (a million-message export would otherwise run to its end for nothing).
func TestReviewMboxDiskFullStopsEarly(t *testing.T) {
	mnt := mountTmpfs(t, "256k")
	msgs := bigCorpus(200, 40<<10) // 8 MB: the disk is full after a few messages
	done := 0
	_, err := Write(context.Background(), &memSource{msgs: msgs}, Options{Dir: filepath.Join(mnt, "mbox"), Format: FormatMbox,
		Progress: func(d, _ int) { done = d }})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("mbox export onto a full disk: %v", err)
	}
	if done > 50 {
		t.Errorf("the export went on for %d of %d messages after the disk was full", done, len(msgs))
	}
}

// TestReviewZipOrder: a zipped production's natives and texts are entries
// in the manifest's order, each once, before the load files and the
// manifest's own files, and an entry's bytes hash as the manifest says.
func TestReviewZipOrder(t *testing.T) {
	base := filepath.Join(t.TempDir(), "prod")
	msgs := append(corpus(), bigCorpus(60, 2000)...)
	if _, err := Write(context.Background(), &memSource{msgs: msgs}, Options{Dir: base, Zip: true, Dedup: DedupCustodian}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(base + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	m, err := readManifest(zr)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "NATIVES/") || strings.HasPrefix(f.Path, "TEXT/") {
			want = append(want, f.Path)
		}
		_, s, _, err := hashFile(zr, f.Path)
		if err != nil || s != f.SHA256 {
			t.Errorf("%s: sha256 %s, the manifest says %s (%v)", f.Path, s, f.SHA256, err)
		}
	}
	last := -1
	for i, e := range zr.File {
		if strings.HasPrefix(e.Name, "NATIVES/") || strings.HasPrefix(e.Name, "TEXT/") {
			got = append(got, e.Name)
			last = i
		}
	}
	if len(want) < 100 || !slices.Equal(got, want) {
		t.Errorf("zip entries of natives and texts (%d) are not the manifest's (%d) in its order", len(got), len(want))
	}
	if last != len(want)-1 {
		t.Errorf("the natives and texts are not the zip's first entries (last at %d)", last)
	}
}

// TestReviewZipFailsAtTheEnd: a zip export whose disk fills while the
// finished working files are copied into the zip (an mbox export: the
// mbox is written beside the zip first, then copied in) fails, and leaves
// no zip, no temporary zip and no working directory.
func TestReviewZipFailsAtTheEnd(t *testing.T) {
	mnt := mountTmpfs(t, "1m")
	before := runtime.NumGoroutine()
	base := filepath.Join(mnt, "mbox")
	_, err := Write(context.Background(), &memSource{msgs: bigCorpus(50, 14<<10)}, Options{Dir: base, Zip: true, Format: FormatMbox})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("zip export onto a disk that fills at the end: %v", err)
	}
	if !strings.Contains(err.Error(), "zip") {
		t.Errorf("the error does not say it was the zip: %v", err)
	}
	if l := leftovers(t, base); len(l) > 0 {
		t.Errorf("left %v", l)
	}
	settleGoroutines(t, before)
}

type fakeProofs struct{}

func (fakeProofs) Checkpoint() []byte { return []byte("checkpoint 1\n") }
func (fakeProofs) Bundle(sha string) ([]byte, error) {
	return []byte(`{"sha256":"` + sha + `"}`), nil
}

// TestReviewZipWithProofs: a zipped production with the ledger's proofs
// holds the same files as the directory production of the same source
// (PROOF included, more than one folder of documents) and verifies.
func TestReviewZipWithProofs(t *testing.T) {
	msgs := bigCorpus(FolderSize+20, 300)
	dir, _ := write(t, &memSource{msgs: msgs}, Options{Proofs: fakeProofs{}})
	mustVerify(t, dir)
	base := filepath.Join(t.TempDir(), "prod")
	if _, err := Write(context.Background(), &memSource{msgs: msgs}, Options{Dir: base, Zip: true, Proofs: fakeProofs{}}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(base + ".zip")
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	zr, err := zip.OpenReader(base + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	inZip := map[string]bool{}
	for _, f := range zr.File {
		inZip[f.Name] = true
	}
	n, proofs := 0, 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if !inZip[rel] {
			t.Errorf("the zip lacks %s", rel)
		}
		if strings.HasPrefix(rel, "PROOF/") {
			proofs++
		}
		delete(inZip, rel)
		n++
		return nil
	})
	if len(inZip) > 0 || proofs < FolderSize || n < 3*FolderSize {
		t.Errorf("zip vs directory: %d extra in the zip (%v...), %d files, %d proofs", len(inZip), firstKey(inZip), n, proofs)
	}
}

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

// TestReviewSourceFails: a source that fails part-way stops a directory
// or zip export of every format with its error; the zip leaves nothing,
// the directory no manifest; no goroutine is left running.
func TestReviewSourceFails(t *testing.T) {
	boom := errors.New("catalog went away")
	for _, format := range []Format{FormatProduction, FormatEML, FormatMbox} {
		for _, zipped := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/zip=%v", format, zipped), func(t *testing.T) {
				before := runtime.NumGoroutine()
				base := filepath.Join(t.TempDir(), "p")
				_, err := Write(context.Background(), &memSource{msgs: bigCorpus(20, 5000), err: boom}, Options{Dir: base, Zip: zipped, Format: format})
				if !errors.Is(err, boom) {
					t.Fatalf("export from a failing source: %v", err)
				}
				if zipped {
					if l := leftovers(t, base); len(l) > 0 {
						t.Errorf("left %v", l)
					}
				} else if _, err := os.Stat(filepath.Join(base, ManifestName)); err == nil {
					t.Error("a manifest")
				}
				settleGoroutines(t, before)
			})
		}
	}
}

// TestReviewZipAfterCrash: what a zip export killed part-way leaves (its
// temporary zip, without a central directory, and its working directory)
// does not verify and does not stop the same export being run again.
func TestReviewZipAfterCrash(t *testing.T) {
	base := filepath.Join(t.TempDir(), "prod")
	if err := os.WriteFile(base+".zip.tmp", []byte("PK\x03\x04 half a zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base+".incomplete-zip", "DATA"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base+".incomplete-zip", "DATA", DATName), []byte("stale"), 0o644)
	if rep, err := Verify(base + ".zip.tmp"); err == nil && rep.OK {
		t.Error("a temporary zip verifies")
	}
	if _, err := Write(context.Background(), &memSource{msgs: corpus()}, Options{Dir: base, Zip: true}); err != nil {
		t.Fatalf("the export again after a crash: %v", err)
	}
	if rep, err := Verify(base + ".zip"); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if l := leftovers(t, base); !slices.Equal(l, []string{"prod.zip"}) {
		t.Errorf("left %v", l)
	}
}
