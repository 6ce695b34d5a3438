//go:build !linux

package store

import "os"

// readFile reads the file of k's blob (read_linux.go says why Linux does
// it otherwise).
func (s *Store) readFile(k Key) ([]byte, error) { return os.ReadFile(s.Path(k)) }

func (s *Store) closeDir() {}
