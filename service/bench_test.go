//go:build bench && linux

package service_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/export"
	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/internal/benchtest"
	"mailvault/service"
)

// TestBenchExport exports the SpamAssassin corpus as a production set and
// as mbox, against the peer the issue names: copying the raw mail out of
// the store (every blob read, checked and written to a file of its own),
// in the same run. Run it with
//
//	MAILVAULT_CORPUS=~/.cache/mailvault/corpus go test -tags bench -run TestBenchExport -v ./service/
func TestBenchExport(t *testing.T) {
	root := corpustest.Maildir(t)
	data := filepath.Join(t.TempDir(), "data")
	a, err := indexer.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if _, err := service.Import(ctx, a, service.ImportRequest{Account: "sa", Paths: []string{root}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	svc := service.New(a, nil)
	occs, err := a.Occurrences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var keys []string
	for _, o := range occs {
		if !seen[o.SHA256] {
			seen[o.SHA256] = true
			keys = append(keys, o.SHA256)
		}
	}
	out := t.TempDir()
	benchtest.Mdf(t, "Machine: %d cores, Linux, %s. Corpus: %d messages (%d unique).", runtime.NumCPU(), runtime.Version(), len(occs), len(keys))
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| run | what | seconds | msg/s | peak RSS MB (VmHWM, reset before) | output bytes |")
	benchtest.Mdf(t, "|---|---|---|---|---|---|")
	for run := 1; run <= 3; run++ {
		// The peer: every blob read (hash-checked, as every read is) and
		// written to a file.
		dir := filepath.Join(out, "raw"+strconv.Itoa(run))
		os.MkdirAll(dir, 0o700)
		resetPeak()
		begin := time.Now()
		var bytes int64
		for _, k := range keys {
			raw, err := a.Raw(k)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, k+".eml"), raw, 0o600); err != nil {
				t.Fatal(err)
			}
			bytes += int64(len(raw))
		}
		el := time.Since(begin)
		benchtest.Mdf(t, "| %d | copy raw mail out of the store (peer) | %.2f | %.0f | %.0f | %d |", run, el.Seconds(), float64(len(keys))/el.Seconds(), peakMB(), bytes)
		for _, f := range []export.Format{export.FormatProduction, export.FormatMbox} {
			dir := filepath.Join(out, string(f)+strconv.Itoa(run))
			resetPeak()
			begin := time.Now()
			res, err := svc.Export(ctx, service.Operator(), service.ExportRequest{Search: &service.SearchRequest{Query: "larger:0"}, Dir: dir, Format: f}, nil)
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(begin)
			benchtest.Mdf(t, "| %d | export --format %s | %.2f | %.0f | %.0f | %d |", run, f, el.Seconds(), float64(res.Manifest.Counts.Messages)/el.Seconds(), peakMB(), dirBytes(dir))
		}
	}
}

func resetPeak() { runtime.GC(); os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
