// Package service is the running archive as a service: the one API that
// every front door calls (the web pages, the JSON API, the local socket the
// CLI uses, and later the IMAP view and export jobs), with the caller's
// identity an argument of each call.
//
// Invariants:
//
//   - Scope is applied once, here, before a query runs. A Caller who sees
//     only some accounts gets account: and mailbox: terms rewritten so that
//     nothing can match through another account, the accounts filter set to
//     theirs, and occurrences and facet places outside them dropped; totals
//     and facets then count only what the caller may see. Anything outside
//     the scope answers exactly like something that does not exist
//     (ErrNotFound).
//   - Every access is audited before its data leaves: a search, a read, a
//     download. If the audit record cannot be written the request fails
//     (fail closed).
//   - The service owns the long work of a running archive: harvesters (one
//     per configured account, fed into the archive through Sink), and jobs
//     (imports, verify, reindex) with an id, progress and a result. Status
//     is computed in memory from the catalog and the live harvesters.
//
// Map of the application (docs/design.md has the picture): sources (harvest
// for IMAP, Import for files) feed the archive (indexer: store, catalog,
// index, ingest); query is the language library; front doors (web, the CLI
// through the local socket) call this package.
package service
