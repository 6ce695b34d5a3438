package mime

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailvault/indexer/mailfile/corpustest"
)

// TestKeepDataIf: with KeepDataIf the parse is the same (attachments,
// names, types, sizes, text), and Data is exactly KeepData's for the
// attachments it chose and nil for the others; the predicate sees each
// attachment with its size and text, before any Data is decoded.
func TestKeepDataIf(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	err := filepath.WalkDir(corpustest.Maildir(t), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(path)) == "cur" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Not images, and at most 8 KiB: some attachments each way.
	choose := func(a Attachment) bool {
		if a.Data != nil {
			t.Fatalf("the predicate saw Data already decoded (%q)", a.Filename)
		}
		return !strings.HasPrefix(a.ContentType, "image/") && a.Size <= 8<<10
	}
	chosen, skipped := 0, 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all := Parse(raw, &Limits{KeepData: true})
		some := Parse(raw, &Limits{KeepData: true, KeepDataIf: choose})
		if len(all.Attachments) != len(some.Attachments) || all.Text != some.Text {
			t.Fatalf("%s: KeepDataIf changed the parse", f)
		}
		for i, a := range all.Attachments {
			b := some.Attachments[i]
			if a.Filename != b.Filename || a.ContentType != b.ContentType || a.Size != b.Size || a.Text != b.Text {
				t.Fatalf("%s: attachment %d: %+v against %+v", f, i, b, a)
			}
			a.Data = nil // a copy: the predicate sees it as Parse does
			if choose(a) {
				chosen++
				if !bytes.Equal(b.Data, all.Attachments[i].Data) || (b.Data == nil) != (all.Attachments[i].Data == nil) {
					t.Fatalf("%s: attachment %d chosen: %d bytes, KeepData %d", f, i, len(b.Data), len(all.Attachments[i].Data))
				}
			} else {
				skipped++
				if b.Data != nil {
					t.Fatalf("%s: attachment %d (%q, %d bytes) not chosen but decoded", f, i, a.ContentType, a.Size)
				}
			}
		}
	}
	if chosen < 20 || skipped < 20 {
		t.Fatalf("only %d chosen and %d skipped: the test proves little", chosen, skipped)
	}
	t.Logf("%d messages: %d attachments decoded, %d left", len(files), chosen, skipped)
}
