// Package journal receives journaled mail: an SMTP and an LMTP listener
// (github.com/emersion/go-smtp) to which a mail server sends a copy of
// every message it handles, with its envelope (issue 16). Each accepted
// message becomes one occurrence in the journal mailbox ("Journal") of
// the journal account, stored byte-exact with its envelope through a Sink
// that the service layer provides.
//
// Invariants:
//
//   - Nothing acknowledged is lost (invariant 1): the 250 reply to DATA
//     (over LMTP: the per-recipient replies) is written only after
//     Sink.Store returned nil, that is after the blob, the occurrence and
//     the envelope are durable in one catalog transaction. A crash before
//     that leaves the sending server without a reply: it retries.
//   - Nothing is duplicated (invariant 2): a crash after the commit and
//     before the reply makes the server retry a message that is archived.
//     The retry has the same bytes (the queue file) and the same envelope;
//     the catalog recognises the pair (indexer/catalog/envelopes.go) and
//     records it as present, and the retry is acknowledged.
//   - UIDs: one committer goroutine assigns them, in order, batch by batch,
//     from the mailbox's checkpoint (uidnext), which the same catalog
//     transaction advances. At start, and after any failed Store, the
//     committer reads uidnext back from the catalog, so a crash or a
//     failure never reuses a UID that holds a message, and a failed batch's
//     UIDs are reused by the next (nothing was recorded under them).
//     UIDVALIDITY is fixed when the mailbox is created and kept in the
//     catalog.
//   - Group commit: sessions hand their messages to the committer, which
//     takes every message waiting (and, with Options.BatchWindow, those
//     arriving within the window) into one Store: one fsync of the catalog
//     serves many messages.
//   - Bad input never stops the line (invariant 8): the bytes are stored
//     whatever they are; a message with no parsable header is stored and
//     acknowledged. What is refused is refused with a reply that says
//     whether retrying can help: 4xx when it can (the archive cannot store
//     now: disk full, catalog busy, shutting down, too many sessions, too
//     many recipients in this transaction), 5xx when it cannot (a network
//     outside the allow-list, a message over the size limit, bad
//     authentication). Each refusal is logged with its reason and counted.
//
// Access: the allow-list is checked when the connection is accepted,
// before the greeting: a client outside it gets 554 and the connection is
// closed. AUTH PLAIN, when configured, uses a users file of its own
// (name:bcrypt-hash lines), not mailvault's web users: the clients are
// mail servers, whose credentials sit in their configuration files; a web
// user's password there would be a person's password in a config file,
// and a leaked MTA credential would open the web UI. AUTH is offered only
// after STARTTLS (or on loopback, where no one can listen).
//
// Envelope recipients: an RCPT TO of the form PREFIX+local=domain@host
// (Options.EncodedPrefix, e.g. "journal") stands for local@domain. A
// Postfix recipient_bcc_maps regexp that maps every recipient to such an
// address makes Postfix journal every recipient, the Bcc ones included,
// in one transaction; always_bcc alone names only the journal address.
package journal
