// Package query turns search text into one AST and the AST into a Bleve
// query. It is pure: no I/O, no state; every function is safe for
// concurrent use.
//
// # Invariants
//
//   - Both parsers (ParseHuman; ParseIMAP for IMAP SEARCH, RFC 9051 section
//     6.4.4) produce the same Node types, and one executor
//     (indexer.Archive.SearchIMAP) answers either. Bleve translates a Node
//     over the index fields named in schema.go, which the indexer's mapping
//     uses too.
//   - Parse errors are *ParseError values that name the byte offset of the
//     problem: parse "from:": from: needs a value (at offset 5). Panics are
//     used inside the parsers for control flow and never cross the API.
//   - Node.String prints the human syntax; ParseHuman(n.String()) returns
//     the same tree for every tree ParseHuman returns. IMAPString prints
//     IMAP criteria; ParseIMAP(IMAPString(n)) returns the same tree for
//     every tree ParseIMAP returns (FuzzParseIMAP checks both ways).
//   - Negation is the complement over all messages: a query of negations
//     alone ("-from:bob") means all messages except those.
//
// # Human syntax
//
// Terms are separated by white space and ANDed. Keys are case-insensitive;
// values of account: and mailbox: are case-sensitive (except INBOX).
//
//	invoice              a word, in any text field (see below)
//	"to be or not to be" a phrase: these words adjacent and in order
//	inv*                 a prefix: a word starting with "inv"
//	from:alice@example.org   to:  cc:  bcc:  subject:  body:
//	rcpt:bob@example.org any recipient: to, cc, bcc and the envelope
//	                     (RCPT TO) of journaled copies; bcc: finds the
//	                     envelope recipients no header names, too
//	attachment:report    filename:q3.pdf
//	                     each takes a word, a prefix (word*) or a "phrase"
//	before:2024-03-01    sent before that day (strictly)
//	after:2024-03-01     sent on or after that day (inclusive, as Gmail)
//	on:2024-03-01        sent on that day
//	larger:100k          raw message larger than N bytes (strictly)
//	smaller:2M           raw message smaller than N bytes (strictly)
//	has:attachment       has at least one attachment
//	account:alice        held in account "alice" (exact)
//	mailbox:Archive/2024 held in a mailbox of that name, any account (exact)
//	in:Archive/2024      the same as mailbox: (Gmail's spelling)
//	is:read  is:unread   some copy in scope has \Seen / none has
//	is:flagged  is:unflagged  is:answered  is:unanswered   likewise
//	newer_than:7d        sent at or after now minus 7 days (d, w, m, y)
//	older_than:1y        sent before now minus 1 year
//	list:word            the List-Id header; a word, prefix* or "phrase"
//	-term                not term: -from:bob, -"out of office", -(a b)
//	NOT term             the same as -term
//	a OR b               either; OR binds tighter than the implicit AND:
//	                     "a b OR c d" is a AND (b OR c) AND d
//	a AND b              the same as "a b"
//	( ... )              grouping: (from:a OR from:b) subject:report
//
// Details, decided here:
//
//   - Words. A bare word runs up to white space, "(" or ")"; quote words
//     that contain parentheses. A double quote starts a phrase only at the
//     start of a term or of a value; inside a bare word it is an ordinary
//     character. Words and phrases search the text fields: from, to, cc,
//     bcc (each address as "Display Name <local@domain>"), subject, body,
//     attachment names and attachment text. Each word may occur in a
//     different field; a phrase must occur within one field. Matching is
//     by token (the analysers TextAnalyzer and QueryAnalyzer: unicode word
//     segmentation, lower case, a word with punctuation split into its
//     parts, a possessive 's dropped, diacritics folded in the index; no
//     stop words, no stemming; docs/design.md "Index schema"), not by
//     substring: "report" does not find "reports"; use report*. A word that
//     the analyser splits into several tokens (alice@example.org → alice,
//     example, org; lists.sourceforge.net; e-mail; 東京) matches only with
//     those tokens adjacent, as a phrase would; each part alone
//     (sourceforge) matches too. A word typed without diacritics matches
//     with and without them (Lefevre finds Lefèvre), one typed with them
//     only that spelling.
//     A word or phrase without any letter or digit is an error, since it
//     could never match.
//   - Phrases. Inside quotes \" is a quote and \\ a backslash; any other
//     backslash stands for itself. A closing quote must be followed by
//     white space, ")" or the end.
//   - Prefixes. word* must have at least 2 characters before the "*", so
//     that Bleve's expansion over the term dictionary stays bounded, and
//     must be a prefix of one token: it may hold letters, digits and the
//     joiners the tokenizer keeps inside words (. , : ; ' _), not "@", "-"
//     or "/". A prefix with joiners (lists.sourcef*) is the phrase of its
//     leading parts and a prefix of the last, in the same field. Han and
//     Hiragana are indexed one character each, so a prefix containing them
//     is an error (search the word without "*"). A "*"
//     elsewhere in a word is an ordinary character. The prefix is compared
//     in lower case.
//   - attachment: searches file names and extracted text of attachments;
//     filename: searches file names only (as Gmail's filename:). body:
//     searches the body text only, subject: the subject only.
//   - Keys. A key is ASCII letters followed by ":" and, without white space,
//     its value (from: alice is an error). An unknown key is an error that
//     lists the known ones; quote a word that contains a colon to search for
//     it ("re:meeting"). Text of the form letters:// is a word, so that URLs
//     (http://example.org/x) stay searchable; words whose colon is not
//     after letters only (10:30, x-y:z) are words too.
//   - Operators OR, AND and NOT are upper case only; "or", "and" and "not"
//     are words. Quote "OR" to search for the word. A "-" negates only when
//     it starts a term and is directly followed by it ("- x" is an error);
//     inside a word it is an ordinary character (e-mail).
//   - Dates are YYYY-MM-DD (YYYY/MM/DD is accepted) and compare the sent
//     date (Date: header) as the day written in the message's own zone,
//     disregarding the time and zone, as IMAP SENTBEFORE/SENTON/SENTSINCE
//     do: a message dated Fri, 1 Mar 2024 23:30 -0800 is on:2024-03-01.
//     before: is exclusive and after: inclusive, so
//     "after:2024-03-01 before:2024-04-01" is March.
//   - Sizes are bytes, or a number with suffix k/K (1024), m/M (1024²) or
//     g/G (1024³); comparisons are strict as IMAP LARGER/SMALLER.
//   - is: asks about the IMAP flags of the message's copies in the
//     search's scope, which the parser cannot know: the indexer writes each
//     Flag as a FlagIn over the places of the caller's accounts and of the
//     query's positive account: and mailbox: conjuncts (docs/design.md,
//     "Search operators and sorts"). is:unread is -is:read, so the two
//     split every answer.
//   - newer_than: and older_than: take a count from 1 to 9999 and a unit:
//     d (24 hours), w (7 days), m (calendar months), y (calendar years).
//     They compare the sent date to the second with the moment Bleve
//     translates the query; a message without a valid Date: matches
//     neither. Keys may hold "_" after their first letter for them.
//   - mailbox: takes one exact name (it may contain "/" and "." and be
//     quoted: mailbox:"Sent Items"); "*" and "%" are errors, not
//     wildcards. INBOX in any case means INBOX.
//   - A query must be valid UTF-8. An empty query (or only white space) is
//     an error, as are unmatched parentheses, empty parentheses, an OR or
//     AND without a term on both sides, and a dangling "-" or NOT. Groups
//     and negations nest at most 100 deep.
//
// # Translation to Bleve
//
// And becomes a conjunction, with its negated members gathered into the
// MustNot of one boolean query (Must = match-all when nothing is positive);
// Or a disjunction (min 1); Not a boolean query (Must = match-all,
// MustNot = the node). A word is, per field, a match query (a plain ASCII
// word: one token) or a match-phrase query (any other word), ORed over the
// fields; a phrase a match-phrase query per field; a prefix a prefix query
// per field on the lower-cased prefix. Dates are numeric ranges on the
// YYYYMMDD field day, sizes on size, has:attachment a boolean query,
// account: and mailbox: term queries on keyword fields; a Flag a term
// query on flag (any copy), a FlagIn a disjunction of its places' flag
// terms, an Age a numeric range on time. Substring matching (IMAP
// semantics), internal dates, UIDs and headers are not answered by the
// index: Bleve returns an error for them, and indexer.Archive.SearchIMAP
// answers them (in the IMAP syntax a Flag is each occurrence's own).
//
// # IMAP SEARCH
//
// ParseIMAP takes the criteria of `UID SEARCH` (optionally starting with
// CHARSET UTF-8 or US-ASCII; other charsets are a BADCHARSET error): every
// key of RFC 9051 and RFC 3501, sequence sets, parenthesised lists,
// quoted strings (" and \ only), literals ({n} or {n+}, then CRLF or LF)
// and atoms. Keys are case-insensitive; blanks between keys may be runs.
// Error offsets are 0-based bytes, like the human syntax's.
//
// The executor answers for one mailbox what a server session that had just
// selected it would, as of the archive's last sync: the messages still on
// the server (expunged ones only with --include-expunged). Matching follows
// Dovecot without an FTS plugin, the reference:
//
//   - String keys are case-insensitive substrings of the decoded field, by
//     i;unicode-casemap as Dovecot 2.3 has it: each character's simple
//     titlecase, then a Hangul syllable's jamo or the character's
//     UnicodeData decomposition (canonical or compatibility) one level
//     deep, not applied again. "Ｆｒｅｅ" contains "free" and "Café"
//     contains "cafe", but "ß" is not "ss" ("GRÜSSE" does not find
//     "Grüße") and "KẾ" does not contain "KE" (Ế is Ê + acute there).
//   - FROM, TO, CC, BCC search the address list as Dovecot's own parser
//     reads it (message_address_parse, salvaging, with placeholders for
//     what is missing) and writes it back (message_address_write), then
//     decoded: `name <local@domain>, ...`, every address in angle brackets,
//     a name quoted when it is not all atext (unless it holds an encoded
//     word), a group as `name: member, member;`. So FROM "<" matches every
//     message with a From: address, FROM "Tim Peters <" does not match
//     `Tim Peters <tim@x>` (the name is written "Tim Peters" in quotes), TO
//     "undisclosed" matches `To: undisclosed-recipients:;`, and a broken
//     field is searched as Dovecot salvages it: `From: alice` is
//     "<alice@MISSING_DOMAIN>", `To: Foo <bar@x` is "Foo
//     <bar@SYNTAX_ERROR>" (also MISSING_MAILBOX, INVALID_ROUTE). A quoted
//     local part is written as it was ("odd local"@host), and an encoded
//     word where none may be (=?...?=@host) is decoded.
//   - SUBJECT searches the Subject with runs of blanks made one space, then
//     decoded. HEADER searches the named top-level field, unfolded (blanks
//     kept, except that a tab starting a continuation line is a space:
//     "a\n\t\tb" is "a \tb") and decoded, its value starting after the
//     colon and at most one blank ("X-A:   v" has the value "  v"); HEADER
//     name "" tests presence.
//   - BODY searches every text/* part (and a message without Content-Type)
//     decoded from its transfer encoding, leniently (a bad quoted-printable
//     escape is kept; blanks at a quoted-printable line end are padding and
//     dropped), and its charset when glibc's iconv (Dovecot's converter) knows
//     the name; a part in a charset it does not know (ks_c_5601-1987, x-sjis)
//     is read as UTF-8, each invalid sequence a U+FFFD, as Dovecot falls back
//     (an encoded word in such a charset is its bytes so read and, as Dovecot
//     appends it, not case-folded: SUBJECT "o" does not find its "Ǫ"); HTML as
//     it is, tags included; message/* parts other than message/rfc822 (a
//     bounce's delivery-status) are text too, and a message/rfc822 is searched
//     as its header and parts. Parts of other types are not searched, nor is a
//     part whose Content-Type is present but not "type/subtype" followed by the
//     end or ";" ("text/plain charset=x", "multipart/mixed boundary=b", "text",
//     empty); a bad parameter does not invalidate the type. Line ends are LF,
//     as Dovecot stores mail by default: BODY "a\nb" finds a line break,
//     "a\r\nb" none. TEXT searches the top-level header (lines "name" + the
//     colon and blank as written + value, joined by CRLF: "X-Empty:" holds
//     "x-empty:\r\n" but not "x-empty: "), the body and the headers of nested
//     parts, each on its own.
//   - BEFORE/ON/SINCE compare the day of the INTERNALDATE in the zone the
//     server gave it; SENTBEFORE/SENTON/SENTSINCE the day of the Date:
//     header in its own zone, disregarding time and zone.
//   - LARGER/SMALLER compare RFC822.SIZE (the bytes the server sent)
//     strictly. UID sets take "*" as the largest UID in use; a:b and b:a
//     are the same range. Sequence sets follow Dovecot: "*" is infinity in a
//     range, ranges merge, a lone "*" is the last message, and all is then
//     cut at the number of messages, so with 12 messages "13:*" holds
//     nothing while "UID 13:*" holds the largest UID.
//
// Session notions, given an archive meaning:
//
//   - Sequence numbers: the position among the mailbox's messages still on
//     the server, in UID order (what a fresh SELECT would number them).
//   - RECENT matches nothing: \Recent belongs to the one session that first
//     saw a message, and the archive saw it read-only (EXAMINE). So NEW
//     (RECENT UNSEEN) matches nothing and OLD everything.
//   - $ (a saved search result) and MODSEQ (the archive keeps no
//     mod-sequences) are errors.
//
// Deviations from Dovecot, each kept in the conformance suite
// (indexer/imapsearch_dovecot_test.go) with the messages concerned, and
// classified automatically by the generated differential
// (indexer/imapsearch_gen_test.go, which reduces each difference to the
// key and message concerned):
//
//   - A Date: header Dovecot cannot parse ("2002/09/14 Sat 02:29:32 CDT",
//     "Sat Sep 21 08:18:08 2002") counts there as 1 Jan 1970, so such
//     messages are SENTBEFORE any day. mailvault reads the date a person
//     reads, the one its human syntax and listings show: an eDiscovery
//     search by sent date must find them in their month. A message with no
//     Date: at all is also 1 Jan 1970 to Dovecot; to mailvault it has no
//     sent date, and no SENTBEFORE, SENTON or SENTSINCE matches it.
//   - A quoted string with a backslash before anything but " and \ is a
//     parse error (RFC 9051); Dovecot reads `"\r"` as "r" and `"\t"` as
//     "t", which is never what the sender meant.
//   - A needle holding a line break: Dovecot searches the message as it
//     stored it, LF (its default) or CRLF (a file delivered with CRLF), so
//     its answer depends on how each message reached its disk, which no
//     IMAP client can see. mailvault searches LF line ends.
//   - Dovecot's answer to a query is not always what its own answers to
//     each key compose to; mailvault composes by the RFC (AND, OR, NOT of
//     the keys' answers). Seen: HEADER on an address field next to the
//     address key of that field (`TO "x" HEADER To "a,  b"`: Dovecot then
//     searches the address list as written back, not the header), and NOT
//     over a list of two date keys (`NOT (SINCE 1-Dec-2026 SINCE
//     2-Dec-2026)` matches nothing there: its simplifier merges the dates).
//   - Some sequence sets crash Dovecot 2.3.19's imap process (a panic in
//     seq_range_array_remove_range: `(9,17:*,*:5)` over 14 messages); it
//     gives no answer to match, and mailvault answers by the rules above.
//
// Scope reports the account: and mailbox: values a query requires of every
// hit, so that a caller can show the matching occurrences of a message.
package query
