// Package imapview serves the archive read-only over IMAP (RFC 3501 /
// RFC 9051), so that an auditor opens it in a mail client and a script
// pulls a custodian's mail with mbsync, every message the byte-exact
// original. It is a front door like the web: it calls the service layer's
// View* methods (Archive), which apply the caller's scope and write the
// audit trail; this package applies no access rule of its own.
//
// Decisions, where the issue and the RFCs leave room:
//
//   - Folders. One folder per epoch of every archived mailbox the user may
//     see, named account + "/" + mailbox ("alice/INBOX",
//     "alice/Archive/2024"); the hierarchy delimiter is "/", and a name's
//     parents that are not folders themselves ("alice") are listed
//     \Noselect. An earlier UIDVALIDITY epoch is a folder of its own beside
//     the current one: "alice/INBOX;UIDVALIDITY=1700000000", the notation
//     of the archive's imap:// URLs (RFC 5092). Non-ASCII names go out in
//     modified UTF-7 (go-imap's server encodes them), or UTF-8 to a client
//     that enabled UTF8=ACCEPT. There is no top-level INBOX: the archive is
//     nobody's mailbox, and SELECT INBOX answers NO [NONEXISTENT]. Two
//     mailboxes whose names would collide ("a/b" + "c" and "a" + "b/c")
//     keep the first in account order; the second is not listed (logged).
//   - UIDs and UIDVALIDITY are the source server's, for the current and
//     earlier epochs alike: stable across restarts, unique per folder, and
//     the same numbers as the message's imap:// URL. UIDNEXT is one more
//     than the highest UID archived. A message the harvester archives
//     below the highest UID already shown (a gap found and filled later,
//     issue 17) appears to a session that selects the folder afterwards;
//     a session that has it open is not told (IMAP has no way to announce
//     a lower UID), and a client that keeps only "UIDs above the last one
//     seen" misses it until it resyncs.
//   - Read-only, honestly. Every SELECT answers [READ-ONLY] (the patched
//     go-imap lets the session say so, third_party/go-imap/MAILVAULT.md);
//     PERMANENTFLAGS is empty. APPEND, CREATE, DELETE, RENAME, STORE, COPY,
//     MOVE and EXPUNGE answer NO [NOPERM] ("the archive is read-only");
//     SUBSCRIBE and UNSUBSCRIBE answer NO [CANNOT] (no per-user state is
//     kept; LSUB and LIST (SUBSCRIBED) list every folder as subscribed).
//     CLOSE removes nothing. FETCH BODY[] does not set \Seen.
//   - Flags are the ones last harvested. A copy the source server has
//     expunged since it was archived stays in its folder (the archive keeps
//     it) with the keyword $Expunged added (ExpungedKeyword); SEARCH
//     KEYWORD $Expunged finds those copies. A message removed from the
//     archive itself (retention, erasure) leaves the folder: a session that
//     has it open gets an EXPUNGE for it at its next poll.
//   - Bodies. FETCH BODY[...], BINARY[...], RFC822*, ENVELOPE and
//     BODYSTRUCTURE are computed from the stored bytes, read through the
//     store, which checks them against their sha256 (a corrupt blob fails
//     the FETCH with NO [SERVERBUG] and is logged, never served).
//   - SEARCH goes through the same executor as `mailvault search --imap`
//     (the criteria are written back as IMAP SEARCH text and parsed by
//     query.ParseIMAP, so both answer alike), with expunged copies
//     included; ESEARCH (RFC 4731) results come from go-imap. Sequence
//     numbers are the session's, turned into UIDs before the executor sees
//     them.
//   - Audit. LOGIN (success and failure, with the web's lockout rules:
//     service.LoginGuard, shared with the web in serve), every SELECT or
//     EXAMINE, every SEARCH, and every FETCH that reads message content
//     (one row per command, naming the folder and the UIDs) are in the
//     audit trail, written before anything is answered (a FETCH whose UIDs
//     do not fit one audit row gets as many rows as they need).
//   - A login lasts while its user does: before each command that reads
//     (and before an idle session re-reads its folder) the session takes
//     its user as they are now (Archive.ViewRecheck). A user removed, a
//     token revoked, or the open folder's account withdrawn ends it with
//     BYE; changed accounts apply at once. A password change does not end
//     a session logged in with the old one (no password is kept).
//   - IDLE and NOOP: a session checks every PollInterval (1 s) whether its
//     folder's mailbox changed (Archive.ViewGeneration: a per-mailbox
//     generation kept in memory, so an idle session costs no read) and,
//     when it did, re-reads the folder's list from the catalog: new mail
//     (EXISTS), changed flags (FETCH FLAGS) and removals (EXPUNGE).
//   - Limits: go-imap's own (50 KiB commands, 4 KiB literals outside
//     APPEND, 30 s to send a command before login, 35 min idle), plus
//     MaxConns connections in all and MaxConnsPerAddr from one address.
//     A stored message is whatever a sender mailed: BODYSTRUCTURE and
//     BODY[part] descend at most maxMIMEDepth (20) levels of multiparts
//     and messages and describe at most maxMIMEParts (1000) parts, the
//     bounds indexing uses; a part at the limit is described as one
//     application/octet-stream part (fetch.go).
package imapview
