package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// User is a person or script allowed in through the web UI or the API.
type User struct {
	Name     string   `json:"name"`
	Role     Role     `json:"role"`
	Accounts []string `json:"accounts"` // for RoleUser: the archive accounts they may see
}

// Caller is u asking from remote.
func (u *User) Caller(remote string) Caller {
	return Caller{Name: u.Name, Role: u.Role, Accounts: u.Accounts, Remote: remote}
}

// UsersFile is the user store's file in the data directory.
const UsersFile = "users.db"

// Users is the user, token and audit store: users.db in the data
// directory, beside (not inside) the archive's catalog. It is safe for
// concurrent use, also by several processes (`mailvault user` beside serve).
type Users struct {
	db *sql.DB
}

const usersSchema = `
CREATE TABLE IF NOT EXISTS users (
	name     TEXT PRIMARY KEY,
	hash     TEXT NOT NULL,          -- bcrypt
	role     TEXT NOT NULL,
	accounts TEXT NOT NULL DEFAULT '' -- comma-separated, for role user
);
CREATE TABLE IF NOT EXISTS tokens (
	hash    TEXT PRIMARY KEY,        -- hex sha256 of the token
	user    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (  -- who did what, when: logins, searches, reads, downloads
	id     INTEGER PRIMARY KEY,
	at     TEXT NOT NULL,
	user   TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL,
	remote TEXT NOT NULL
);
`

// OpenUsers opens (creating when needed) the user store of data directory dir.
func OpenUsers(dir string) (*Users, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, UsersFile)+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	if _, err := db.Exec(usersSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("users: %s: %w", filepath.Join(dir, UsersFile), err)
	}
	return &Users{db: db}, nil
}

// Close closes the store.
func (s *Users) Close() error { return s.db.Close() }

// ErrNoUser is returned for a user that does not exist.
var ErrNoUser = errors.New("no such user")

// ErrBadLogin is returned for a wrong name, password or token; it does not
// say which.
var ErrBadLogin = errors.New("wrong user name or password")

func validRole(role Role) error {
	switch role {
	case RoleAdmin, RoleAuditor, RoleUser:
		return nil
	}
	return fmt.Errorf("role %q: want admin, auditor or user", role)
}

// Add creates a user.
func (s *Users) Add(ctx context.Context, u User, password string) error {
	if u.Name == "" || strings.ContainsAny(u.Name, ",: \t\n") {
		return fmt.Errorf("user name %q: want a name without spaces, commas or colons", u.Name)
	}
	if err := validRole(u.Role); err != nil {
		return err
	}
	if u.Role == RoleUser && len(u.Accounts) == 0 {
		return fmt.Errorf("user %q: a user needs at least one account (--account)", u.Name)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO users(name, hash, role, accounts) VALUES (?,?,?,?)`,
		u.Name, hash, u.Role, strings.Join(u.Accounts, ","))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return fmt.Errorf("user %q exists already (mailvault user passwd changes a password)", u.Name)
	}
	return err
}

func hashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("password: at least 8 characters")
	}
	if len(password) > 72 {
		return "", errors.New("password: at most 72 bytes (bcrypt)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	return string(h), err
}

// SetPassword replaces a user's password.
func (s *Users) SetPassword(ctx context.Context, name, password string) error {
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE users SET hash = ? WHERE name = ?`, hash, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %q: %w", name, ErrNoUser)
	}
	return nil
}

// Remove deletes a user and their tokens.
func (s *Users) Remove(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %q: %w", name, ErrNoUser)
	}
	return nil
}

// List returns every user.
func (s *Users) List(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, accounts FROM users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var accounts string
		if err := rows.Scan(&u.Name, &u.Role, &accounts); err != nil {
			return nil, err
		}
		u.Accounts = splitAccounts(accounts)
		out = append(out, u)
	}
	return out, rows.Err()
}

func splitAccounts(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// Get returns a user.
func (s *Users) Get(ctx context.Context, name string) (*User, error) {
	var u User
	var accounts string
	err := s.db.QueryRowContext(ctx, `SELECT name, role, accounts FROM users WHERE name = ?`, name).Scan(&u.Name, &u.Role, &accounts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", name, ErrNoUser)
	}
	if err != nil {
		return nil, err
	}
	u.Accounts = splitAccounts(accounts)
	return &u, nil
}

// Login checks a name and password.
func (s *Users) Login(ctx context.Context, name, password string) (*User, error) {
	var hash string
	err := s.db.QueryRowContext(ctx, `SELECT hash FROM users WHERE name = ?`, name).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the time a real check takes, so that timing does not tell
		// which names exist.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return nil, ErrBadLogin
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, ErrBadLogin
	}
	return s.Get(ctx, name)
}

// dummyHash is a bcrypt hash of cost 12 that no password matches.
var dummyHash = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	h, _ := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(b)[:60]), 12)
	return h
})

// NewToken makes an API token for a user: 32 random bytes, shown once;
// only its sha256 is kept.
func (s *Users) NewToken(ctx context.Context, name string) (string, error) {
	if _, err := s.Get(ctx, name); err != nil {
		return "", err
	}
	b := make([]byte, 32)
	rand.Read(b)
	token := "mvt_" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens(hash, user, created) VALUES (?,?,?)`,
		hex.EncodeToString(sum[:]), name, time.Now().UTC().Format(time.RFC3339))
	return token, err
}

// TokenUser returns the user a token belongs to.
func (s *Users) TokenUser(ctx context.Context, token string) (*User, error) {
	sum := sha256.Sum256([]byte(token))
	var name string
	err := s.db.QueryRowContext(ctx, `SELECT user FROM tokens WHERE hash = ?`, hex.EncodeToString(sum[:])).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrBadLogin
	}
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

// AuditEntry is one line of the audit trail.
type AuditEntry struct {
	At     string `json:"at"`
	User   string `json:"user"`
	Action string `json:"action"` // login, login-failed, search, read, download, status
	Detail string `json:"detail"`
	Remote string `json:"remote"`
}

// Audit records what a user did.
func (s *Users) Audit(ctx context.Context, e AuditEntry) error {
	if e.At == "" {
		e.At = time.Now().UTC().Format(time.RFC3339Nano)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit(at, user, action, detail, remote) VALUES (?,?,?,?,?)`,
		e.At, e.User, e.Action, e.Detail, e.Remote)
	return err
}

// AuditTrail returns the last n audit entries, oldest first.
func (s *Users) AuditTrail(ctx context.Context, n int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, user, action, detail, remote FROM
		(SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.At, &e.User, &e.Action, &e.Detail, &e.Remote); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
