// Package export writes eDiscovery productions of archived mail and verifies
// them offline: natives, extracted text and load files (Concordance DAT,
// CSV, EDRM XML 1.2, Opticon OPT) that review platforms load, mbox and EML
// zips for people who only want their mail, a manifest and SHA256SUMS that a
// third party checks without the archive.
//
// Invariants:
//
//   - Natives are byte-exact: a message's native is the raw message as
//     archived, whose sha256 is the archive's key of it; attachments are
//     their decoded bytes. Nothing is re-rendered.
//   - An export reads mail only through a Source, which hands out bytes
//     already checked against their hash (indexer refuses altered blobs):
//     an export never contains altered mail silently; a blob that fails its
//     check stops the export.
//   - A family travels together: a message and its attachments (and
//     embedded messages, recursively) are numbered consecutively, parent
//     first.
//   - Control numbers are stable across re-runs of the same scope: the
//     Source's order (sent date, then sha256) decides them, not timing.
//   - Nothing escapes the export directory: every path in it is made by
//     this package from control numbers, never from names in the mail.
//   - The manifest is written last; an export without one, or whose files
//     disagree with it, fails Verify.
//
// Package export knows no archive: the service layer implements Source over
// it, scoped to the caller (docs/design.md).
package export
