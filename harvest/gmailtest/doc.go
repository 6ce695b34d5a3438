// Package gmailtest is an IMAP test server that speaks Gmail's dialect, for
// tests of the harvester's X-GM-EXT-1 support (issue 17, item 6). It is not
// Gmail and was not checked against Gmail: it is written from Google's
// published description of the extension
// (developers.google.com/gmail/imap/imap-extensions) and of Gmail's folders,
// and where that description is silent it makes the choices listed below.
// A test that passes against it shows that mailvault follows that
// description, not that it works with Gmail.
//
// One account (User, Password) on a loopback port, clear text, in memory.
// Start gives a server that stops when the test ends; Add, SetLabels,
// SetFlags and Delete change mail as Gmail's web interface would, from any
// goroutine, and the sessions report the change as an IMAP server does.
//
// # The model
//
// Labels are folders. A message has flags (its own, the same in every
// folder, as Gmail keeps them) and labels. It is in the folder of each of
// its labels and in "[Gmail]/All Mail" unless it is labelled \Spam or
// \Trash. Each folder numbers the messages that enter it with its own UIDs,
// ascending in the order they entered, under its own UIDVALIDITY; a message
// that leaves a folder and comes back gets a new UID there. X-GM-MSGID is
// one 64-bit number per message, the same in every folder.
//
// System folders and their labels: INBOX (\Inbox), "[Gmail]/Sent Mail"
// (\Sent), "[Gmail]/Drafts" (\Draft), "[Gmail]/Important" (\Important),
// "[Gmail]/Starred" (\Starred), "[Gmail]/Spam" (\Spam), "[Gmail]/Trash"
// (\Trash), and "[Gmail]/All Mail", which is no label. "[Gmail]" itself is
// \Noselect. LIST always gives the RFC 6154 special-use attributes (\All,
// \Sent, \Drafts, \Important, \Flagged, \Junk, \Trash) and \HasChildren or
// \HasNoChildren. A user label is a folder of its name, made on first use
// with its parents ("a" for "a/b"); names travel in modified UTF-7.
//
// # What it implements
//
// CAPABILITY advertises exactly what is implemented: IMAP4rev1 UNSELECT
// IDLE NAMESPACE ID CHILDREN X-GM-EXT-1 SPECIAL-USE, and before login
// SASL-IR AUTH=PLAIN. It is a subset of Gmail's list: no CONDSTORE, QRESYNC,
// ESEARCH, UIDPLUS, MOVE, ENABLE, COMPRESS, QUOTA, XLIST, LIST-EXTENDED,
// LIST-STATUS, LITERAL-, UTF8=ACCEPT, AUTH=XOAUTH2.
//
// Commands: CAPABILITY, NOOP, LOGOUT, ID, LOGIN, AUTHENTICATE PLAIN,
// NAMESPACE, LIST (reference and pattern, "*" and "%"), STATUS (MESSAGES
// UIDNEXT UIDVALIDITY UNSEEN RECENT), SELECT, EXAMINE, IDLE, CHECK, FETCH
// and UID FETCH (UID FLAGS INTERNALDATE RFC822.SIZE BODY[] BODY.PEEK[]
// X-GM-MSGID X-GM-THRID X-GM-LABELS), STORE and UID STORE ([+-]FLAGS and
// [+-]X-GM-LABELS, .SILENT), SEARCH and UID SEARCH (ALL, sequence sets, UID,
// X-GM-MSGID, X-GM-THRID, ANDed), EXPUNGE, CLOSE, UNSELECT. Anything else,
// other FETCH items (ENVELOPE, BODYSTRUCTURE, partial or part BODY[...]),
// other SEARCH keys (X-GM-RAW among them), APPEND, CREATE, COPY, MOVE, LSUB,
// UID EXPUNGE: BAD. Client literals ({n}, answered "+ go ahead", and {n+})
// work in any argument.
//
// Bounds: a line over 64 KiB, a literal over 64 KiB or a command over 256
// KiB in all is answered BAD and the connection closed; writes time out
// after 10 s; the server waits on a client only for what the protocol says
// comes next (a command, a literal's bytes, a SASL response, DONE).
//
// # Choices where Google's description is silent
//
//   - X-GM-LABELS lists the selected folder's own label (\Inbox in INBOX,
//     foo in foo); Options.OmitSelectedLabel leaves it out, as Gmail has been
//     reported to do. In All Mail nothing is left out. \Spam and \Trash are
//     listed as labels like the others. Order: system labels as above, then
//     user labels by name. A user label is an atom where it can be (not NIL,
//     not starting with "\"), else a quoted string.
//   - In STORE, any label starting with "\" (as a flag-like atom or a quoted
//     string) names a system label; an unknown one, or a name under
//     "[Gmail]", is NO. "INBOX" in any case is \Inbox.
//   - \Flagged and \Starred are one thing: setting either sets the other, so
//     flagging a message puts it in "[Gmail]/Starred" (RFC 6154's \Flagged
//     folder). \Draft the flag and \Draft the label are independent.
//   - A message labelled \Spam or \Trash keeps its other labels and stays in
//     their folders; it only leaves All Mail. (Gmail's own "move to Trash"
//     also drops the other labels: a test does that with SetLabels.)
//   - EXPUNGE and CLOSE follow Gmail's default settings: a \Deleted message
//     loses the selected folder's label; expunged from All Mail it goes to
//     Trash with no other label; expunged from Spam or Trash it is deleted.
//   - X-GM-MSGID values are above 2^60 and ascend in the order of Add (from
//     the clock in milliseconds, shifted, like Gmail's); X-GM-THRID is the
//     X-GM-MSGID of the thread's first message, found by In-Reply-To and
//     References (Gmail also threads by subject; this server does not).
//   - UIDVALIDITY values come from the clock at Start, one per folder in the
//     order the folders are made, so two servers do not share them.
//   - INTERNALDATE is the time of Add, to the second.
//   - EXPUNGE responses are sent after NOOP, CHECK, IDLE, EXPUNGE, the UID
//     commands and the others RFC 3501 section 7.4.1 allows, never while
//     answering FETCH, STORE or SEARCH; until then the message keeps its
//     sequence number and FETCH still answers it. EXISTS and FETCH FLAGS of
//     other sessions' changes come after any command and during IDLE.
//   - A FETCH sequence number beyond the folder is BAD; a UID set matches
//     what it covers. EXAMINE gives PERMANENTFLAGS (); SELECT the flags in
//     use and \*. A keyword first used after SELECT gets no new FLAGS
//     response. RECENT is always 0.
//   - LOGIN user names are case-insensitive; ID answers name "GImap" (as
//     Gmail, so client code keyed on it behaves the same) and says in vendor
//     that this is a test server.
package gmailtest
