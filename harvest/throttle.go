package harvest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// ErrThrottled marks a server saying "slow down": too many connections,
// too many commands or bytes, or the server too busy. It is temporary, never
// the account's configuration: Run waits longer than after a network failure
// (Options.ThrottleBackoff, doubling while it repeats, or what the server
// suggests when longer) and never parks the account. The session resumes
// from the checkpoint as after any failure.
var ErrThrottled = errors.New("throttled by the server")

// Providers say "slow down" with a tagged NO or BAD to the command (LOGIN
// included), or with an untagged BYE: as the greeting, or before they close
// the connection. The response codes and texts below are recognised. They
// are what the providers document or users have reported; none is tested
// here against the provider itself, only against a scripted proxy that
// sends them (throttle_test.go).
//
// A BYE in the middle of a session is not seen as one: go-imap's reader
// parses an untagged BYE and drops its code and text, then the pending
// command fails with io.ErrUnexpectedEOF when the server closes (later ones
// with a write error). Such a session ends like a lost connection, with the
// shorter backoff. A BYE as the greeting comes back as an *imap.Error and
// is recognised. (Not yet: a throttled body FETCH still counts as a failure
// of its chunk in fetch.go, so five in a row on the same chunk split it and
// then skip its first message.)
//
// Codes (RFC 5530 but THROTTLED):
//   - THROTTLED: no RFC code; named in issue 17 among the providers' answers.
//   - OVERQUOTA: "the user would be over quota after the operation". The
//     harvester never writes, so on a read it is a limit on traffic: Gmail's
//     "NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)".
//   - LIMIT: an implementation limit was reached. Dovecot 2.3.19 answers a
//     LOGIN over mail_max_userip_connections with "NO [LIMIT] Maximum number
//     of connections from user+IP exceeded (mail_max_userip_connections=1)":
//     the one answer here seen from a real server
//     (TestDovecotConnectionLimitIsNotALoginFailure).
//   - UNAVAILABLE: a subsystem is down, try later. Other Dovecot versions
//     send the text above with it, as reports quote it.
//   - INUSE: someone else holds what the operation needs.
var throttleCodes = []imap.ResponseCode{"THROTTLED", imap.ResponseCodeOverQuota,
	imap.ResponseCodeLimit, imap.ResponseCodeUnavailable, imap.ResponseCodeInUse}

// Texts, matched in lower case anywhere in the response text, whatever the
// code but those in otherCause:
//   - "too many simultaneous connections": Gmail, "NO [ALERT] Too many
//     simultaneous connections. (Failure)" (as users report it; Google's
//     help names a limit of 15 connections per account).
//   - "maximum number of connections from user+ip exceeded": Dovecot's
//     wording above, so that it counts whatever code comes with it.
//   - "request is throttled": Exchange Online and Microsoft 365, a tagged
//     "BAD Request is throttled. Suggested Backoff Time: 92415 milliseconds"
//     (as client libraries that handle it quote it).
//   - "try again later", "throttl": the common ways of saying it otherwise.
var throttleTexts = []string{
	"too many simultaneous connections",
	"maximum number of connections from user+ip exceeded",
	"request is throttled",
	"try again later",
	"throttl",
}

// otherCause: codes that name another cause, whatever the text says. The
// first three are a refused login (connect parks the account on them).
var otherCause = []imap.ResponseCode{imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed,
	imap.ResponseCodeExpired, imap.ResponseCodePrivacyRequired, imap.ResponseCodeContactAdmin, imap.ResponseCodeNoPerm,
	imap.ResponseCodeNonExistent, imap.ResponseCodeTryCreate, imap.ResponseCodeAlreadyExists, imap.ResponseCodeCannot}

// suggestedRe finds Exchange Online's suggested wait. No other provider is
// known to suggest one in its text; nothing else is read as a delay.
var suggestedRe = regexp.MustCompile(`(?i)suggested backoff time:\s*([0-9]{1,12})\s*milliseconds`)

// maxSuggested bounds a wait the server suggests, so that a server cannot
// stop an account's harvest by suggesting a year.
const maxSuggested = time.Hour

// throttle reports whether err is a server's "slow down": it wraps
// ErrThrottled, or the first *imap.Error in its chain is a NO, BAD or BYE
// that throttleCodes or throttleTexts recognise. suggested is the wait the
// server's text asks for, 0 when it names none.
func throttle(err error) (suggested time.Duration, ok bool) {
	var ie *imap.Error
	if errors.As(err, &ie) && throttleAnswer(ie) {
		return suggestedWait(ie.Text), true
	}
	return 0, errors.Is(err, ErrThrottled)
}

// throttleAnswer reports whether a server's NO, BAD or BYE says "slow down".
func throttleAnswer(ie *imap.Error) bool {
	switch strings.ToUpper(string(ie.Type)) {
	case "NO", "BAD", "BYE":
	default:
		return false
	}
	code := imap.ResponseCode(strings.ToUpper(string(ie.Code)))
	if slices.Contains(throttleCodes, code) {
		return true
	}
	if slices.Contains(otherCause, code) {
		return false
	}
	text := strings.ToLower(ie.Text)
	return slices.ContainsFunc(throttleTexts, func(s string) bool { return strings.Contains(text, s) })
}

// suggestedWait is the wait text suggests (Exchange Online's "Suggested
// Backoff Time: N milliseconds"), at most maxSuggested; 0 when none.
func suggestedWait(text string) time.Duration {
	m := suggestedRe.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	ms, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0
	}
	return min(time.Duration(ms)*time.Millisecond, maxSuggested)
}

// noteBye keeps the BYE line a connection read (guardConn.onBye). It runs
// on the client's reader goroutine.
func (h *Harvester) noteBye(line string) {
	h.mu.Lock()
	h.bye = line
	h.mu.Unlock()
}

// withBye returns err, the error that ended a session, with the server's
// BYE when one came and err is not already the server's answer: go-imap's
// client drops a BYE's code and text, and its pending command fails with
// a bare connection error, so a server that ends a session because of
// load ("* BYE [UNAVAILABLE] Server overloaded") would otherwise look like
// a network failure and be retried at once. A refused login or
// certificate is left as it is (a server may say BYE after refusing a
// password: the account is still parked), and err stays in the chain of
// what is returned (errors.Is ErrHostile still holds).
func (h *Harvester) withBye(err error) error {
	h.mu.Lock()
	line := h.bye
	h.mu.Unlock()
	var ie *imap.Error
	if err == nil || line == "" || errors.As(err, &ie) || errors.Is(err, ErrAuth) || errors.Is(err, ErrCertificate) {
		return err
	}
	bye := parseBye(line)
	if bye == nil {
		return err
	}
	return fmt.Errorf("%w (the server ended the connection: %w)", bye, err)
}

// parseBye reads "* BYE [CODE ...] text" into the error go-imap would
// have made of it.
func parseBye(line string) *imap.Error {
	if len(line) < 6 || !strings.EqualFold(line[:6], "* BYE ") {
		return nil
	}
	rest := line[6:]
	ie := &imap.Error{Type: "BYE"}
	if strings.HasPrefix(rest, "[") {
		code, after, found := strings.Cut(rest[1:], "]")
		if !found {
			return nil
		}
		name, _, _ := strings.Cut(code, " ")
		ie.Code = imap.ResponseCode(strings.ToUpper(name))
		rest = strings.TrimPrefix(after, " ")
	}
	ie.Text = rest
	return ie
}
