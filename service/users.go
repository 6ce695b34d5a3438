package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"mailvault/indexer"
	"mailvault/ledger"

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
	// log is the archive's ledger: every audit row is appended to it by
	// the writer, at once (ledger.go), never followed from the table.
	log *ledger.Log
	// by, when set (As), is who makes the changes: each change and its
	// audit row are one transaction.
	by *Caller
	// reads writes the audit rows of bulk reads (AuditRead); nil: they go
	// through db like any other row.
	reads *readAudit
	// journal records them first (auditjournal.go); nil when another
	// process holds it: they go through reads.
	journal *auditJournal
	// logins skips the bcrypt check of a login that passed it lately.
	logins *loginCache
}

// readAudit is a second handle on users.db for the audit rows of bulk
// reads (the IMAP view's FETCHes: mbsync pulls a mailbox one message per
// command), with synchronous(NORMAL) instead of FULL. Each row is still
// written, through SQLite's WAL, before the read it records is answered,
// so a refused write refuses the read (fail closed) and a crash of the
// process loses nothing; what it does not do is fsync each row. The WAL is
// synced by a checkpoint at most readAuditSync after a row (SQLite syncs
// the WAL before every checkpoint in NORMAL mode), and on Close: a power
// loss can lose the read rows of the last second, as it can the ledger's
// leaves, which are not synced one by one either (ledger.Log.Append). One
// fsync per FETCH made a 6,046-message pull 4.3 s instead of 2.4 s
// (docs/benchmarks.md, "IMAP view").
type readAudit struct {
	db      *sql.DB
	mu      sync.Mutex
	pending bool
	closed  bool
}

// readAuditSync is how long an unsynced read audit row may wait.
const readAuditSync = time.Second

// As returns the store whose changes (Add, SetPassword, Remove, NewToken,
// RevokeToken) are recorded in the audit trail as made by c, in the same
// transaction as the change: a change that cannot be audited is not made
// (fail closed), and none is audited that was not made. The view shares
// the store's database: close the store, not the view.
func (s *Users) As(c Caller) *Users {
	return &Users{db: s.db, log: s.log, by: &c, reads: s.reads, journal: s.journal, logins: s.logins}
}

// change runs f in one transaction and, for a store made by As, adds the
// audit row of action (detail computed after f, which may fill it in).
func (s *Users) change(ctx context.Context, action string, detail func() string, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	var id int64
	var e AuditEntry
	if s.by != nil {
		var err error
		if id, e, err = insertAudit(ctx, tx, AuditEntry{User: s.by.Name, Action: action, Detail: detail(), Remote: s.by.Remote}); err != nil {
			return fmt.Errorf("the audit trail cannot be written, so nothing was changed: %w", err)
		}
	}
	if s.log == nil {
		return tx.Commit()
	}
	// The ledger gets the audit entry and the users' and tokens' new state
	// (ledger.KindState), appended as the change commits: a role, password
	// or token changed in users.db any other way then shows.
	digest, err := usersDigest(ctx, tx)
	if err != nil {
		return err
	}
	state := ledger.Leaf{Kind: ledger.KindState, ID: id, Name: UsersState, SHA256: digest, At: time.Now().UTC().Format(time.RFC3339Nano)}
	leaves := []ledger.Leaf{state}
	if s.by != nil {
		leaves = []ledger.Leaf{auditLeaf(id, e), state}
	}
	return s.log.CommitAndAppend(tx.Commit, leaves...)
}

// UsersState names the users' and tokens' state in the ledger.
const UsersState = "users"

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// usersDigest is the ledger's digest of the users and tokens tables: every
// user's name, role and accounts and the sha256 of its password hash, every
// token's hash, user and expiry. Sessions are not in it (they change at
// every login; a session is only as good as its cookie's secret).
func usersDigest(ctx context.Context, q querier) (string, error) {
	var rows [][]string
	for _, t := range []struct{ kind, sql string }{
		{"user", `SELECT name, role, accounts, hash FROM users`},
		{"token", `SELECT hash, user, created, expires FROM tokens`},
	} {
		rs, err := q.QueryContext(ctx, t.sql)
		if err != nil {
			return "", err
		}
		for rs.Next() {
			var a, b, c, d string
			if err := rs.Scan(&a, &b, &c, &d); err != nil {
				rs.Close()
				return "", err
			}
			if t.kind == "user" {
				sum := sha256.Sum256([]byte(d))
				d = hex.EncodeToString(sum[:])
			}
			rows = append(rows, []string{t.kind, a, b, c, d})
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return "", err
		}
	}
	return ledger.StateDigest(rows), nil
}

// LedgerStates gives the users' and tokens' digest (ledger.StateSource).
func (s *Users) LedgerStates(ctx context.Context) (map[string]string, error) {
	d, err := usersDigest(ctx, s.db)
	if err != nil {
		return nil, err
	}
	return map[string]string{UsersState: d}, nil
}

const usersSchema = `
CREATE TABLE IF NOT EXISTS users (
	name     TEXT PRIMARY KEY,
	hash     TEXT NOT NULL,          -- bcrypt
	role     TEXT NOT NULL,
	accounts TEXT NOT NULL DEFAULT '' -- comma-separated, for role user
);
CREATE TABLE IF NOT EXISTS tokens (
	hash    TEXT PRIMARY KEY,        -- hex sha256 of the token; its first 12 digits are the token's id
	user    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions ( -- web UI sessions; the cookie holds the secret, this its sha256
	hash    TEXT PRIMARY KEY,
	user    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	created TEXT NOT NULL,
	expires TEXT NOT NULL            -- RFC 3339 UTC
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
	// Hashes of passwords and tokens, and the audit trail: for the
	// archive's owner only (0600, made so before SQLite creates it).
	if err := indexer.SecureFile(filepath.Join(dir, UsersFile)); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, UsersFile)+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	if _, err := db.Exec(usersSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("users: %s: %w", filepath.Join(dir, UsersFile), err)
	}
	// Version 1: tokens expire.
	var version int
	db.QueryRow(`PRAGMA user_version`).Scan(&version)
	if version < 1 {
		if _, err := db.Exec(`ALTER TABLE tokens ADD COLUMN expires TEXT NOT NULL DEFAULT ''; PRAGMA user_version = 1`); err != nil &&
			!strings.Contains(err.Error(), "duplicate column") {
			db.Close()
			return nil, fmt.Errorf("users: %s: upgrade: %w", filepath.Join(dir, UsersFile), err)
		}
	}
	if err := indexer.SecureFile(filepath.Join(dir, UsersFile)); err != nil { // and its -wal, -shm
		db.Close()
		return nil, fmt.Errorf("users: %w", err)
	}
	reads, err := sql.Open("sqlite", "file:"+filepath.Join(dir, UsersFile)+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("users: %w", err)
	}
	log, err := ledger.Open(filepath.Join(dir, LedgerDir))
	if err != nil {
		db.Close()
		reads.Close()
		return nil, fmt.Errorf("users: the ledger: %w", err)
	}
	u := &Users{db: db, log: log, reads: &readAudit{db: reads}, logins: newLoginCache()}
	if u.journal, err = openAuditJournal(context.Background(), dir, reads, log); err != nil {
		u.Close()
		return nil, fmt.Errorf("users: the bulk-read audit journal: %w", err)
	}
	return u, nil
}

// AuditRead records a read of mail that comes in bulk (the IMAP view's
// FETCH, one row per command) like Audit, in the bulk-read journal
// (auditjournal.go says why and what it keeps), or, when another process
// holds the journal, through the read handle: written before the read is
// answered, synced within readAuditSync (readAudit says why).
func (s *Users) AuditRead(ctx context.Context, e AuditEntry) error {
	if j := s.journal; j != nil {
		return j.add(ctx, cleanAudit(e))
	}
	r := s.reads
	if r == nil {
		return s.Audit(ctx, e)
	}
	id, e, err := insertAudit(ctx, r.db, e)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if !r.pending && !r.closed {
		r.pending = true
		time.AfterFunc(readAuditSync, r.sync)
	}
	r.mu.Unlock()
	return s.ledgerAudit(id, e)
}

// sync checkpoints the WAL, which syncs it first.
func (r *readAudit) sync() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = false
	if !r.closed {
		r.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

func (r *readAudit) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	return r.db.Close()
}

// Close closes the store.
func (s *Users) Close() error {
	if s.journal != nil {
		if err := s.journal.close(); err != nil {
			slog.Error("users: closing the bulk-read audit journal", "err", err)
		}
	}
	if s.reads != nil {
		s.reads.close()
	}
	if s.log != nil {
		s.log.Close()
	}
	return s.db.Close()
}

// ErrNoUser is returned for a user that does not exist.
var ErrNoUser = errors.New("no such user")

// ErrBadLogin is returned for a wrong name, password or token; it does not
// say which.
var ErrBadLogin = errors.New("wrong user name or password")

func validRole(role Role) error {
	switch role {
	case RoleAdmin, RoleAuditor, RoleLegal, RoleUser:
		return nil
	}
	return fmt.Errorf("role %q: want admin, auditor, legal or user", role)
}

// MaxNameBytes bounds a user name (and what a login form may send as one).
const MaxNameBytes = 64

// validName: printable, no separators, bounded.
func validName(name string) error {
	if name == "" || len(name) > MaxNameBytes || strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == ',' || r == ':' || r == '|'
	}) {
		return fmt.Errorf("user name %q: want 1 to %d bytes without spaces, control characters, commas, colons or bars", auditText(name), MaxNameBytes)
	}
	return nil
}

// Add creates a user.
func (s *Users) Add(ctx context.Context, u User, password string) error {
	if err := validName(u.Name); err != nil {
		return err
	}
	if err := validRole(u.Role); err != nil {
		return err
	}
	if u.Role == RoleUser && len(u.Accounts) == 0 {
		return fmt.Errorf("user %q: a user needs at least one account (--account)", u.Name)
	}
	for _, a := range u.Accounts {
		// An empty account name would be stored as no account at all: a
		// user with a scope of nothing that reads as "every account" to
		// careless code. Refuse it.
		if a == "" || strings.ContainsAny(a, ",\x00") {
			return fmt.Errorf("user %q: account %q: want a non-empty name without commas", u.Name, a)
		}
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	detail := func() string {
		return fmt.Sprintf("%s role %s accounts %s", u.Name, u.Role, strings.Join(u.Accounts, ","))
	}
	return s.change(ctx, ActionUserAdd, detail, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users(name, hash, role, accounts) VALUES (?,?,?,?)`,
			u.Name, hash, u.Role, strings.Join(u.Accounts, ","))
		if err != nil && strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("user %q exists already (mailvault user passwd changes a password)", u.Name)
		}
		return err
	})
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

// SetPassword replaces a user's password and ends every session and token
// of theirs: whoever knew the old password may have made them.
func (s *Users) SetPassword(ctx context.Context, name, password string) error {
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return s.change(ctx, ActionUserPasswd, func() string { return name }, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET hash = ? WHERE name = ?`, hash, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %q: %w", name, ErrNoUser)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user = ?`, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE user = ?`, name)
		return err
	})
}

// Remove deletes a user and their tokens.
func (s *Users) Remove(ctx context.Context, name string) error {
	return s.change(ctx, ActionUserRemove, func() string { return name }, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %q: %w", name, ErrNoUser)
		}
		return nil
	})
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
	if k, ok := s.logins.seen(name, password, hash); !ok {
		if checkPassword([]byte(hash), []byte(password)) != nil {
			return nil, ErrBadLogin
		}
		s.logins.add(k)
	}
	return s.Get(ctx, name)
}

// checkPassword is bcrypt's check (a variable for the tests that count it).
var checkPassword = bcrypt.CompareHashAndPassword

// loginCache remembers, for loginCacheTTL, the logins whose bcrypt check
// passed, so that the same name, password and stored hash again skip it.
//
// Decision. A bcrypt check of cost 12 is about a quarter of a second of
// CPU, once per connection: a mail client opens several connections to the
// IMAP view and reconnects all day, and a script that pulls mail logs in
// per run (about 0.25 s of the 1.6 s the view took for mbsync's pull of
// the corpus). Dovecot has the same cache (auth_cache_size, off unless
// set; auth_cache_ttl, one hour by default). What it keeps:
//   - only logins that passed: a wrong password always costs the full
//     check, so guessing is no faster and the cache's size is not an
//     attacker's to grow (at most loginCacheMax entries, dropped when full);
//   - an HMAC-SHA256, under a key made at random when the store is opened
//     and never written anywhere, of the name, the password and the stored
//     bcrypt hash: a password change, or the user removed, misses (the
//     hash is read from users.db at every login, as before), and another
//     process's store has its own cache;
//   - the lockout (LoginGuard) is applied before the check either way.
//
// What it costs: someone who can read this process's memory can test
// guesses against the cached entries at HMAC speed instead of bcrypt's,
// for loginCacheTTL; such a reader sees the passwords of the logins as
// they happen too.
type loginCache struct {
	mu  sync.Mutex
	key [32]byte
	m   map[[32]byte]time.Time
}

const (
	loginCacheTTL = 15 * time.Minute
	loginCacheMax = 4096
)

func newLoginCache() *loginCache {
	c := &loginCache{m: map[[32]byte]time.Time{}}
	rand.Read(c.key[:])
	return c
}

func (c *loginCache) sum(name, password, hash string) [32]byte {
	mac := hmac.New(sha256.New, c.key[:])
	for _, s := range []string{name, password, hash} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		mac.Write(n[:])
		mac.Write([]byte(s))
	}
	var out [32]byte
	mac.Sum(out[:0])
	return out
}

// seen reports whether the login is remembered, and its entry's key for
// add.
func (c *loginCache) seen(name, password, hash string) ([32]byte, bool) {
	if c == nil {
		return [32]byte{}, false
	}
	k := c.sum(name, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[k]
	if ok && time.Now().After(exp) {
		delete(c.m, k)
		return k, false
	}
	return k, ok
}

// add remembers the login of key k (seen's).
func (c *loginCache) add(k [32]byte) {
	if c == nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= loginCacheMax {
		for k, exp := range c.m {
			if now.After(exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= loginCacheMax {
			clear(c.m)
		}
	}
	c.m[k] = now.Add(loginCacheTTL)
}

// dummyHash is a bcrypt hash of cost 12 that no password matches.
var dummyHash = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	h, _ := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(b)[:60]), 12)
	return h
})

// DefaultTokenTTL is how long an API token lives unless asked otherwise.
const DefaultTokenTTL = 90 * 24 * time.Hour

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID      string `json:"id"` // the first 12 hex digits of its sha256: `mailvault user revoke ID`
	User    string `json:"user"`
	Created string `json:"created"`
	Expires string `json:"expires"` // "" for a token made before tokens expired: it never does
}

// NewToken makes an API token for a user that expires after ttl (0:
// DefaultTokenTTL): 32 random bytes, shown once; only its sha256 is kept.
func (s *Users) NewToken(ctx context.Context, name string, ttl time.Duration) (token string, info TokenInfo, err error) {
	if _, err := s.Get(ctx, name); err != nil {
		return "", info, err
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	b := make([]byte, 32)
	rand.Read(b)
	token = "mvt_" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	now := time.Now().UTC()
	info = TokenInfo{ID: hex.EncodeToString(sum[:])[:12], User: name, Created: now.Format(time.RFC3339),
		Expires: now.Add(ttl).Format(time.RFC3339)}
	err = s.change(ctx, ActionTokenAdd, func() string { return info.ID + " for " + info.User + " expires " + info.Expires }, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens(hash, user, created, expires) VALUES (?,?,?,?)`,
			hex.EncodeToString(sum[:]), name, info.Created, info.Expires)
		return err
	})
	if err != nil {
		return "", TokenInfo{}, err
	}
	return token, info, nil
}

// Tokens lists the tokens of a user ("" for everyone's).
func (s *Users) Tokens(ctx context.Context, name string) ([]TokenInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT substr(hash, 1, 12), user, created, expires FROM tokens
		WHERE ? = '' OR user = ? ORDER BY user, created`, name, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TokenInfo
	for rows.Next() {
		var t TokenInfo
		if err := rows.Scan(&t.ID, &t.User, &t.Created, &t.Expires); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ErrNoToken is returned for a token id that names no token.
var ErrNoToken = errors.New("no such token")

// RevokeToken deletes the token whose id (TokenInfo.ID) is id.
func (s *Users) RevokeToken(ctx context.Context, id string) (TokenInfo, error) {
	var t TokenInfo
	if len(id) != 12 || strings.Trim(id, "0123456789abcdef") != "" {
		return t, fmt.Errorf("token id %q: want the 12 hex digits `mailvault user tokens` shows", auditText(id))
	}
	err := s.change(ctx, ActionTokenRevoke, func() string { return t.ID + " of " + t.User }, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM tokens WHERE substr(hash, 1, 12) = ? RETURNING substr(hash, 1, 12), user, created, expires`, id).
			Scan(&t.ID, &t.User, &t.Created, &t.Expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("token %s: %w", id, ErrNoToken)
		}
		return err
	})
	return t, err
}

// TokenUser returns the user a token belongs to, if it has not expired.
func (s *Users) TokenUser(ctx context.Context, token string) (*User, error) {
	if len(token) > 128 {
		return nil, ErrBadLogin
	}
	sum := sha256.Sum256([]byte(token))
	var name, expires string
	err := s.db.QueryRowContext(ctx, `SELECT user, expires FROM tokens WHERE hash = ?`, hex.EncodeToString(sum[:])).Scan(&name, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrBadLogin
	}
	if err != nil {
		return nil, err
	}
	if expires != "" && expires <= time.Now().UTC().Format(time.RFC3339) {
		return nil, ErrBadLogin
	}
	return s.Get(ctx, name)
}

// NewSession starts a web session for a user, valid for ttl, and returns
// its secret (the cookie's value); only its sha256 is kept. Expired
// sessions are deleted on the way.
func (s *Users) NewSession(ctx context.Context, name string, ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	secret := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))
	now := time.Now().UTC()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, now.Format(time.RFC3339)); err != nil {
		return "", err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions(hash, user, created, expires) VALUES (?,?,?,?)`,
		hex.EncodeToString(sum[:]), name, now.Format(time.RFC3339), now.Add(ttl).Format(time.RFC3339))
	return secret, err
}

// SessionUser returns the user of a live session.
func (s *Users) SessionUser(ctx context.Context, secret string) (*User, error) {
	if len(secret) > 128 {
		return nil, ErrBadLogin
	}
	sum := sha256.Sum256([]byte(secret))
	var name string
	err := s.db.QueryRowContext(ctx, `SELECT user FROM sessions WHERE hash = ? AND expires > ?`,
		hex.EncodeToString(sum[:]), time.Now().UTC().Format(time.RFC3339)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrBadLogin
	}
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

// EndSession ends a session (logout).
func (s *Users) EndSession(ctx context.Context, secret string) error {
	sum := sha256.Sum256([]byte(secret))
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hex.EncodeToString(sum[:]))
	return err
}

// AuditEntry is one line of the audit trail.
type AuditEntry struct {
	// ID is the row's id: increasing, never reused, the order of the trail
	// (and the ledger's). Audit ignores it.
	ID     int64  `json:"id"`
	At     string `json:"at"` // RFC 3339, UTC, with fractions
	User   string `json:"user"`
	Action string `json:"action"` // one of the Action constants (audit.go)
	Detail string `json:"detail"`
	Remote string `json:"remote"`
}

// Audit records what a user did. Every field is kept on one line and
// bounded (auditText): the trail never stores unbounded attacker input, and
// a newline in a name or a query cannot forge a line of the text trail.
//
// The row is then appended to the ledger as a leaf, before Audit returns
// (fail closed: an entry that cannot be ledgered fails the action). The
// writer appends it, not a follower of the table: a row inserted into the
// table by anything else has no leaf, and `ledger verify` names it.
func (s *Users) Audit(ctx context.Context, e AuditEntry) error {
	if err := s.flushReads(ctx); err != nil {
		return err
	}
	id, e, err := insertAudit(ctx, s.db, e)
	if err != nil {
		return err
	}
	return s.ledgerAudit(id, e)
}

// ledgerAudit appends audit row id to the ledger. The audit row itself is
// synced by SQLite; the leaf is written, not synced (the ledger's regular
// syncs and checkpoints put it on disk).
func (s *Users) ledgerAudit(id int64, e AuditEntry) error {
	if s.log == nil {
		return nil
	}
	_, err := s.log.Append([][]byte{auditLeaf(id, e).Encode()}, false)
	return err
}

func auditLeaf(id int64, e AuditEntry) ledger.Leaf {
	return ledger.Leaf{Kind: ledger.KindAudit, ID: id, At: e.At, User: e.User, Action: e.Action, Detail: e.Detail, Remote: e.Remote}
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// flushReads moves the bulk-read rows the journal holds into the table, so
// that a row written or read after them sees them in order.
func (s *Users) flushReads(ctx context.Context) error {
	if s.journal == nil {
		return nil
	}
	return s.journal.flush(ctx)
}

// cleanAudit is e bounded and cleaned, with its time.
func cleanAudit(e AuditEntry) AuditEntry {
	if e.At == "" {
		e.At = time.Now().UTC().Format(time.RFC3339Nano)
	}
	e.User, e.Action, e.Detail, e.Remote = auditText(e.User), auditText(e.Action), auditText(e.Detail), auditText(e.Remote)
	return e
}

// insertAudit inserts e, bounded and cleaned, and returns its id and the
// entry as stored.
func insertAudit(ctx context.Context, db execer, e AuditEntry) (int64, AuditEntry, error) {
	e = cleanAudit(e)
	id, err := insertCleanAudit(ctx, db, e)
	return id, e, err
}

const insertAuditSQL = `INSERT INTO audit(at, user, action, detail, remote) VALUES (?,?,?,?,?)`

// insertCleanAudit inserts e as it is (cleanAudit has made it) and returns
// its id.
func insertCleanAudit(ctx context.Context, db execer, e AuditEntry) (int64, error) {
	res, err := db.ExecContext(ctx, insertAuditSQL,
		e.At, e.User, e.Action, e.Detail, e.Remote)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// AuditTrail returns the last n audit entries, oldest first.
func (s *Users) AuditTrail(ctx context.Context, n int) ([]AuditEntry, error) {
	out, err := s.AuditQuery(ctx, AuditFilter{Limit: n})
	slices.Reverse(out)
	return out, err
}

// AuditQuery returns the entries f selects, newest (highest id) first,
// at most f.Limit (0: DefaultAuditLimit), unchecked: Service.AuditTrail
// applies who may read them.
//
// Times are compared exactly, to the nanosecond: a row's at is RFC 3339 in
// UTC with the fraction's trailing zeros cut (time.RFC3339Nano, written by
// Audit), which does not sort as text ("10:00:00Z" > "10:00:00.5Z") and
// which SQLite's date functions read to the millisecond only; auditAtKey
// pads it to a fixed width that sorts as text, the filter's bounds are
// written the same way.
func (s *Users) AuditQuery(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if err := s.flushReads(ctx); err != nil {
		return nil, err
	}
	where, args := []string{"1"}, []any{}
	if f.User != "" {
		where, args = append(where, "user = ?"), append(args, f.User)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, auditAtKey+" >= ?"), append(args, f.Since.UTC().Format(auditKeyLayout))
	}
	if !f.Until.IsZero() {
		where, args = append(where, auditAtKey+" < ?"), append(args, f.Until.UTC().Format(auditKeyLayout))
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, user, action, detail, remote FROM audit WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.User, &e.Action, &e.Detail, &e.Remote); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// auditAtKey is a row's at as "2006-01-02T15:04:05.000000000" (auditKeyLayout).
const auditAtKey = `(substr(at, 1, 19) || '.' || substr(CASE WHEN substr(at, 20, 1) = '.' THEN rtrim(substr(at, 21), 'Z') ELSE '' END || '000000000', 1, 9))`

const auditKeyLayout = "2006-01-02T15:04:05.000000000"
