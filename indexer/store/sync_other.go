//go:build !linux

package store

import "os"

const syncfsWorks = false

func syncFS(string) error { return nil }

// renameNoReplace renames old to new unless new exists (fs.ErrExist). Without
// renameat2, a hard link gives the same no-replace guarantee.
func renameNoReplace(old, new string) error {
	if err := os.Link(old, new); err != nil {
		return err
	}
	return os.Remove(old)
}
