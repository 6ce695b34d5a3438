package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sessions are signed cookies: "user|expiry|mac", the MAC an HMAC-SHA256
// under a key kept in <data>/session.key (made on first use, mode 0600).
// Nothing is stored server-side; removing a user ends their sessions at the
// next request (the user is looked up each time), and replacing the key
// ends everyone's.
type sessions struct {
	key []byte
	ttl time.Duration
}

const sessionCookie = "mv_session"

func loadSessionKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "session.key")
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		return b, nil
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return key, nil
}

func (s *sessions) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a cookie value for user.
func (s *sessions) issue(user string, now time.Time) string {
	payload := user + "|" + strconv.FormatInt(now.Add(s.ttl).Unix(), 10)
	return payload + "|" + s.mac(payload)
}

var errSession = errors.New("no valid session")

// check returns the user of a cookie value that is authentic and unexpired.
func (s *sessions) check(value string, now time.Time) (string, error) {
	i := strings.LastIndexByte(value, '|')
	if i < 0 {
		return "", errSession
	}
	payload, mac := value[:i], value[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.mac(payload))) {
		return "", errSession
	}
	user, exp, ok := strings.Cut(payload, "|")
	t, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || now.Unix() > t {
		return "", errSession
	}
	return user, nil
}

// limiter refuses logins for a while after repeated failures from one
// address or for one user name: 5 failures within 15 minutes lock that
// address (and that name) until the window has passed.
type limiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

const (
	loginFailures = 5
	loginWindow   = 15 * time.Minute
)

func (l *limiter) blocked(keys []string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		recent := l.failures[k][:0]
		for _, t := range l.failures[k] {
			if now.Sub(t) < loginWindow {
				recent = append(recent, t)
			}
		}
		l.failures[k] = recent
		if len(recent) >= loginFailures {
			return true
		}
	}
	return false
}

func (l *limiter) fail(keys []string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 100_000 {
		clear(l.failures) // a flood of names: forget rather than grow
	}
	for _, k := range keys {
		l.failures[k] = append(l.failures[k], now)
	}
}
