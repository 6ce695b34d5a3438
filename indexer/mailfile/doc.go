// Package mailfile reads mail from local files for `mailvault import`: Maildir
// folders, Maildir++ and directory trees of them, mbox files, directories of
// loose .eml and Apple Mail .emlx files, Gmail Takeout mbox files, single
// message files, and Outlook PST/OST files through readpst.
//
// Invariants:
//   - Byte-exact: Message.Raw is exactly the bytes of the message file (for
//     mbox: exactly the bytes between two From_ separators, less the
//     separator line, the one blank line before the next separator and one
//     level of mboxrd ">From " quoting). Nothing is re-encoded, no line ending
//     is converted.
//   - Nothing is lost silently: every file in cur/ and new/ that is not an
//     index file or dotfile becomes a Message or an onErr report naming the
//     file; every mbox separator becomes a Message or a report naming the
//     offset. Where the reader had to guess (a truncated tail, a missing
//     header terminator) the message is still returned, with Message.Note set.
//   - Bounded memory: an mbox is streamed with bufio, never read whole; one
//     message at most MaxBytes (default MaxMessageBytes, 256 MiB) is held.
//     Each Message.Raw is freshly allocated and belongs to the caller.
//   - No package-level mutable state; Walk and Count may run concurrently on
//     different mailboxes (or the same one: they only read).
//
// # What Discover recognizes
//
// Mailbox names use "/" as hierarchy separator, whatever the on-disk layout.
//
//   - A Maildir: a directory with at least two of cur/, new/ and tmp/ (one of
//     them may be missing: backups and git checkouts drop empty directories).
//     Given directly, it is "INBOX" (or the override). Exception: a Maildir++
//     subfolder given directly (".Sent" inside a Maildir) keeps its folder
//     name ("Sent"). A bare Maildir named "Sent" from an mbsync tree is still
//     "INBOX" when given directly: the directory name is not a reliable
//     mailbox name (per-user Maildirs are often named after the user), so pass
//     --mailbox Sent or point at the parent directory.
//   - A Maildir++ tree (Courier, Dovecot default layout): the root Maildir is
//     "INBOX"; each subfolder ".A.B" that is a Maildir is "A/B" (the "."
//     hierarchy separator becomes "/"); names are decoded from IMAP modified
//     UTF-7 ("&AMQ-rger" → "Ärger") when they are valid mUTF-7, as Courier and
//     Dovecot store them, so imported names match what IMAP harvest reports.
//   - A directory tree of Maildirs (mbsync "SubFolders Verbatim", Dovecot
//     LAYOUT=fs): each Maildir below the path is a mailbox named by its path
//     relative to the given directory ("Sent", "Archive/2019"); if the given
//     directory is itself a Maildir it is "INBOX" and subdirectories other
//     than cur/new/tmp are searched too. Maildir++ dot-folders of a Maildir
//     found in the tree are named below it ("alice/Sent").
//   - mbox files found in a directory tree (Thunderbird profiles: files
//     "Inbox", "Sent" beside "*.msf" indexes, subfolders in "X.sbd/"; Apple
//     Mail exports "X.mbox/mbox"): a regular file whose content starts with a
//     "From " line, or any file named *.mbox. The name is the relative path
//     with ".mbox" and the ".sbd"/".mbox" directory suffixes removed. Other
//     regular files in a tree (indexes, notes) are ignored.
//   - Loose message files (loose.go): a directory directly holding .eml,
//     .emlx or .partial.emlx files is a mailbox (KindLoose) named by its
//     relative path (the given directory: "INBOX" or the override); an Apple
//     Mail "X.mbox" directory without an mbox file is one mailbox "X" of all
//     the .emlx below it, nested X.mbox directories excepted. An .eml that
//     starts with a "From " line is one message, not an mbox. InternalDate
//     is the file's mtime, as for Maildir (an .emlx: its plist's
//     date-received when there is one); flags come only from .emlx plists.
//   - A Gmail Takeout mbox (takeout.go): an mbox whose first message has an
//     X-Gmail-Labels header, or every mbox with Options.Takeout, is
//     KindTakeout; its Name is the override (a prefix), and each Message
//     names the label mailboxes it belongs in.
//   - A PST or OST file ("!BDN" magic): KindPST, which Walk refuses;
//     ConvertPST turns it into a tree of .eml files (pst.go). Given directly
//     its Name is the override ("" without one: the PST's folder names as
//     they are); found in a tree, its relative path without the extension,
//     which prefixes its folders.
//   - A single regular file given directly: an mbox if it starts with a "From "
//     line (after optional blank lines), is named *.mbox, or is empty; its name
//     is the file base name without ".mbox" (or the override). Otherwise, if its
//     first line is a header field, it is one message (KindMessage, e.g. an
//     .eml) in mailbox "INBOX" (or the override), so `import --mailbox X *.eml`
//     gathers files into one mailbox. Anything else is an error.
//   - gzip and bzip2 compressed message files and mbox files (Dovecot's
//     mail_compress/zlib plugin, *.mbox.gz) are decompressed transparently;
//     Raw is the decompressed message, and mbox offsets count decompressed
//     bytes. zstd, xz and lz4 are reported as unsupported.
//
// With an override, a single mailbox is named override; in a tree, the root is
// override and everything else override + "/" + its relative name. Two
// sources mapping to the same name is an error (import them separately).
// Dotfiles and dot-directories that are not Maildir++ folders (.git, .notmuch,
// .mbsyncstate) are skipped, as are Dovecot and Courier index files. Symbolic
// links are followed, with loops cut; dangling ones in a tree are skipped.
//
// # Errors
//
// Discover's errors name the path the user gave and say what to do:
// `import "/x": no such file or directory`, `import "/x": permission denied
// (run as a user that can read it)`, ErrNoMailbox, ErrNotMail,
// ErrDuplicateName (all usable with errors.Is). Walk reports per-file and
// per-message problems to onErr, one line each, naming the file (and mbox
// offset): `read "/m/cur/17.x:2,S": not a mail message: empty file; skipped`.
//
// # Maildir reading
//
// Walk reads cur/ and new/, merged and sorted by the unique part of the file
// name (before the info separator ":2,"; also ";2," and "!2," as written on
// filesystems without ":"). Digit runs compare as numbers, so the delivery
// time prefix and Dovecot's ".M<usec>P<pid>" order correctly whatever their
// width. tmp/ is ignored: files there are deliveries in progress, not yet
// messages. Flags come from the info part: S \Seen, R \Answered, F \Flagged,
// T \Deleted, D \Draft, P $Forwarded; lowercase letters are Dovecot keywords,
// mapped through the folder's dovecot-keywords file when present (ignored
// otherwise). Files in new/ have no info part, so no flags (\Recent is IMAP
// session state and is never set). InternalDate is the file mtime
// (Dovecot and most delivery agents set it to the delivery time). A file that
// is renamed while the walk runs (a client marking it seen, new/ → cur/) is
// found again by its unique part. A file is reported to onErr, not returned,
// when it cannot be read, is not a regular file, is larger than MaxBytes, is
// empty, or does not look like mail: its header section (up to the first
// blank line, at most 64 KiB looked at) contains a NUL byte, or its first line
// is neither a header field ("Name:") nor an mbox "From " line. A file that
// starts with an mbox "From " line is returned unchanged, with a Note.
//
// # mbox reading
//
// A message starts at a line beginning with "From " that is at the start of
// the file (after optional blank lines) or follows a blank line ("\n" or
// "\r\n"). Quoting follows mboxrd: in every line matching ^>+"From " one ">" is
// removed. This is also right for mboxo files (which quote only "From " lines)
// except for lines that were ">From " before quoting, which mboxo cannot tell
// apart; mboxcl/mboxcl2 Content-Length headers are not used. The blank line
// before a separator, and a blank last line of the file, belong to the mbox
// format and are not part of the message. Line endings are kept as they are,
// so CRLF files give CRLF messages. A message is returned with a Note when the
// file ends without a final newline, or when no blank line ends its header
// (a file cut mid-header). Text before the first From_ line is returned as a
// message with a Note; empty messages and messages larger than MaxBytes are
// reported to onErr. Flags come from Status (R \Seen), X-Status (A \Answered,
// F \Flagged, D \Deleted, T \Draft) and X-Mozilla-Status (Thunderbird) headers
// when present. InternalDate is the date of the From_ line (asctime, with an
// optional numeric zone; UTC when none is given), zero when it does not parse.
// Source is "path:offset N", N the byte offset of the From_ line.
package mailfile
