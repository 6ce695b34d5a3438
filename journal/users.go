package journal

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Users are the accounts that may AUTH PLAIN to the journal: a file of
// "name:bcrypt-hash" lines (htpasswd -B writes them; # starts a comment).
// Why a file of its own and not mailvault's users: the package doc.
type Users struct {
	hashes map[string][]byte
}

// LoadUsers reads a users file. Every line is checked: an error names the
// line.
func LoadUsers(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("journal users: %w", err)
	}
	u := &Users{hashes: map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("journal users %s line %d: want name:bcrypt-hash", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("journal users %s line %d (%s): not a bcrypt hash (make one with htpasswd -nB %s): %v", path, n, name, name, err)
		}
		if _, dup := u.hashes[name]; dup {
			return nil, fmt.Errorf("journal users %s line %d: %s appears twice", path, n, name)
		}
		u.hashes[name] = []byte(hash)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("journal users %s: no users", path)
	}
	return u, nil
}

// Check reports whether password is name's.
func (u *Users) Check(name, password string) bool {
	h, ok := u.hashes[name]
	if !ok {
		// The same work for an unknown name, so timing tells nothing: a
		// configured hash's, at its cost (a fixed dummy at bcrypt's
		// minimum cost answered a hundred times faster than a real hash:
		// review of issue 16). Its result is ignored.
		for _, h := range u.hashes {
			bcrypt.CompareHashAndPassword(h, []byte(password))
			break
		}
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}
