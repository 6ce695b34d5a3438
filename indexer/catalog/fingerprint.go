package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Fingerprints and provenance (issue 16 item 3): the same mail archived
// from the journal and from a mailbox is two messages (different bytes),
// linked by their normalised-content fingerprint (package indexer,
// fingerprint.go says what goes in), which includes the Message-ID.
//
// Columns on messages, added by a migration to catalogs made before them:
//   - fingerprint: hex sha256, '' for a message without a Message-ID (never
//     linked), NULL when not computed yet (a row from before the column:
//     Archive.BackfillFingerprints fills it from the blob).
//   - fingerprint_v: the version of the function that computed it; a row
//     of an older version is recomputed like a NULL one.
//
// A copy is the journal's when its occurrence has an envelope (envelopes.go:
// every journaled occurrence has one, written in its transaction), the
// mailbox's otherwise (harvested or imported). A journal report's own blob
// (journal_reports below) is neither: it is the wrapper, not the mail.

func init() {
	migrations = append(migrations, migrateFingerprint)
	moreSchemas = append(moreSchemas, journalReportsSchema)
}

// journalReportsSchema links an Exchange journal report (its own message,
// kept in the journal account's Journal/Reports mailbox) to the original
// it carried, archived as a message of its own. One report carries one
// original; one original can come in several reports (Exchange sends one
// per recipient group when it bifurcates), so the key is the report. A
// message that claimed to be a report and did not parse has a row with
// no original and the parse error: it is flagged, archived as it came.
const journalReportsSchema = `
CREATE TABLE IF NOT EXISTS journal_reports (
	report_id   INTEGER PRIMARY KEY REFERENCES messages(id),
	original_id INTEGER REFERENCES messages(id),  -- NULL: the report did not parse
	error       TEXT NOT NULL DEFAULT '',
	linked_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_reports_original ON journal_reports(original_id);
`

// migrateFingerprint adds the fingerprint columns and their index when the
// messages table lacks them.
func migrateFingerprint(tx *sql.Tx) error {
	rows, err := tx.Query(`PRAGMA table_info(messages)`)
	if err != nil {
		return fmt.Errorf("migrate fingerprint: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var cid, notnull, pk int
		var name, typ string
		var dflt sql.NullString
		if err := rows.Scan(&cid, &name, &typ, &notnull, &dflt, &pk); err != nil {
			rows.Close()
			return fmt.Errorf("migrate fingerprint: %w", err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate fingerprint: %w", err)
	}
	for _, col := range []string{"fingerprint TEXT", "fingerprint_v INTEGER"} {
		if name, _, _ := strings.Cut(col, " "); !have[name] {
			if _, err := tx.Exec(`ALTER TABLE messages ADD COLUMN ` + col); err != nil {
				return fmt.Errorf("migrate fingerprint: add column %s: %w", name, err)
			}
		}
	}
	if _, err := tx.Exec(`CREATE INDEX IF NOT EXISTS messages_by_fingerprint ON messages(fingerprint) WHERE fingerprint != ''`); err != nil {
		return fmt.Errorf("migrate fingerprint: %w", err)
	}
	// A disposed message's fingerprint is derived from its content (the
	// Message-ID, the text): disposal scrubs it with the rest of the row
	// (tombstones.go scrubs subject, sender, Message-ID), so an erased
	// message links to nothing, and the version is set past every real
	// one so that the backfill never looks for its deleted blob. A trigger
	// on disposed, created here because migrations run after every
	// schema (disposed is tombstones.go's); rows disposed before it are
	// scrubbed once.
	for _, q := range []string{
		`CREATE TRIGGER IF NOT EXISTS disposed_scrubs_fingerprint AFTER INSERT ON disposed
		BEGIN UPDATE messages SET fingerprint = '', fingerprint_v = ` + scrubbedVersion + ` WHERE id = NEW.message_id; END`,
		`UPDATE messages SET fingerprint = '', fingerprint_v = ` + scrubbedVersion + `
		WHERE id IN (SELECT message_id FROM disposed) AND (fingerprint_v IS NULL OR fingerprint_v != ` + scrubbedVersion + `)`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("migrate fingerprint: %w", err)
		}
	}
	return nil
}

// scrubbedVersion is the fingerprint_v of a disposed message: above any
// version the function will have.
const scrubbedVersion = "2147483647"

// FingerprintTask is a message whose fingerprint is missing or old.
type FingerprintTask struct {
	ID     int64
	SHA256 [32]byte
}

// MissingFingerprints returns up to limit messages after afterID, by id,
// without a fingerprint of version (or a newer one).
func (c *Catalog) MissingFingerprints(ctx context.Context, version int, afterID int64, limit int) ([]FingerprintTask, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, sha256 FROM messages
		WHERE id > ? AND (fingerprint_v IS NULL OR fingerprint_v < ?) ORDER BY id LIMIT ?`, afterID, version, limit)
	if err != nil {
		return nil, fmt.Errorf("missing fingerprints: %w", err)
	}
	defer rows.Close()
	var out []FingerprintTask
	for rows.Next() {
		var t FingerprintTask
		var sha []byte
		if err := rows.Scan(&t.ID, &sha); err != nil {
			return nil, fmt.Errorf("missing fingerprints: %w", err)
		}
		copy(t.SHA256[:], sha)
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetFingerprints records fingerprints of version, by message id, in one
// transaction.
func (c *Catalog) SetFingerprints(ctx context.Context, version int, fps map[int64]string) error {
	if len(fps) == 0 {
		return nil
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for id, fp := range fps {
		if _, err := tx.exec(ctx, `UPDATE messages SET fingerprint = ?, fingerprint_v = ? WHERE id = ?`, fp, version, id); err != nil {
			return fmt.Errorf("set fingerprint of message %d: %w", id, err)
		}
	}
	return tx.Commit()
}

// LinkJournalReport records that the report message (its sha256) carried
// the original; both must be in the catalog. With parseErr set (and
// original ignored) it records that the message claimed to be a report and
// did not parse. Recording again is a no-op.
func (c *Catalog) LinkJournalReport(ctx context.Context, report, original [32]byte, parseErr string) error {
	var err error
	if parseErr != "" {
		_, err = c.db.ExecContext(ctx, `INSERT INTO journal_reports(report_id, original_id, error, linked_at)
			SELECT r.id, NULL, ?, ? FROM messages r WHERE r.sha256 = ? ON CONFLICT DO NOTHING`, parseErr, now(), report[:])
	} else {
		_, err = c.db.ExecContext(ctx, `INSERT INTO journal_reports(report_id, original_id, linked_at)
			SELECT r.id, o.id, ? FROM messages r, messages o WHERE r.sha256 = ? AND o.sha256 = ?
			ON CONFLICT DO NOTHING`, now(), report[:], original[:])
	}
	if err != nil {
		return fmt.Errorf("link journal report %x: %w", report[:4], err)
	}
	return nil
}

// ReportError returns the parse error of a message that claimed to be a
// journal report and did not parse, "" for any other.
func (c *Catalog) ReportError(ctx context.Context, sha [32]byte) (string, error) {
	var e string
	err := c.db.QueryRowContext(ctx, `SELECT jr.error FROM journal_reports jr JOIN messages m ON m.id = jr.report_id
		WHERE m.sha256 = ? AND jr.original_id IS NULL`, sha[:]).Scan(&e)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return e, err
}

// Copy is one copy of a message, as the provenance of a message lists it.
type Copy struct {
	SHA256   string `json:"sha256"` // the copy's own message (hex): the same mail, other bytes when it differs
	Account  string `json:"account"`
	Mailbox  string `json:"mailbox"`
	Journal  bool   `json:"journal"` // the copy came by journaling (it has an envelope)
	Expunged bool   `json:"expunged,omitempty"`
	Report   string `json:"report,omitempty"` // the journal report that carried it (hex), if one did
}

// copiesQuery is Copies' query; its one parameter is the sha256.
const copiesQuery = `
		WITH me AS (SELECT id, fingerprint FROM messages WHERE sha256 = ?),
		grp AS (
			SELECT id FROM me
			-- m.fingerprint != '' lets SQLite use the partial index
			-- messages_by_fingerprint (it does not infer it from
			-- me.fingerprint != ''): without it every call scanned every
			-- message, and an export of N messages cost N² rows.
			UNION SELECT m.id FROM messages m, me WHERE me.fingerprint != '' AND m.fingerprint != '' AND m.fingerprint = me.fingerprint)
		SELECT lower(hex(m.sha256)), a.name, mb.name, e.mailbox_id IS NOT NULL, o.expunged_at != '',
			(SELECT lower(hex(r.sha256)) FROM journal_reports jr JOIN messages r ON r.id = jr.report_id
				WHERE jr.original_id = m.id LIMIT 1)
		FROM grp
		JOIN messages m ON m.id = grp.id
		JOIN occurrences o ON o.message_id = m.id
		JOIN mailboxes mb ON mb.id = o.mailbox_id
		JOIN accounts a ON a.id = mb.account_id
		LEFT JOIN envelopes e ON e.mailbox_id = o.mailbox_id AND e.uidvalidity = o.uidvalidity AND e.uid = o.uid
		WHERE m.id NOT IN (SELECT report_id FROM journal_reports WHERE original_id IS NOT NULL)
		ORDER BY m.id, a.name, mb.name, o.uidvalidity, o.uid`

// Copies returns every copy of the message sha and of the messages linked
// to it (same fingerprint), journal and mailbox, by message and place.
// Journal reports themselves are left out.
func (c *Catalog) Copies(ctx context.Context, sha [32]byte) ([]Copy, error) {
	rows, err := c.db.QueryContext(ctx, copiesQuery, sha[:])
	if err != nil {
		return nil, fmt.Errorf("copies of %x: %w", sha[:4], err)
	}
	defer rows.Close()
	var out []Copy
	for rows.Next() {
		var cp Copy
		var report sql.NullString
		if err := rows.Scan(&cp.SHA256, &cp.Account, &cp.Mailbox, &cp.Journal, &cp.Expunged, &report); err != nil {
			return nil, fmt.Errorf("copies of %x: %w", sha[:4], err)
		}
		cp.Report = report.String
		out = append(out, cp)
	}
	return out, rows.Err()
}

// Provenances returns ProvenanceOf(Copies(k)) for each of keys that is
// archived, in one query per 500 keys: an export needs the provenance of
// every message in scope, and a query per message was most of its time.
// Keys of journal reports themselves get no entry, as Copies gives them
// no copies.
func (c *Catalog) Provenances(ctx context.Context, keys [][32]byte) (map[[32]byte]string, error) {
	out := make(map[[32]byte]string, len(keys))
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k[:]
		}
		// The same group as copiesQuery (the message and the messages of
		// its fingerprint, reports left out), every occurrence a journal
		// copy when it has an envelope.
		rows, err := c.db.QueryContext(ctx, `
			WITH k AS (SELECT id, sha256, fingerprint FROM messages WHERE sha256 IN (?`+repeatComma(len(chunk)-1)+`)),
			grp(sha, mid) AS (
				SELECT sha256, id FROM k
				UNION SELECT k.sha256, m.id FROM k JOIN messages m
					ON k.fingerprint != '' AND m.fingerprint != '' AND m.fingerprint = k.fingerprint)
			SELECT grp.sha, MAX(e.mailbox_id IS NOT NULL), MAX(e.mailbox_id IS NULL)
			FROM grp
			JOIN occurrences o ON o.message_id = grp.mid
			LEFT JOIN envelopes e ON e.mailbox_id = o.mailbox_id AND e.uidvalidity = o.uidvalidity AND e.uid = o.uid
			WHERE grp.mid NOT IN (SELECT report_id FROM journal_reports WHERE original_id IS NOT NULL)
			GROUP BY grp.sha`, args...)
		if err != nil {
			return nil, fmt.Errorf("provenances: %w", err)
		}
		for rows.Next() {
			var b []byte
			var journal, mailbox bool
			if err := rows.Scan(&b, &journal, &mailbox); err != nil {
				rows.Close()
				return nil, fmt.Errorf("provenances: %w", err)
			}
			var k [32]byte
			copy(k[:], b)
			switch {
			case journal && mailbox:
				out[k] = ProvenanceBoth
			case journal:
				out[k] = ProvenanceJournal
			case mailbox:
				out[k] = ProvenanceMailbox
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("provenances: %w", err)
		}
	}
	return out, nil
}

// Provenance kinds: which sources saw a message.
const (
	ProvenanceJournal = "journal"
	ProvenanceMailbox = "mailbox"
	ProvenanceBoth    = "both"
)

// ProvenanceOf says which sources saw the mail of copies (Copies' answer):
// journal, mailbox, both, or "" for none.
func ProvenanceOf(copies []Copy) string {
	var j, m bool
	for _, c := range copies {
		if c.Journal {
			j = true
		} else {
			m = true
		}
	}
	switch {
	case j && m:
		return ProvenanceBoth
	case j:
		return ProvenanceJournal
	case m:
		return ProvenanceMailbox
	}
	return ""
}

// CoverageInput says how journal mail maps to accounts.
type CoverageInput struct {
	// Addresses maps a lower-cased mail address to the accounts it is
	// (an account's username when it is an address, and its configured
	// addresses).
	Addresses map[string][]string
	// Accounts, when set, limits the report to these accounts.
	Accounts []string
}

// AccountCoverage counts one account's mail by the sources that saw it.
// A "mail" is a group of linked messages (one fingerprint; a message
// without one is its own group).
type AccountCoverage struct {
	Account     string `json:"account"`
	JournalOnly int    `json:"journal_only"` // the journal saw it, no mailbox of the account holds it: the mailbox lost it (or it was never harvested)
	MailboxOnly int    `json:"mailbox_only"` // in the account's mailboxes, dated after the journal began, and the journal never saw it
	Both        int    `json:"both"`
	// BeforeJournal counts mailbox mail dated before the journal's first
	// delivery: the journal could not have seen it, so it is not counted
	// as missed.
	BeforeJournal int `json:"before_journal"`
}

// Coverage is the journal coverage report.
type Coverage struct {
	JournalSince string            `json:"journal_since,omitempty"` // RFC 3339 UTC of the first journal delivery, "" with none
	Accounts     []AccountCoverage `json:"accounts"`
	// Unmapped counts journal mail none of whose envelope addresses is
	// an account's: it belongs to no account of the report.
	Unmapped int `json:"unmapped"`
}

// JournalCoverage computes the coverage report over the whole catalog in
// one read transaction. It holds one small record per message in memory.
//
// Per account: a journal message belongs to the accounts its envelope's
// sender and recipients map to (in.Addresses); a mailbox copy belongs to
// its mailbox's account (the journal's own account's copies are the
// journal's, not a mailbox's). Journal reports are not mail of their own.
func (c *Catalog) JournalCoverage(ctx context.Context, in CoverageInput) (*Coverage, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	group := func(id int64, fp sql.NullString) string {
		if fp.Valid && fp.String != "" {
			return fp.String
		}
		return fmt.Sprintf("#%d", id)
	}
	out := &Coverage{}
	var since sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT min(received_at) FROM envelopes
		WHERE message_id NOT IN (SELECT report_id FROM journal_reports WHERE original_id IS NOT NULL)`).Scan(&since); err != nil {
		return nil, fmt.Errorf("journal coverage: %w", err)
	}
	out.JournalSince = since.String
	var sinceUnix int64 = -1
	if since.Valid {
		if err := tx.QueryRowContext(ctx, `SELECT unixepoch(?)`, since.String).Scan(&sinceUnix); err != nil {
			return nil, fmt.Errorf("journal coverage: %w", err)
		}
	}
	journal := map[string]map[string]bool{} // account → groups the journal saw for it
	jrows, err := tx.QueryContext(ctx, `SELECT m.id, m.fingerprint, e.mail_from, e.recipients
		FROM envelopes e JOIN messages m ON m.id = e.message_id
		WHERE m.id NOT IN (SELECT report_id FROM journal_reports WHERE original_id IS NOT NULL)`)
	if err != nil {
		return nil, fmt.Errorf("journal coverage: %w", err)
	}
	journalGroups := map[string]bool{}
	mapped := map[string]bool{}
	for jrows.Next() {
		var id int64
		var fp sql.NullString
		var from, rcptJSON string
		if err := jrows.Scan(&id, &fp, &from, &rcptJSON); err != nil {
			jrows.Close()
			return nil, fmt.Errorf("journal coverage: %w", err)
		}
		g := group(id, fp)
		journalGroups[g] = true
		var rcpts []string
		_ = json.Unmarshal([]byte(rcptJSON), &rcpts) // written by envelopes.go; a bad row maps to its sender only
		for _, addr := range append(rcpts, from) {
			for _, acct := range in.Addresses[strings.ToLower(strings.TrimSpace(addr))] {
				if journal[acct] == nil {
					journal[acct] = map[string]bool{}
				}
				journal[acct][g] = true
				mapped[g] = true
			}
		}
	}
	jrows.Close()
	if err := jrows.Err(); err != nil {
		return nil, fmt.Errorf("journal coverage: %w", err)
	}
	for g := range journalGroups {
		if !mapped[g] {
			out.Unmapped++
		}
	}
	type mgroup struct{ early bool }
	mailbox := map[string]map[string]*mgroup{} // account → groups in its mailboxes
	mrows, err := tx.QueryContext(ctx, `SELECT DISTINCT a.name, m.id, m.fingerprint, m.date_unix
		FROM occurrences o
		JOIN mailboxes mb ON mb.id = o.mailbox_id
		JOIN accounts a ON a.id = mb.account_id
		JOIN messages m ON m.id = o.message_id
		LEFT JOIN envelopes e ON e.mailbox_id = o.mailbox_id AND e.uidvalidity = o.uidvalidity AND e.uid = o.uid
		WHERE e.mailbox_id IS NULL AND m.id NOT IN (SELECT report_id FROM journal_reports WHERE original_id IS NOT NULL)
		AND a.id NOT IN (SELECT DISTINCT mb2.account_id FROM envelopes e2 JOIN mailboxes mb2 ON mb2.id = e2.mailbox_id)`)
	if err != nil {
		return nil, fmt.Errorf("journal coverage: %w", err)
	}
	for mrows.Next() {
		var acct string
		var id int64
		var fp sql.NullString
		var date sql.NullInt64
		if err := mrows.Scan(&acct, &id, &fp, &date); err != nil {
			mrows.Close()
			return nil, fmt.Errorf("journal coverage: %w", err)
		}
		if mailbox[acct] == nil {
			mailbox[acct] = map[string]*mgroup{}
		}
		g := group(id, fp)
		early := sinceUnix < 0 || (date.Valid && date.Int64 < sinceUnix)
		if mg := mailbox[acct][g]; mg != nil {
			mg.early = mg.early && early
		} else {
			mailbox[acct][g] = &mgroup{early: early}
		}
	}
	mrows.Close()
	if err := mrows.Err(); err != nil {
		return nil, fmt.Errorf("journal coverage: %w", err)
	}
	names := map[string]bool{}
	for a := range journal {
		names[a] = true
	}
	for a := range mailbox {
		names[a] = true
	}
	for _, accts := range in.Addresses {
		for _, a := range accts {
			names[a] = true
		}
	}
	if in.Accounts != nil {
		only := map[string]bool{}
		for _, a := range in.Accounts {
			only[a] = true
		}
		names = only
	}
	for a := range names {
		ac := AccountCoverage{Account: a}
		for g := range journal[a] {
			if mailbox[a][g] != nil {
				ac.Both++
			} else {
				ac.JournalOnly++
			}
		}
		for g, mg := range mailbox[a] {
			switch {
			case journal[a][g]:
			case mg.early:
				ac.BeforeJournal++
			default:
				ac.MailboxOnly++
			}
		}
		out.Accounts = append(out.Accounts, ac)
	}
	slices.SortFunc(out.Accounts, func(x, y AccountCoverage) int { return strings.Compare(x.Account, y.Account) })
	if out.Accounts == nil {
		out.Accounts = []AccountCoverage{}
	}
	return out, nil
}
