package service

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// LoginGuard bounds what unauthenticated requests can cost, with bounded
// memory whatever they send. It is shared by every front door that checks
// passwords (the web's login form, the IMAP server's LOGIN), so that a
// name locked out on one is locked out on all and an address's budgets are
// spent wherever it knocks:
//
//   - Failures are counted per (address, name). After LoginFailures of them
//     that pair is locked with exponential backoff (1 min, doubling, at
//     most loginMaxLock). The right password from another address is never
//     locked out, so nobody can lock an admin out from elsewhere.
//   - Each address has a budget of password checks (bcrypt: ~100 ms of a
//     core each): LoginBurst at once, refilled at loginRate. Past it, the
//     login is refused without a check, so one address cannot buy unlimited
//     bcrypt work; and at most bcryptSlots (two) checks run at once in the
//     process (Check).
//   - Each address may add at most AuditBurst audit rows for refused
//     logins or bad tokens (refilled at auditRate); the rows it could not
//     add are counted and the count goes into its next row, so a flood is
//     recorded without growing the trail at the attacker's pace.
//
// Entries expire after guardTTL without activity, and the tables never
// hold more than GuardMax entries each (when one is full, the idle
// entries are dropped first, then entries at random: see evict).
//
// A LoginGuard is safe for concurrent use; its methods take mu. One per
// process: two guards would each grant the full budgets and the bcrypt cap.
type LoginGuard struct {
	mu     sync.Mutex
	pairs  map[[2]string]*pairState
	checks map[string]*bucket
	audits map[string]*bucket
	bcrypt chan struct{}
}

// The guard's rules. The exported ones are the numbers the front doors'
// tests assert against (a flood of N attempts gets at most LoginBurst
// checks, ...); the others are only the guard's business.
const (
	LoginFailures = 5 // failures of a pair before it is locked
	LoginBurst    = 10
	AuditBurst    = 20
	GuardMax      = 10_000 // entries per table, at most

	loginMaxLock = 15 * time.Minute
	loginRate    = 6 * time.Second // one more check per address this often
	auditRate    = 3 * time.Second
	guardTTL     = 30 * time.Minute
	bcryptSlots  = 2
)

type pairState struct {
	failures int
	until    time.Time // locked until
	seen     time.Time
}

// bucket is a token bucket; suppressed counts what it refused since its
// last grant (for audit rows).
type bucket struct {
	tokens     float64
	last       time.Time
	suppressed int
}

// NewLoginGuard returns an empty guard.
func NewLoginGuard() *LoginGuard {
	return &LoginGuard{pairs: map[[2]string]*pairState{}, checks: map[string]*bucket{}, audits: map[string]*bucket{},
		bcrypt: make(chan struct{}, bcryptSlots)}
}

// take takes a token from the bucket of key in m, refilled at one per
// every and holding at most burst. ok false: none left.
func take[K comparable](m map[K]*bucket, key K, burst int, every time.Duration, now time.Time) (b *bucket, ok bool) {
	b = m[key]
	if b == nil {
		if len(m) >= GuardMax {
			evict(m, func(b *bucket) bool { return now.Sub(b.last) > guardTTL })
		}
		b = &bucket{tokens: float64(burst), last: now}
		m[key] = b
	}
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()/every.Seconds())
	b.last = now
	if b.tokens < 1 {
		return b, false
	}
	b.tokens--
	return b, true
}

// evict drops entries idle past guardTTL and, if that is not enough,
// entries at random (map order) down to half of GuardMax: memory stays
// bounded, at the price of forgetting some budgets under a flood.
func evict[K comparable, V any](m map[K]V, idle func(V) bool) {
	for k, v := range m {
		if idle(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < GuardMax/2 {
			break
		}
		delete(m, k)
	}
}

// Allow says whether a login of name from addr may be checked now; when
// not, why (a phrase fit for the user and the audit row), and when to try
// again. An allowed call has spent one of the address's checks.
func (g *LoginGuard) Allow(addr, name string, now time.Time) (ok bool, why string, retry time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.pairs[[2]string{addr, name}]; p != nil && now.Before(p.until) {
		return false, "too many failed logins for this name from this address", p.until.Sub(now)
	}
	if _, ok := take(g.checks, addr, LoginBurst, loginRate, now); !ok {
		return false, "too many login attempts from this address", loginRate
	}
	return true, "", 0
}

// Check runs f, the password check, once one of the process's bcryptSlots
// is free, and frees it when f returns (or panics). It is a function
// rather than an Acquire/Release pair so that no front door can forget
// the release and leave logins blocked for good. Waiting is not bounded
// by a context: a check lasts ~100 ms and Allow has already bounded how
// many an address can queue.
func (g *LoginGuard) Check(f func()) {
	g.bcrypt <- struct{}{}
	defer func() { <-g.bcrypt }()
	f()
}

// Failed records a failed login.
func (g *LoginGuard) Failed(addr, name string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := [2]string{addr, name}
	p := g.pairs[k]
	if p == nil {
		if len(g.pairs) >= GuardMax {
			evict(g.pairs, func(q *pairState) bool { return now.Sub(q.seen) > guardTTL && now.After(q.until) })
		}
		p = &pairState{}
		g.pairs[k] = p
	}
	p.failures++
	p.seen = now
	if p.failures >= LoginFailures {
		lock := time.Minute << min(p.failures-LoginFailures, 4)
		p.until = now.Add(min(lock, loginMaxLock))
	}
}

// Succeeded forgets the failures of a pair.
func (g *LoginGuard) Succeeded(addr, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pairs, [2]string{addr, name})
}

// AuditAllowed says whether addr may add an audit row for an
// unauthenticated failure now, and how many such rows were suppressed
// since its last one.
func (g *LoginGuard) AuditAllowed(addr string, now time.Time) (ok bool, suppressed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := take(g.audits, addr, AuditBurst, auditRate, now)
	if !ok {
		b.suppressed++
		return false, 0
	}
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}

// AuditDetail is AuditAllowed for a front door about to write the row of
// an unauthenticated failure with detail: ok false means the row is not
// written (past the budget, counted); otherwise the detail to write, with
// the count of the rows suppressed since the last one.
func (g *LoginGuard) AuditDetail(addr, detail string, now time.Time) (string, bool) {
	ok, suppressed := g.AuditAllowed(addr, now)
	if ok && suppressed > 0 {
		detail = strings.TrimSpace(fmt.Sprintf("%s (%d more from this address not recorded one by one)", detail, suppressed))
	}
	return detail, ok
}

// Size is the number of entries held, for tests.
func (g *LoginGuard) Size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pairs) + len(g.checks) + len(g.audits)
}
