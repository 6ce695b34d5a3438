package web

import "time"

// Sessions are server-side (service.Users: a random secret in the cookie,
// its sha256 in users.db), so logging out, a password change or removing
// the user ends them for good. The cookie is HttpOnly, SameSite=Strict (a
// cross-site link does not carry it, so no other site can make an audited
// search or download in a user's name) and Secure when served over TLS.
const (
	sessionCookie = "mv_session"
	sessionTTL    = 12 * time.Hour
)
