package export

import (
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// VerifyReport is what Verify found. OK is true when Problems is empty.
type VerifyReport struct {
	Dir      string
	OK       bool
	Files    int // files checked against the manifest
	Natives  int // message natives checked against the archive's sha256
	Problems []Problem
}

// Problem is one thing wrong with an export.
type Problem struct {
	Kind   ProblemKind
	Path   string // relative to the export; "" for the export as a whole
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Kind, p.Path, p.Detail) }

// ProblemKind classifies a Problem.
type ProblemKind string

const (
	ProblemIncomplete ProblemKind = "incomplete" // no manifest.json, or no SHA256SUMS
	ProblemMissing    ProblemKind = "missing"    // listed but not there
	ProblemExtra      ProblemKind = "extra"      // there but not listed
	ProblemAltered    ProblemKind = "altered"    // size or hash differs from the listing
	ProblemNative     ProblemKind = "native"     // a message native differs from the archive's sha256
	ProblemMalformed  ProblemKind = "malformed"  // manifest, SHA256SUMS or custody.txt unreadable
)

// Verify checks an export offline: manifest.json present, every file it
// lists there with its size, SHA-256 and MD5, every message native's
// SHA-256 equal to the archive's, no file the manifest does not list (but
// manifest.json, custody.txt and SHA256SUMS), SHA256SUMS agreeing with the
// files, and custody.txt's last line stating manifest.json's sha256. The
// error is for a dir that cannot be read at all; everything else is a
// Problem.
func Verify(dir string) (*VerifyReport, error) {
	if strings.HasSuffix(dir, ".zip") {
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			return verifyZip(dir)
		}
	}
	return verifyDir(dir)
}

// verifyDir is Verify of an export directory.
func verifyDir(dir string) (*VerifyReport, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	r := &VerifyReport{Dir: dir}
	return r, r.check(os.DirFS(dir))
}

// check verifies the export whose files fsys holds (a directory, or a
// zip's entries) and records what it finds in r.
func (r *VerifyReport) check(fsys fs.FS) error {
	add := func(k ProblemKind, path, format string, args ...any) {
		r.Problems = append(r.Problems, Problem{Kind: k, Path: path, Detail: fmt.Sprintf(format, args...)})
	}
	on := map[string]bool{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			on[p] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	man, err := readManifest(fsys)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			add(ProblemIncomplete, ManifestName, "no manifest: the export did not finish")
		} else {
			add(ProblemMalformed, ManifestName, "%v", err)
		}
		r.finish()
		return nil
	}
	listed := map[string]bool{ManifestName: true, CustodyName: true, SumsName: true}
	for _, f := range man.Files {
		listed[f.Path] = true
		if !on[f.Path] {
			add(ProblemMissing, f.Path, "listed in the manifest, not in the export")
			continue
		}
		r.Files++
		size, s256, m5, err := hashFile(fsys, f.Path)
		switch {
		case err != nil:
			add(ProblemAltered, f.Path, "%v", err)
		case size != f.Size || s256 != f.SHA256 || m5 != f.MD5:
			add(ProblemAltered, f.Path, "size %d sha256 %s, manifest says size %d sha256 %s", size, s256, f.Size, f.SHA256)
		}
		if f.ArchiveSHA256 != "" {
			r.Natives++
			if f.ArchiveSHA256 != f.SHA256 || (err == nil && s256 != f.ArchiveSHA256) {
				add(ProblemNative, f.Path, "sha256 %s, the archive's is %s", s256, f.ArchiveSHA256)
			}
		}
	}
	var extra []string
	for p := range on {
		if !listed[p] {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		add(ProblemExtra, p, "in the export, not in the manifest")
	}
	r.checkSums(fsys, on, add)
	r.checkCustody(fsys, add)
	r.finish()
	return nil
}

func (r *VerifyReport) finish() { r.OK = len(r.Problems) == 0 }

func (r *VerifyReport) checkSums(fsys fs.FS, on map[string]bool, add func(ProblemKind, string, string, ...any)) {
	f, err := fsys.Open(SumsName)
	if err != nil {
		add(ProblemIncomplete, SumsName, "no %s: the export did not finish", SumsName)
		return
	}
	defer f.Close()
	inSums := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			add(ProblemMalformed, SumsName, "line %d is not \"<sha256>  <path>\"", n)
			continue
		}
		inSums[path] = true
		if !on[path] {
			continue // reported as missing against the manifest, or below
		}
		_, s, _, err := hashFile(fsys, path)
		if err == nil && s != sum {
			add(ProblemAltered, path, "sha256 %s, %s says %s", s, SumsName, sum)
		}
	}
	for _, p := range []string{ManifestName, CustodyName} {
		if !inSums[p] {
			add(ProblemMalformed, SumsName, "does not list %s", p)
		}
	}
}

func (r *VerifyReport) checkCustody(fsys fs.FS, add func(ProblemKind, string, string, ...any)) {
	b, err := fs.ReadFile(fsys, CustodyName)
	if err != nil {
		add(ProblemIncomplete, CustodyName, "no custody report")
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	last := lines[len(lines)-1]
	want := ManifestName + " sha256: "
	_, s, _, err := hashFile(fsys, ManifestName)
	if !strings.HasPrefix(last, want) || err != nil || strings.TrimPrefix(last, want) != s {
		add(ProblemAltered, CustodyName, "its last line does not state manifest.json's sha256 %s", s)
	}
}

func hashFile(fsys fs.FS, name string) (int64, string, string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return 0, "", "", err
	}
	defer f.Close()
	s, m := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(s, m), f)
	if err != nil {
		return 0, "", "", err
	}
	return n, hex.EncodeToString(s.Sum(nil)), hex.EncodeToString(m.Sum(nil)), nil
}
