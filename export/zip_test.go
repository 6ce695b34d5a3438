package export

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestZip: a zipped export holds the same files as a directory export of
// the same source, verifies, and fails verification when a native in it is
// altered or an entry points outside; an existing zip is not overwritten.
func TestZip(t *testing.T) {
	src := &memSource{msgs: corpus()}
	dirOut, _ := write(t, src, Options{})
	base := filepath.Join(t.TempDir(), "prod")
	if _, err := Write(context.Background(), src, Options{Dir: base, Zip: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base + ".incomplete-zip"); err == nil {
		t.Error("the working directory is left behind")
	}
	rep, err := Verify(base + ".zip")
	if err != nil || !rep.OK {
		t.Fatalf("Verify(zip): %+v %v", rep, err)
	}
	zr, err := zip.OpenReader(base + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		if names[f.Name] {
			t.Errorf("the zip has %s twice", f.Name)
		}
		names[f.Name] = true
	}
	// Every file but the three that state times (the manifest, custody.txt
	// and the sums over them) is byte for byte the directory export's.
	n := 0
	filepath.WalkDir(dirOut, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dirOut, p)
		rel = filepath.ToSlash(rel)
		if !names[rel] {
			t.Errorf("the zip lacks %s", rel)
			return nil
		}
		delete(names, rel)
		if rel == ManifestName || rel == CustodyName || rel == SumsName {
			return nil
		}
		want, _ := os.ReadFile(p)
		got, err := fs.ReadFile(zr, rel)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs in the zip (%v)", rel, err)
		}
		n++
		return nil
	})
	zr.Close()
	if len(names) > 0 || n < 10 {
		t.Errorf("the zip has files the directory lacks: %v (%d compared)", names, n)
	}
	if _, err := Write(context.Background(), src, Options{Dir: base, Zip: true}); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("zip over an existing one: %v", err)
	}
	// A zip with an altered native and an entry outside the export.
	bad := filepath.Join(t.TempDir(), "bad.zip")
	in, _ := zip.OpenReader(base + ".zip")
	f, _ := os.Create(bad)
	zw := zip.NewWriter(f)
	altered := false
	for _, e := range in.File {
		rc, _ := e.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !altered && filepath.Ext(e.Name) == ".eml" && len(b) > 10 {
			b[5] ^= 1
			altered = true
		}
		w, _ := zw.Create(e.Name)
		w.Write(b)
	}
	w, _ := zw.Create("../escape.txt")
	w.Write([]byte("x"))

	zw.Close()
	f.Close()
	in.Close()
	rep, err = Verify(bad)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[ProblemKind]bool{}
	for _, p := range rep.Problems {
		kinds[p.Kind] = true
	}
	if rep.OK || !kinds[ProblemMalformed] || !(kinds[ProblemAltered] || kinds[ProblemNative]) {
		t.Errorf("Verify of a bad zip: %+v", rep.Problems)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bad), "escape.txt")); err == nil {
		t.Error("verifying wrote outside its directory")
	}
	// A zip that gives a name twice: only one of the two could be read.
	dup := filepath.Join(t.TempDir(), "dup.zip")
	in, _ = zip.OpenReader(base + ".zip")
	defer in.Close()
	f, _ = os.Create(dup)
	zw = zip.NewWriter(f)
	for _, e := range append(in.File, in.File[0]) {
		rc, _ := e.Open()
		w, _ := zw.Create(e.Name)
		io.Copy(w, rc)
		rc.Close()
	}
	zw.Close()
	f.Close()
	rep, err = Verify(dup)
	if err != nil || rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Path != in.File[0].Name {
		t.Errorf("Verify of a zip with a name twice: %+v %v", rep, err)
	}
}
