package mime

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"mailvault/indexer/mailfile/corpustest"
)

// TestKeepDataMatchesAttachmentData: one Parse with KeepData gives every
// attachment's bytes exactly as AttachmentData gives them one parse at a
// time (the export takes its natives from the first, downloads use the
// second), on the test messages and on every message of the corpus.
func TestKeepDataMatchesAttachmentData(t *testing.T) {
	var files []string
	td, _ := filepath.Glob("testdata/*.eml")
	files = append(files, td...)
	err := filepath.WalkDir(corpustest.Maildir(t), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(path)) == "cur" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 1000 {
		t.Fatalf("only %d messages", len(files))
	}
	atts, decoded := 0, 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		kept := Parse(raw, &Limits{KeepData: true})
		plain := Parse(raw, nil)
		if len(kept.Attachments) != len(plain.Attachments) || kept.Text != plain.Text {
			t.Fatalf("%s: KeepData changed the parse (%d attachments against %d, text equal %v)",
				f, len(kept.Attachments), len(plain.Attachments), kept.Text == plain.Text)
		}
		for i, a := range kept.Attachments {
			atts++
			if plain.Attachments[i].Data != nil {
				t.Fatalf("%s: attachment %d has Data without KeepData", f, i)
			}
			b, data, ok := AttachmentData(raw, i)
			if ok != (a.Data != nil) || !bytes.Equal(data, a.Data) {
				t.Fatalf("%s: attachment %d (%q): KeepData gave %d bytes (ok %v), AttachmentData %d (ok %v)",
					f, i, a.Filename, len(a.Data), a.Data != nil, len(data), ok)
			}
			if ok && (b.Filename != a.Filename || b.ContentType != a.ContentType) {
				t.Fatalf("%s: attachment %d: %q %q against %q %q", f, i, a.Filename, a.ContentType, b.Filename, b.ContentType)
			}
			if ok {
				decoded++
			}
		}
	}
	if atts < 100 || decoded < atts/2 {
		t.Fatalf("only %d attachments (%d decoded) in %d messages: the test proves little", atts, decoded, len(files))
	}
	t.Logf("%d messages, %d attachments, %d decoded: identical", len(files), atts, decoded)
}
