package indexer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"mailvault/indexer/store"
)

// File permissions.
//
// A data directory holds whole mailboxes (blobs), every correspondent and
// subject (the catalog) and, beside them, the web's users with their bcrypt
// and token hashes (users.db): nobody but the archive's owner may read any
// of it. Everything mailvault creates there is FileMode (files) or DirMode
// (directories), set with an explicit chmod or an exclusive create with
// that mode, so the process umask cannot loosen it: the data directory,
// blobs/ and its fan-out directories, blob temporary files (os.CreateTemp:
// 0600), the catalog and its -wal and -shm (SQLite gives these the mode of
// the database file), the lock file, and index/ (Bleve makes its directories
// 0700 and its files 0600 except index_meta.json, which is chmodded).
//
// What exists already is not changed behind the operator's back (a data
// directory may be a mount point whose mode is theirs): Open checks it and
// logs one warning per loose path, with the chmod that fixes it.

// FileMode and DirMode are the modes of every file and directory in a data
// directory.
const (
	FileMode = store.FileMode // 0600
	DirMode  = store.DirMode  // 0700
)

// SecureFile makes the file at path FileMode: it creates it empty with that
// mode when it does not exist, and chmods it when it does, so that a SQLite
// database opened on it afterwards (SQLite gives -wal and -shm the mode of
// the database file) is private from the start, whatever the umask. Its -wal
// and -shm, when they exist, are chmodded too. Call it before opening any
// database of the data directory that is not the catalog (the catalog does
// it itself), e.g. service's users.db:
//
//	if err := indexer.SecureFile(filepath.Join(dir, UsersFile)); err != nil { ... }
func SecureFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("secure %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("secure %s: %w", p, err)
		}
	}
	return nil
}

// usersFile is service's users.db (service.UsersFile); the archive only
// checks its mode.
const usersFile = "users.db"

// LoosePath is a path of a data directory that others than its owner may
// read, write or enter, with the command that fixes it.
type LoosePath struct {
	Path string
	Mode fs.FileMode
	Fix  string // e.g. "chmod 600 /data/catalog.db"
}

// CheckPermissions returns every path of the data directory dir looser than
// FileMode or DirMode: the directory itself, blobs/ and its fan-out
// directories (reported once, as a glob), index/, packs/ and ledger/ and
// what they hold, the catalog with its -wal and -shm, users.db with its
// own, the IMAP SEARCH signatures, the layout record and the lock file.
// Individual blob files are not listed (millions; they are made 0600, and
// their 0700 directories keep others out whatever their mode).
func CheckPermissions(dir string) []LoosePath {
	var out []LoosePath
	check := func(p string, want fs.FileMode) {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			return
		}
		if fi.Mode().Perm()&^want != 0 {
			out = append(out, LoosePath{Path: p, Mode: fi.Mode().Perm(), Fix: fmt.Sprintf("chmod %o %s", want, shellQuote(p))})
		}
	}
	check(dir, DirMode)
	blobs := filepath.Join(dir, "blobs")
	check(blobs, DirMode)
	var loose []string
	var widest fs.FileMode
	ents, _ := os.ReadDir(blobs)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().Perm()&^DirMode != 0 {
			loose = append(loose, e.Name())
			widest |= fi.Mode().Perm()
		}
	}
	if len(loose) > 0 {
		sort.Strings(loose)
		p := filepath.Join(blobs, "*")
		if len(loose) == 1 {
			p = filepath.Join(blobs, loose[0])
		}
		out = append(out, LoosePath{Path: p, Mode: widest,
			Fix: fmt.Sprintf("chmod 700 %s/*/ (%d fan-out directories are looser)", shellQuote(blobs), len(loose))})
	}
	// index/, the pack segments and their index (packs/), and the ledger
	// (service's, beside the archive): few files each, all walked.
	for _, name := range []string{indexDirName, layoutDir(LayoutPack), "ledger"} {
		root := filepath.Join(dir, name)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				check(p, DirMode)
			} else {
				check(p, FileMode)
			}
			return nil
		})
	}
	for _, db := range []string{"catalog.db", usersFile} {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			check(filepath.Join(dir, db+suffix), FileMode)
		}
	}
	// The prefilter's signatures hold bits of every message's text.
	for _, f := range []string{"lock", pendingFile, interruptedFile, sigFileName, layoutFileName} {
		check(filepath.Join(dir, f), FileMode)
	}
	return out
}

// warnPermissions logs each loose path of the data directory.
func (a *Archive) warnPermissions() {
	for _, l := range CheckPermissions(a.dir) {
		a.log.Warn("data directory path is readable by others than its owner; it holds mail, the catalog and user credentials",
			"path", l.Path, "mode", fmt.Sprintf("%04o", l.Mode), "fix", l.Fix)
	}
}

// secureIndexMeta chmods what Bleve creates with a umask-dependent mode
// (index_meta.json, 0666 less the umask) in the index directory path.
func secureIndexMeta(path string) error {
	if err := os.Chmod(path, DirMode); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(path, "index_meta.json"), FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == '*' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
