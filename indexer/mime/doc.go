// Package mime turns one raw RFC 5322 message into one document for the
// full-text index: decoded envelope fields, all body text as UTF-8, and the
// list of attachments.
//
// Invariants:
//
//   - Parse never panics, never blocks and never fails. Whatever the input
//     (truncated mail, broken MIME, binary garbage), it returns a non-nil
//     *Message holding everything that could be salvaged; each thing that had
//     to be salvaged or skipped is described in Message.Problems.
//   - Work is bounded by the input size and by Limits: nesting depth, number
//     of parts, bytes per header block, bytes decoded and text kept. Crossing
//     a limit adds a "limit exceeded: ..." problem and sets Message.LimitHit;
//     parsing then goes on with the rest of the message where it can.
//   - Every string in a Message is valid UTF-8.
//   - Parse does not retain or modify raw, keeps no state between calls, and
//     is safe for concurrent use.
//
// Decisions:
//
//   - The MIME structure is walked by this package over the raw bytes, not
//     by go-message's entity reader: the message is already in memory, every
//     header block is parsed exactly once, part bodies are sub-slices of raw,
//     and one malformed header line, a missing closing boundary or an
//     unknown transfer encoding degrade only the part they occur in.
//     Charsets are decoded by github.com/emersion/go-message/charset (all of
//     golang.org/x/text's encodings plus its quirks table).
//   - Header values are unfolded, then raw 8-bit bytes that are not UTF-8
//     are decoded with the charset of the message's own Content-Type, else
//     with the first legacy charset an encoded word in the header names,
//     else as windows-1252 (a superset of ISO-8859-1's printable range);
//     then RFC 2047 encoded words are decoded. Adjacent encoded words in one charset
//     are joined before decoding, so a multi-byte character split across two
//     words survives. Encoded words inside quoted strings are decoded too.
//   - Undeclared or mislabelled body bytes: us-ascii and unlabelled parts
//     that are valid UTF-8 are kept as UTF-8; otherwise they are decoded as
//     windows-1252 (or by an HTML <meta> charset). ISO-8859-1 is read as
//     windows-1252, as browsers do. A byte order mark overrides the label.
//     An unknown charset is a problem and the bytes are salvaged the same
//     way. A text part with NUL bytes near its start (and no UTF-16/32
//     label or BOM) is reported as binary and yields no text.
//   - Message.Text holds the body text of text/* parts without a file name
//     (text/html converted to text) and of message/delivery-status parts,
//     separated by "\n\n", with CRLF turned into LF. In a multipart/alternative
//     only one alternative contributes text: the first text/plain, or the
//     first text/html when there is no text/plain or the plain one is blank,
//     or else the last alternative.
//   - A part is an attachment when its disposition is "attachment", when it
//     has a file name, or when it is not text. Inline images count, so
//     HasAttachments reports any non-body part. The text of text-like
//     attachments (text/*, JSON, XML, CSV, YAML, scripts, and
//     application/octet-stream named *.txt, *.csv, ...) goes to
//     Attachment.Text, not Message.Text.
//   - A message/rfc822 part is listed as an attachment (its raw size) and is
//     also descended into: its From, To, Cc, Date and Subject lines and its
//     body text are appended to Message.Text, its attachments are added to
//     Message.Attachments. Its header does not go to Message.Headers.
//   - Binary attachments are sized without being decoded: MaxDecodedBytes
//     bounds the bytes actually decoded for text extraction.
//   - Message.Parts counts MIME entities: the message itself, each multipart
//     and each leaf; a message/rfc822 part and the message it holds count
//     once. Problems name parts by IMAP part number ("part 1.2"); the
//     message's own body is "message body".
//   - A leading mbox "From " line is skipped. A header line that is not a
//     field is skipped when the next line is a field ("malformed line in
//     message header"); otherwise the body is taken to start there
//     ("missing blank line after message header").
//   - Message.Date keeps the zone written in the Date header (numeric or
//     named, e.g. EST, PDT, CET) as a time.FixedZone, so the calendar day is
//     the sender's day; a date without a zone is read as UTC.
//   - Addresses are parsed by a lenient RFC 5322 scanner: a mailbox that is
//     not name-addr or addr-spec is salvaged (an address found in it is kept,
//     the rest becomes the Name) and the field is reported as malformed.
//     Group names are dropped; their members are kept.
package mime
