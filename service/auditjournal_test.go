package service

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailvault/ledger"
)

// journalRows returns, for each detail of the audit table's imap-fetch
// rows, how many rows carry it, and checks that the ledger holds exactly
// the table's audit rows, each once, with the same fields.
func journalRows(t *testing.T, dir string) map[string]int {
	t.Helper()
	ctx := context.Background()
	u, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	rows, err := u.AuditQuery(ctx, AuditFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	byID := map[int64]AuditEntry{}
	for _, e := range rows {
		if e.Action == "imap-fetch" {
			got[e.Detail]++
		}
		byID[e.ID] = e
	}
	log, err := ledger.Open(filepath.Join(dir, LedgerDir))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	seen := map[int64]bool{}
	for i := int64(0); i < log.Size(); i++ {
		b, err := log.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		lf, err := ledger.DecodeLeaf(b)
		if err != nil {
			t.Fatal(err)
		}
		if lf.Kind != ledger.KindAudit {
			continue
		}
		e, ok := byID[lf.ID]
		if !ok || seen[lf.ID] {
			t.Fatalf("ledger leaf %d: audit row %d is not in the table, or ledgered twice", i, lf.ID)
		}
		seen[lf.ID] = true
		if e.At != lf.At || e.User != lf.User || e.Action != lf.Action || e.Detail != lf.Detail || e.Remote != lf.Remote {
			t.Fatalf("ledger leaf %d differs from audit row %d: %+v vs %+v", i, lf.ID, lf, e)
		}
	}
	if len(seen) != len(byID) {
		t.Fatalf("the ledger holds %d of the %d audit rows", len(seen), len(byID))
	}
	return got
}

// TestAuditJournalSIGKILL: a process that records bulk reads is killed
// (SIGKILL) while it writes them; every row it had been told was recorded
// (AuditRead returned) is in the table and the ledger after the next open,
// exactly once, also when the journal's last record was torn.
func TestAuditJournalSIGKILL(t *testing.T) {
	if os.Getenv("MAILVAULT_JOURNAL_CHILD") != "" {
		journalChild()
		return
	}
	for round, tear := range []bool{false, true} {
		dir := t.TempDir()
		u, err := OpenUsers(dir) // the schema, before the child
		if err != nil {
			t.Fatal(err)
		}
		u.Close()
		cmd := exec.Command(os.Args[0], "-test.run", "^TestAuditJournalSIGKILL$")
		cmd.Env = append(os.Environ(), "MAILVAULT_JOURNAL_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it after a number of rows that varies by round, in the
		// middle of writing (the child does not wait between rows).
		killAt := 3000 + 1700*round
		last := -1
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child: %q", sc.Text())
			}
			last = n
			if n >= killAt {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		if last < killAt {
			t.Fatalf("the child stopped at row %d before it was killed", last)
		}
		if tear {
			// A power loss can leave half a record at the end.
			f, err := os.OpenFile(filepath.Join(dir, AuditJournalFile), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := journalRecord(AuditEntry{User: "x", Action: "imap-fetch", Detail: "torn"})
			f.Write(rec[:len(rec)-3])
			f.Close()
		}
		got := journalRows(t, dir)
		for i := 0; i <= last; i++ {
			if c := got[fmt.Sprint("row ", i)]; c != 1 {
				t.Fatalf("round %d: row %d (acknowledged) is in the table %d times", round, i, c)
			}
		}
		if got["torn"] != 0 {
			t.Fatalf("round %d: the torn record was moved", round)
		}
		// Rows the child wrote after the last line read may be there too,
		// once each; nothing else.
		for d, c := range got {
			n, err := strconv.Atoi(strings.TrimPrefix(d, "row "))
			if err != nil || c != 1 || n < 0 {
				t.Fatalf("round %d: unexpected rows %q x%d", round, d, c)
			}
		}
		if fi, err := os.Stat(filepath.Join(dir, AuditJournalFile)); err != nil || fi.Size() != 0 {
			t.Fatalf("round %d: the journal is not empty after the open moved it: %v %v", round, fi.Size(), err)
		}
		t.Logf("round %d: killed after row %d acknowledged; %d rows in the table and the ledger", round, last, len(got))
	}
}

func journalChild() {
	u, err := OpenUsers(os.Getenv("MAILVAULT_JOURNAL_CHILD"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if err := u.AuditRead(context.Background(), AuditEntry{User: "a", Action: "imap-fetch", Detail: fmt.Sprint("row ", i)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(w, i)
		if i%16 == 0 {
			w.Flush()
		}
	}
}

// TestAuditJournalBounded: rows wait in memory only up to auditJournalMax
// (AuditRead moves them itself when the mover is late), the journal is
// emptied once it has grown past auditJournalKeep and everything in it is
// in the table, and a row written directly comes after the bulk rows
// before it.
func TestAuditJournalBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	u, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	detail := strings.Repeat("d", 1000)
	n := 3 * auditJournalMax
	maxPending := 0
	for i := 0; i < n; i++ {
		if err := u.AuditRead(ctx, AuditEntry{User: "a", Action: "imap-fetch", Detail: fmt.Sprint(i, detail)}); err != nil {
			t.Fatal(err)
		}
		u.journal.mu.Lock()
		maxPending = max(maxPending, len(u.journal.pending))
		u.journal.mu.Unlock()
	}
	if maxPending > auditJournalMax {
		t.Fatalf("%d rows waited in memory (bound %d)", maxPending, auditJournalMax)
	}
	if err := u.Audit(ctx, AuditEntry{User: "a", Action: "logout"}); err != nil {
		t.Fatal(err)
	}
	es, err := u.AuditTrail(ctx, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != n+1 || es[n].Action != "logout" || es[n-1].Detail != fmt.Sprint(n-1, detail) {
		t.Fatalf("%d rows; last %q", len(es), es[len(es)-1].Action)
	}
	for i := 0; i < n; i++ {
		if es[i].Detail != fmt.Sprint(i, detail) {
			t.Fatalf("row %d out of order: %.20q", i, es[i].Detail)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, AuditJournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > auditJournalKeep+int64(auditJournalMax)*1200 {
		t.Fatalf("the journal holds %d bytes after %d rows were moved", fi.Size(), n)
	}
	u.Close()
	if fi, err := os.Stat(filepath.Join(dir, AuditJournalFile)); err != nil || fi.Size() != 0 {
		t.Fatalf("the journal is not empty after Close: %v", err)
	}
	if got := journalRows(t, dir); len(got) != n {
		t.Fatalf("%d rows after reopening, want %d", len(got), n)
	}
}

// TestAuditJournalSecondProcess: a second open of the same store (another
// process, `mailvault user` beside serve) cannot take the journal and
// writes its bulk reads straight into the table, where the first one's
// reader sees them; the first's journal rows reach the second's reader
// within auditJournalDelay.
func TestAuditJournalSecondProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	u1, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer u1.Close()
	u2, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	if u1.journal == nil || u2.journal != nil {
		t.Fatalf("journal held by the first: %v, by the second: %v", u1.journal != nil, u2.journal != nil)
	}
	if err := u2.AuditRead(ctx, AuditEntry{User: "b", Action: "imap-fetch", Detail: "second"}); err != nil {
		t.Fatal(err)
	}
	if err := u1.AuditRead(ctx, AuditEntry{User: "a", Action: "imap-fetch", Detail: "first"}); err != nil {
		t.Fatal(err)
	}
	es, err := u1.AuditQuery(ctx, AuditFilter{Action: "imap-fetch"})
	if err != nil || len(es) != 2 {
		t.Fatalf("the first sees %d rows (%v)", len(es), err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		es, err := u2.AuditQuery(ctx, AuditFilter{Action: "imap-fetch"})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second sees %d rows after 2 s", len(es))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
