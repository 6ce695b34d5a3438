package export

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FLAGS: per copy, each flag with since when, the copies in FOLDERPATH's
// order; the same value read back from the DAT, the CSV and the EDRM XML.
func TestFlagsField(t *testing.T) {
	seen := time.Date(2026, 12, 1, 21, 42, 5, 123e6, time.UTC)
	a, b, c := occ("alice", "INBOX", 1), occ("bob", "Archive", 2), occ("carol", "INBOX", 3)
	a.Flags = []FlagSince{{`\Seen`, seen}, {`\Answered`, seen.Add(time.Hour)}}
	b.Flags = []FlagSince{{`$Label,odd`, time.Time{}}}
	src := &memSource{msgs: []Message{msg(plainMsg, a, b, c)}}
	dir, _ := write(t, src, Options{Dedup: DedupGlobal})
	mustVerify(t, dir)
	want := `\Seen 2026-12-01T21:42:05.123Z, \Answered 2026-12-01T22:42:05.123Z; $Label,odd; `
	wantFolders := "alice/INBOX; bob/Archive; carol/INBOX"

	datB, err := os.ReadFile(filepath.Join(dir, DATName))
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, f := range Fields() {
		col[f] = i
	}
	if Fields()[len(Fields())-1] != "FLAGS" {
		t.Errorf("FLAGS is not the last field: %v", Fields())
	}
	for name, rows := range map[string][][]string{"DAT": readDAT(t, datB), "CSV": pythonCSV(t, filepath.Join(dir, CSVName))} {
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows, want header + 1", name, len(rows))
		}
		if got := rows[1][col["FLAGS"]]; got != want {
			t.Errorf("%s FLAGS = %q, want %q", name, got, want)
		}
		if got := rows[1][col["FOLDERPATH"]]; got != wantFolders {
			t.Errorf("%s FOLDERPATH = %q, want %q (FLAGS follows its order)", name, got, wantFolders)
		}
	}
	xb, _ := os.ReadFile(filepath.Join(dir, XMLName))
	var x edrm
	if err := xml.Unmarshal(xb, &x); err != nil {
		t.Fatalf("EDRM XML: %v", err)
	}
	found := false
	for _, tg := range x.Batch.Documents[0].Tags {
		if tg.Name == "FLAGS" {
			found = true
			if tg.Value != want {
				t.Errorf("EDRM FLAGS = %q, want %q", tg.Value, want)
			}
		}
	}
	if !found {
		t.Error("EDRM document has no FLAGS tag")
	}
}
