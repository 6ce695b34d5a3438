package export

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Zip output: the natives and texts (and EML files) go straight into the
// zip as the export makes them, in the export's order, so that a zipped
// production creates one file on disk instead of one per document (file
// creation is most of a directory export's time: docs/benchmarks.md). What
// is written as it goes (the load files, the mbox, the manifest's working
// files) is kept in a working directory beside the target (Dir +
// ".incomplete-zip") and added at the end, after which the working
// directory is removed. The zip is written under a temporary name, synced
// and renamed, so that a zip that exists is complete. Its entries are
// stored, not compressed: mail is mostly text that the receiving side
// indexes anyway, and natives must come out byte for byte. Every file's
// hashes are taken from the very bytes handed to the zip; Verify checks
// the zip afterwards without unpacking it.

// writeZip writes the export of src into o.Dir + ".zip".
func writeZip(ctx context.Context, src Source, o Options) (*Manifest, error) {
	target := o.Dir + ".zip"
	if _, err := os.Stat(target); err == nil {
		return nil, fmt.Errorf("export: %s: %w", target, ErrNotEmpty)
	}
	work := o.Dir + ".incomplete-zip"
	if err := os.RemoveAll(work); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(work)
	if err := prepareDir(work); err != nil {
		return nil, err
	}
	tmp := target + ".tmp"
	// A temporary zip is what an export killed part-way left (it lives as
	// long as the export, and has no central directory): like the working
	// directory above, it is this target's own and is made again.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("export: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	o.Zip, o.Dir = false, work
	w := newWriter(o)
	w.zw = zip.NewWriter(bw)
	if err := w.run(ctx, src); err != nil {
		w.abort()
		return nil, err
	}
	// The files made as the export went, now complete: everything left in
	// the working directory.
	err = filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(work, path)
		if err != nil {
			return err
		}
		e, err := w.zw.CreateHeader(&zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Store})
		if err != nil {
			return err
		}
		return copyInto(e, path)
	})
	if err == nil {
		err = w.zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, target)
	}
	if err != nil {
		return nil, fmt.Errorf("export: zip %s: %w", target, err)
	}
	ok = true
	return w.man, nil
}

// verifyZip verifies a zipped export where it is, entry by entry, without
// unpacking it. An entry whose name would leave the export, and a name
// that appears twice (only one of the two could be checked), are problems
// of their own.
func verifyZip(path string) (*VerifyReport, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer zr.Close()
	r := &VerifyReport{Dir: path}
	seen := map[string]bool{}
	for _, f := range zr.File {
		name := f.Name
		switch {
		case strings.HasSuffix(name, "/") && fs.ValidPath(strings.TrimSuffix(name, "/")):
			continue // a folder
		case !fs.ValidPath(name) || strings.Contains(name, `\`):
			r.Problems = append(r.Problems, Problem{Kind: ProblemMalformed, Path: name, Detail: "zip entry outside the export"})
		case seen[name]:
			r.Problems = append(r.Problems, Problem{Kind: ProblemMalformed, Path: name, Detail: "zip entry appears twice"})
		}
		seen[name] = true
	}
	if slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Detail == "zip entry appears twice" }) {
		// A zip's files cannot be read by name when a name is given twice.
		r.finish()
		return r, nil
	}
	if err := r.check(zr); err != nil {
		return nil, err
	}
	return r, nil
}
