// Package harvest copies mail from IMAP accounts into the archive: for each
// account it connects, lists the mailboxes, catches each one up from its
// checkpoint with UID FETCH, then keeps the mailboxes current — IDLE on the
// first watched mailbox, STATUS polls for the rest — and reconnects with
// backoff when anything goes wrong. A server saying "slow down" (too many
// connections, a bandwidth limit, too busy: throttle.go) gets a longer
// backoff, or the wait it suggests, and is never taken for a refused login:
// the account is not parked, and the harvest resumes from the checkpoint.
//
// Invariants:
//   - Nothing lost: a message reaches the Sink before its checkpoint moves
//     past it, and the Sink returns only when the message is durable. A crash
//     re-fetches at most the two chunks in flight (one storing, one
//     arriving).
//   - Nothing duplicated: UIDs below the checkpoint are never fetched again;
//     "UID FETCH n:*" answering with the last message (UID < n) is filtered
//     out; the Sink ignores an occurrence it already has.
//   - UIDVALIDITY is identity: every EXAMINE compares it with the Sink's
//     epoch; a change starts a new epoch at UID 1 (the Sink keeps the old
//     occurrences and stores identical content once).
//   - Read-only: mailboxes are opened with EXAMINE and bodies fetched with
//     BODY.PEEK[], so archiving never sets \Seen.
//   - One account's trouble never touches another: each Harvester has its own
//     connection, goroutine and backoff.
//   - A hostile server costs bounded memory and time: response lines are
//     cut at 1 MiB and list nesting at 100 (guardConn, limits.go); a body
//     over MaxMessageBytes is not read (recorded as skipped); the bodies one
//     FETCH holds are bounded by twice max(RFC822.SIZE, FetchBytes) beyond
//     the first; FETCH answers beyond EXISTS + 1000 and LIST answers beyond
//     100,000 end the session; so does a command not completed within
//     CommandTimeout. UIDs not asked for, repeated, or at or above UIDNEXT
//     are never archived; an EXAMINE without UIDVALIDITY archives nothing.
//     The QRESYNC connection's own reader (qresync.go) has the same line,
//     nesting and FETCH bounds, and caps VANISHED ranges and flag bytes; a
//     bad answer records nothing of that resync.
//     Each such failure is ErrHostile: shown on the account, then backoff.
//     (Not yet guarded: connections with tls: starttls, whose plaintext
//     go-imap upgrades internally, out of the guard's sight.)
//
// Files, by concern: harvest.go (Options, Harvester, Run), account.go
// (Account, Message, Sink), budget.go, status.go, dial.go (TCP, TLS,
// timeouts), limits.go (what a server may send), auth.go (PLAIN, LOGIN,
// XOAUTH2), throttle.go (a server's "slow down", ErrThrottled),
// session.go (connections, IDLE, watch), mailboxes.go (LIST,
// patterns), sync.go (EXAMINE, STATUS polls, resync: QRESYNC, CHANGEDSINCE
// or the full sweep), changes.go (ChangeSink, what a partial resync
// hands over), qresync.go (QRESYNC on a connection of its own: go-imap
// cannot parse VANISHED), fetch.go (catch-up, chunks, bodies), gaps.go
// (gap checks: the server's UIDs against the archive's, below the
// checkpoint).
//
// Concurrency: Harvester.Run owns its IMAP connection. go-imap's unilateral
// handlers run on the client's reader goroutine; they only signal (a
// non-blocking send), never issue commands.
package harvest
