// Package harvest copies mail from IMAP accounts into the archive: for each
// account it connects, lists the mailboxes, catches each one up from its
// checkpoint with UID FETCH, then keeps the mailboxes current — IDLE on the
// first watched mailbox, STATUS polls for the rest — and reconnects with
// backoff when anything goes wrong.
//
// Invariants:
//   - Nothing lost: a message reaches the Sink before its checkpoint moves
//     past it, and the Sink returns only when the message is durable. A crash
//     re-fetches at most the batch in flight.
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
//
// Concurrency: Harvester.Run owns its IMAP connection. go-imap's unilateral
// handlers run on the client's reader goroutine; they only signal (a
// non-blocking send), never issue commands.
package harvest
