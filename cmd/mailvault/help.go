package main

import "strings"

// helpAsked reports whether args, a command's arguments, ask for help the
// way the flag package understands it: -h, -help, --h or --help (with or
// without =value) before a "--" that ends the flags.
func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, _, _ = strings.Cut(name, "=")
		if name == "h" || name == "help" {
			return true
		}
	}
	return false
}

// helpText is the longer help for a command, printed after its flags by
// `mailvault COMMAND --help`.
var helpText = map[string]string{
	"import": `PATH is any of, and a directory may hold several (each becomes its mailboxes):
  - a Maildir (cur/ new/ tmp/), a Maildir++ tree (each .Folder a mailbox, the
    root is INBOX), a directory of Maildirs;
  - an mbox file (named after its base name), Thunderbird's and Apple Mail's
    exported mbox trees;
  - directories of loose .eml and .emlx (Apple Mail) files: each directory
    holding them is a mailbox named by its path below PATH (PATH itself is
    INBOX), an Apple Mail X.mbox directory one mailbox "X"; .emlx flags
    (read, answered, flagged, deleted, draft, forwarded) and received dates
    come from its plist; .partial.emlx files (attachments kept apart by Mail)
    are imported without those attachments, noted once per mailbox;
  - a Gmail Takeout mbox (detected by X-Gmail-Labels in its first message, or
    forced with --takeout; --no-takeout reads it as one plain mbox): each
    label is a mailbox holding the message (Inbox is INBOX; Starred also
    sets \Flagged, Opened \Seen, Unread clears it; "Category X" becomes the
    keyword $Category_X; a message without a mailbox label goes to
    Archived), the message stored once;
  - an Outlook .pst or .ost file, converted by readpst (Debian package
    pst-utils, an optional external program; bounded by --pst-timeout) into a
    private temporary directory (as much free space as the PST is needed)
    and imported as .eml files, its folders as mailboxes (below its path
    without .pst when found in a tree); contacts and calendar items are not
    mail and are left out (noted).
With --mailbox a single mailbox is named NAME, and in a tree (or a Takeout's
labels, or a PST's folders) NAME prefixes every mailbox.

Imported mail gets stable occurrence keys like mail from a server: each mailbox
gets a UIDVALIDITY when it is first imported (the Unix time then) and each new
message the next UID, in file order (loose files: by file name). A message is
recognised as already imported by its content (sha256) and copy count in that
mailbox, so running the same import again adds nothing, a newer export adds
only what is new, and an import interrupted at any point can simply be run
again. (A Takeout message whose labels changed is new content: its labels are
part of its bytes.)

While serve runs on the data directory, the import runs inside it as a job
(paths are made absolute first): this command shows the job's progress and
summary, and Ctrl-C cancels the job; what it imported is kept. Without a
running serve, the command opens the archive itself.
`,
	"verify": `Re-hashes every blob and checks that the store, the catalog and the index
agree. Exit 1 when anything disagrees, with one line per problem.

While serve runs, verify runs inside it as a job against a consistent
snapshot, harvest and searches going on; without a serve it opens the archive
read-only.
`,
	"store": `The store of record keeps every message's bytes, zstd-compressed and keyed by
their sha256, in one of two layouts, recorded in DIR/store-layout when the
archive is created (an archive without that file is "files"):

  files  one file per message under DIR/blobs/ (the default for new archives)
  pack   append-only segment files of many messages under DIR/packs/, with an
         index from sha256 to segment and offset: far fewer files and no 4 KiB
         block per small message; for archives of a few hundred thousand
         messages and up (docs/design.md, "Pack segments")

  init      create a new, empty archive with --layout (default pack); import
            and serve then keep that layout
  migrate   copy every blob to the --to layout, verify each copy (its bytes
            hash to its key), switch the archive to it in one durable step and
            remove the old layout's files (--keep-old keeps them). Interrupted
            (Ctrl-C, a crash), the archive stays on its old layout and refuses
            to open for writing until the same command is run again, which
            resumes where it stopped. Progress on a terminal with rate and ETA.
  compact   pack only: rewrite the segments that hold deleted blobs (retention,
            erasure) without them, so that their bytes are gone from the disk;
            a deleted blob is unreadable as soon as it is deleted, compaction
            reclaims the space. Crash-safe at every step.

Each is written to the audit trail before it runs; none runs while serve runs.
--json prints the summary as one JSON object.
`,
	"reindex": `Rebuilds the search index from the store and the catalog (the index is a
cache: nothing is lost by rebuilding it).

While serve runs, a new index is built beside the live one and swapped in when
complete: searches are answered by the old one until then, and a serve killed
meanwhile comes back on the old index. Without a serve, the index is discarded
and rebuilt in the foreground.
`,
	"jobs": `Lists the jobs of the serve running on the data directory: imports, verify and
reindex started by the commands of those names, with their state, progress
(rate, ETA) and who started them. --cancel ID stops one; what it did is kept.
`,
	"serve": `Without --config, serve serves the archive in --data with no IMAP accounts
(archive-only): the web UI, the JSON API and the local socket, and imports,
verify and reindex as jobs. With --config it also harvests the accounts the
file lists (see mailvault.example.yaml). SIGINT or SIGTERM stops it in order;
a second signal exits at once.
`,
	"retention": `Retention policies live in the retention section of the config (see
mailvault.example.yaml); pass it with --config. WORM is a property of the
archive, recorded in its catalog: the config's worm: true (the default)
records it on, and only "retention worm off --reason R" (an admin or the
operator, audited) turns it off; deleting needs that AND worm: false in the
config. While WORM is on, nothing can be deleted: plan still shows what
would go.

  plan         weigh every message: the policy that keeps it longest wins (no
               policy: kept forever); print counts per policy and what each
               legal hold keeps; the plan is saved under <data>/retention/ID.json
  list         list the saved plans, newest first (state, planner, counts, approver)
  show ID      print a saved plan
  approve ID   four eyes: a second admin (not the planner) approves the plan;
               a plan made by an auditor, legal or the scheduler is first
               endorsed by one admin, then approved by another
  apply        delete what a plan lists: --plan ID, or the plan an interrupted
               apply left, or a new plan made now (not with four_eyes). The
               list must hash to what the plan's (and approval's) audit row
               recorded; each message is weighed again under the config in
               force and its own Date header, and kept when not expired now.
               Holds are checked again right before each message is deleted.
               Order: tombstone (pending), index document, blob, metadata
               scrub, tombstone done. A killed apply resumes the same plan
               when run again; it never deletes anything the plan does not list.
  worm on|off|status
               the archive's WORM state; off needs --reason (offline only:
               stop serve first)

While serve runs, each subcommand asks it over the local socket (as the
operator), and serve's config is the one in force; apply then runs as a job
of serve, its progress (rate, ETA) drawn here, Ctrl-C cancelling it. Without
serve the command opens the archive itself with --config. The same is on the
web page /retention and the JSON API /api/retention/. Every plan, list,
show, approval, apply and deletion is in the audit trail. docs/compliance.md
has the details.
`,
	"erase": `Deletes one message (by its sha256) for a legal erasure request: its index
document, its bytes and its personal metadata, leaving a tombstone with rule
"erasure", the reason and who asked. Refused while a legal hold covers the
message, and in WORM mode (the archive's, see "mailvault retention worm", or
the config's retention.worm, the default: pass a --config with worm: false). While serve runs it asks serve (POST /api/erase on the local
socket), whose config is then in force.
`,
	"search": `QUERY is words and key:value terms, ANDed:
  free words, "exact phrase", prefix*      anywhere: addresses, subject, body, attachments
  from: to: cc: bcc: subject: body:        a word, prefix* or "phrase" in that field
  rcpt:                                    any recipient: to, cc, bcc and the envelope of journaled copies
  attachment:WORD                          attachment file names and extracted text
  filename:WORD                            attachment file names only
  before:YYYY-MM-DD  after:YYYY-MM-DD      sent before that day / on or after it,
  on:YYYY-MM-DD                            the day as written in the message's own zone
  larger:N  smaller:N                      size in bytes; k, M and G suffixes (1024-based)
  has:attachment  account:NAME  mailbox:NAME (in:NAME is the same)
  is:read  is:unread  is:flagged  is:unflagged  is:answered  is:unanswered
                                           by the IMAP flags of its copies in scope
                                           (is:read: some copy was read)
  newer_than:7d  older_than:1y             sent within / before; d, w, m (months), y
  list:WORD                                the List-Id header (mailing lists)
  -term                                    negation; a OR b; ( ) to group
Words match whole words in any case; a dotted name, link, address or
hyphenated word also by each part (sourceforge finds lists.sourceforge.net);
Lefevre finds Lefèvre, Lefèvre only Lefèvre.
A query starting with "-" goes after "--": mailvault search -- -from:bob invoice

Output: one line per occurrence of each hit (a message stored in two mailboxes
prints two lines): date, sender, subject and where it lives. --json prints one
JSON object per line with account, mailbox, uidvalidity, uid, sha256, date,
from, subject, size, flags and url. url is the RFC 5092 IMAP URL of the copy on
its server (imap://user@host/Mailbox;UIDVALIDITY=v/;UID=u); imported mail has
no server and gets the same shape under the mailvault scheme
(mailvault://account/Mailbox;UIDVALIDITY=v/;UID=u).
`,
}
