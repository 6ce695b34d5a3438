package export

import (
	"archive/zip"
	"context"
	"errors"
	"io"
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
		names[f.Name] = true
	}
	zr.Close()
	filepath.WalkDir(dirOut, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dirOut, p)
			if !names[filepath.ToSlash(rel)] {
				t.Errorf("the zip lacks %s", rel)
			}
		}
		return nil
	})
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
}
