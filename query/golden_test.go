package query

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bleveq "github.com/blevesearch/bleve/v2/search/query"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/translate")

// TestTranslateGolden checks the Bleve query built for each file of
// testdata/translate: the human query, a "----" line, the query as JSON.
// Run with -update to rewrite the part after "----".
func TestTranslateGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "translate", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		in, want, ok := strings.Cut(string(data), "\n----\n")
		if !ok {
			t.Errorf("%s: no ---- line", file)
			continue
		}
		n, err := ParseHuman(strings.TrimSpace(in))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		q, err := Bleve(n)
		if err != nil {
			t.Errorf("%s: Bleve(%s): %v", file, n, err)
			continue
		}
		js, err := json.MarshalIndent(q, "", "  ")
		if err != nil {
			t.Errorf("%s: marshal: %v", file, err)
			continue
		}
		// The plan survives Bleve's own JSON form (for logs and the API).
		if _, err := bleveq.ParseQuery(js); err != nil {
			t.Errorf("%s: ParseQuery(JSON of %s): %v", file, n, err)
		}
		got := string(js) + "\n"
		if *update {
			if err := os.WriteFile(file, []byte(in+"\n----\n"+got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got != want {
			t.Errorf("%s: Bleve(%s) =\n%s\nwant\n%s", file, n, got, want)
		}
	}
}
