package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncfsWorks: on Linux one syncfs(2) flushes every file and directory of the
// store's filesystem, so a batch costs two of them instead of an fsync per
// blob and per directory.
const syncfsWorks = true

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// renameNoReplace renames old to new unless new exists (fs.ErrExist).
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}
