package web

import (
	"sync"
	"time"
)

// Sessions are server-side (service.Users: a random secret in the cookie,
// its sha256 in users.db), so logging out, a password change or removing
// the user ends them for good. The cookie is HttpOnly, SameSite=Strict (a
// cross-site link does not carry it, so no other site can make an audited
// search or download in a user's name) and Secure when served over TLS.
const (
	sessionCookie = "mv_session"
	sessionTTL    = 12 * time.Hour
)

// loginGuard bounds what unauthenticated requests can cost, with bounded
// memory whatever they send:
//
//   - Failures are counted per (address, name). After loginFailures of them
//     that pair is locked with exponential backoff (1 min, doubling, at
//     most loginMaxLock). The right password from another address is never
//     locked out, so nobody can lock an admin out from elsewhere.
//   - Each address has a budget of password checks (bcrypt: ~100 ms of a
//     core each): loginBurst at once, refilled at loginRate. Past it, the
//     login is refused without a check, so one address cannot buy unlimited
//     bcrypt work; and at most two checks run at once in the process.
//   - Each address may add at most auditBurst audit rows for refused
//     logins or bad tokens (refilled at auditRate); the rows it could not
//     add are counted and the count goes into its next row, so a flood is
//     recorded without growing the trail at the attacker's pace.
//
// Entries expire after guardTTL without activity, and the tables never
// hold more than guardMax entries (the oldest are dropped first).
type loginGuard struct {
	mu     sync.Mutex
	pairs  map[[2]string]*pairState
	checks map[string]*bucket
	audits map[string]*bucket
	bcrypt chan struct{}
}

const (
	loginFailures = 5
	loginMaxLock  = 15 * time.Minute
	loginBurst    = 10
	loginRate     = 6 * time.Second // one more check per address this often
	auditBurst    = 20
	auditRate     = 3 * time.Second
	guardTTL      = 30 * time.Minute
	guardMax      = 10_000
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

func newLoginGuard() *loginGuard {
	return &loginGuard{pairs: map[[2]string]*pairState{}, checks: map[string]*bucket{}, audits: map[string]*bucket{},
		bcrypt: make(chan struct{}, 2)}
}

// take takes a token from the bucket of key in m, refilled at one per
// every and holding at most burst. ok false: none left.
func take[K comparable](m map[K]*bucket, key K, burst int, every time.Duration, now time.Time) (b *bucket, ok bool) {
	b = m[key]
	if b == nil {
		if len(m) >= guardMax {
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
// entries at random (map order) down to half of guardMax: memory stays
// bounded, at the price of forgetting some budgets under a flood.
func evict[K comparable, V any](m map[K]V, idle func(V) bool) {
	for k, v := range m {
		if idle(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < guardMax/2 {
			break
		}
		delete(m, k)
	}
}

// allow says whether a login of name from addr may be checked now; when
// not, why, and when to try again.
func (g *loginGuard) allow(addr, name string, now time.Time) (ok bool, why string, retry time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.pairs[[2]string{addr, name}]; p != nil && now.Before(p.until) {
		return false, "too many failed logins for this name from this address", p.until.Sub(now)
	}
	if _, ok := take(g.checks, addr, loginBurst, loginRate, now); !ok {
		return false, "too many login attempts from this address", loginRate
	}
	return true, "", 0
}

// failed records a failed login.
func (g *loginGuard) failed(addr, name string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := [2]string{addr, name}
	p := g.pairs[k]
	if p == nil {
		if len(g.pairs) >= guardMax {
			evict(g.pairs, func(q *pairState) bool { return now.Sub(q.seen) > guardTTL && now.After(q.until) })
		}
		p = &pairState{}
		g.pairs[k] = p
	}
	p.failures++
	p.seen = now
	if p.failures >= loginFailures {
		lock := time.Minute << min(p.failures-loginFailures, 4)
		p.until = now.Add(min(lock, loginMaxLock))
	}
}

// succeeded forgets the failures of a pair.
func (g *loginGuard) succeeded(addr, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pairs, [2]string{addr, name})
}

// auditAllowed says whether addr may add an audit row for an
// unauthenticated failure now, and how many such rows were suppressed
// since its last one.
func (g *loginGuard) auditAllowed(addr string, now time.Time) (ok bool, suppressed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := take(g.audits, addr, auditBurst, auditRate, now)
	if !ok {
		b.suppressed++
		return false, 0
	}
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}

// size is the number of entries held, for tests.
func (g *loginGuard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pairs) + len(g.checks) + len(g.audits)
}
