package export

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Zip output: the export is written as a directory beside the target
// (Dir + ".incomplete-zip"), verified, then stored into Dir + ".zip" (via a
// temporary name and a rename, so that a zip that exists is complete), and
// the directory removed. It costs the export's size twice on disk while
// the zip is made; a zip's entries are stored, not compressed (mail is
// mostly text that the receiving side indexes anyway, and natives must come
// out byte for byte).

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
	o.Zip, o.Dir = false, work
	m, err := Write(ctx, src, o)
	if err != nil {
		return nil, err
	}
	if rep, err := Verify(work); err != nil || !rep.OK {
		return nil, fmt.Errorf("export: the export does not verify before zipping: %v %v", rep, err)
	}
	tmp := target + ".tmp"
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
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(work, path)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Store})
		if err != nil {
			return err
		}
		r, err := os.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})
	if err == nil {
		err = zw.Close()
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
	return m, nil
}

// maxZipBytes bounds what verifying a zip unpacks (a zip from elsewhere may
// claim anything).
const maxZipBytes = 1 << 40

// verifyZip unpacks a zipped export into a temporary directory and
// verifies that. An entry that would leave the directory is a problem, and
// nothing is written for it.
func verifyZip(path string) (*VerifyReport, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer zr.Close()
	tmp, err := os.MkdirTemp("", "mailvault-verify-")
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer os.RemoveAll(tmp)
	var bad []Problem
	var total int64
	for _, f := range zr.File {
		name := f.Name
		if !fs.ValidPath(name) || strings.Contains(name, `\`) {
			bad = append(bad, Problem{Kind: ProblemMalformed, Path: name, Detail: "zip entry outside the export"})
			continue
		}
		if strings.HasSuffix(name, "/") {
			continue
		}
		dst := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, err
		}
		rc, err := f.Open()
		if err != nil {
			bad = append(bad, Problem{Kind: ProblemMalformed, Path: name, Detail: err.Error()})
			continue
		}
		w, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("verify: %w", err)
		}
		n, err := io.Copy(w, io.LimitReader(rc, maxZipBytes-total+1))
		rc.Close()
		w.Close()
		if total += n; total > maxZipBytes {
			return nil, errors.New("verify: the zip unpacks to more than 1 TiB")
		}
		if err != nil {
			bad = append(bad, Problem{Kind: ProblemMalformed, Path: name, Detail: err.Error()})
		}
	}
	rep, err := verifyDir(tmp)
	if err != nil {
		return nil, err
	}
	rep.Dir = path
	rep.Problems = append(bad, rep.Problems...)
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}
