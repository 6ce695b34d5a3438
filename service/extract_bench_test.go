//go:build bench && linux

package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/internal/benchtest"
	"mailvault/service"
)

// TestBenchAttachmentImport (issue 15): the SpamAssassin corpus with one
// message in ten carrying a PDF or Office attachment (the real documents
// of indexer/extract/testdata/docs, made by LibreOffice), imported with
// attachment text extraction on and off, alternating, BENCH_RUNS times (3
// by default). The import's own time (until it returns: its messages
// searchable by their headers and bodies) must not grow by more than 10 %
// with extraction on; the extractor's drain after it is measured apart.
// Peak RSS (VmHWM) per run. Run it with
//
//	go test -tags bench -run TestBenchAttachmentImport -v ./service/
func TestBenchAttachmentImport(t *testing.T) {
	root := corpustest.Maildir(t)
	docs, err := filepath.Glob("../indexer/extract/testdata/docs/*")
	if err != nil {
		t.Fatal(err)
	}
	var attach []string
	for _, d := range docs {
		switch filepath.Ext(d) {
		case ".pdf", ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".xls", ".doc":
			attach = append(attach, d)
		}
	}
	sort.Strings(attach)
	if len(attach) == 0 {
		t.Fatal("no documents in indexer/extract/testdata/docs")
	}
	blobs := make([][]byte, len(attach))
	for i, p := range attach {
		if blobs[i], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	// The corpus, every tenth message wrapped with an attachment.
	// BENCH_KEEP=DIR writes the corpus there and keeps it (for the CLI
	// measurement in scripts/bench-attachments.sh).
	maildir := filepath.Join(t.TempDir(), "maildir")
	if d := os.Getenv("BENCH_KEEP"); d != "" {
		maildir = d
		os.RemoveAll(maildir)
	}
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(maildir, d), 0o700)
	}
	n, withAtt := 0, 0
	err = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.Contains(p, "/cur/") && !strings.Contains(p, "/new/") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if n%10 == 0 {
			k := withAtt % len(attach)
			raw = wrapWithAttachment(raw, filepath.Base(attach[k]), blobs[k], n)
			withAtt++
		}
		n++
		return os.WriteFile(filepath.Join(maildir, "cur", fmt.Sprintf("%d.bench:2,S", n)), raw, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	// As `mailvault import` runs (cmd/mailvault, bulkMemoryLimit).
	debug.SetMemoryLimit(512 << 20)
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	benchtest.Mdf(t, "Machine: %d cores, Linux, %s. Corpus: %d messages, %d of them with one attachment (%d documents: %s).",
		runtime.NumCPU(), runtime.Version(), n, withAtt, len(attach), strings.Join(baseNames(attach), ", "))
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| run | extraction | import s | msg/s | drain s (after the import) | peak RSS MB | attachments with text | failed |")
	benchtest.Mdf(t, "|---|---|---|---|---|---|---|---|")
	secs := map[bool][]float64{}
	for run := 1; run <= runs; run++ {
		order := []bool{false, true}
		if run%2 == 0 {
			order = []bool{true, false}
		}
		for _, on := range order {
			data := filepath.Join(t.TempDir(), "data")
			a, err := indexer.Open(data, &indexer.Options{NoExtract: !on})
			if err != nil {
				t.Fatal(err)
			}
			resetPeak()
			ctx := context.Background()
			begin := time.Now()
			if _, err := service.Import(ctx, a, service.ImportRequest{Account: "bench", Paths: []string{maildir}}, nil, nil); err != nil {
				t.Fatal(err)
			}
			imp := time.Since(begin)
			if err := a.WaitExtracts(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			drain := time.Since(begin) - imp
			c, err := a.ExtractCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			failed := 0
			for _, v := range c.Failed {
				failed += v
			}
			peak := peakMB()
			a.Close()
			secs[on] = append(secs[on], imp.Seconds())
			mode := "off"
			if on {
				mode = "on"
			}
			benchtest.Mdf(t, "| %d | %s | %.2f | %.0f | %.2f | %.0f | %d | %d |", run, mode, imp.Seconds(), float64(n)/imp.Seconds(),
				drain.Seconds(), peak, c.Extracted, failed)
		}
	}
	med := func(v []float64) float64 {
		v = append([]float64(nil), v...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	off, on := med(secs[false]), med(secs[true])
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "Median import with extraction on %.2f s, off %.2f s: %+.1f %%.", on, off, 100*(on-off)/off)
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// wrapWithAttachment makes raw a multipart/mixed message: its header
// without its MIME fields, its body as the first part (with them), name as
// a base64 attachment. seq varies the boundary so copies stay distinct.
func wrapWithAttachment(raw []byte, name string, doc []byte, seq int) []byte {
	sep := bytes.Index(raw, []byte("\n\n"))
	if sep < 0 {
		sep = len(raw)
	}
	head, body := raw[:sep], raw[min(sep+2, len(raw)):]
	var keep, mimeFields []string
	inMIME := false
	for _, l := range strings.Split(string(head), "\n") {
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			if inMIME {
				mimeFields[len(mimeFields)-1] += "\n" + l
			} else if len(keep) > 0 {
				keep[len(keep)-1] += "\n" + l
			}
			continue
		}
		lower := strings.ToLower(l)
		inMIME = strings.HasPrefix(lower, "content-") || strings.HasPrefix(lower, "mime-version:")
		if inMIME {
			if !strings.HasPrefix(lower, "mime-version:") {
				mimeFields = append(mimeFields, l)
			} else {
				mimeFields = append(mimeFields, "X-Skip: 1")
			}
		} else {
			keep = append(keep, l)
		}
	}
	var part []string
	for _, f := range mimeFields {
		if !strings.HasPrefix(f, "X-Skip") {
			part = append(part, f)
		}
	}
	if len(part) == 0 {
		part = []string{"Content-Type: text/plain; charset=us-ascii"}
	}
	b := fmt.Sprintf("mvbench%06d", seq)
	var out bytes.Buffer
	out.WriteString(strings.Join(keep, "\n"))
	fmt.Fprintf(&out, "\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"%s\"\n\n--%s\n%s\n\n", b, b, strings.Join(part, "\n"))
	out.Write(body)
	fmt.Fprintf(&out, "\n--%s\nContent-Type: application/octet-stream; name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\nContent-Transfer-Encoding: base64\n\n", b, name, name)
	enc := base64.StdEncoding.EncodeToString(doc)
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	fmt.Fprintf(&out, "%s\n--%s--\n", enc, b)
	return out.Bytes()
}
