package service

import (
	"testing"

	"mailvault/indexer"
)

// newArchive opens a new archive and its user store in a temporary
// directory, both closed when the test ends.
func newArchive(t *testing.T) (*indexer.Archive, *Users) {
	t.Helper()
	a, err := indexer.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	users, err := OpenUsers(a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	return a, users
}
