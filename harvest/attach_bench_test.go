//go:build bench && unix

package harvest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/indexer"
	"mailvault/internal/benchtest"
	"mailvault/query"
	"mailvault/service"
)

// TestBenchAttachmentLatency (issue 15, item 4): messages APPENDed to a
// real Dovecot while the harvester IDLEs, each with a word of its own in
// its body and another in the text of its attachment (the real DOCX of
// indexer/extract/testdata/docs, made by LibreOffice, with the word added
// as a paragraph of a copy's document.xml). Measured per
// message: APPEND → found by its body's word, and APPEND → found by its
// attachment's word (attachment: search). The first is the latency every
// message has; the second is the extractor's, which follows.
//
//	go test -tags bench -run TestBenchAttachmentLatency -v ./harvest/
func TestBenchAttachmentLatency(t *testing.T) {
	n := hbEnvInt("MAILVAULT_BENCH_APPENDS", 100)
	docx, err := os.ReadFile(filepath.Join("..", "indexer", "extract", "testdata", "docs", "letter.docx"))
	if err != nil {
		t.Fatal(err)
	}
	srv := dovecottest.Start(t, &dovecottest.Options{TLS: true, Users: []string{hbBenchUser}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := indexer.Open(filepath.Join(t.TempDir(), "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	service.LimitServeMemory()
	h := harvest.New(hbTLSAccount(t, srv, "att", hbBenchUser), service.NewSink(a), service.ServeHarvestOptions(slog.New(slog.DiscardHandler), 1))
	var runWG sync.WaitGroup
	runWG.Add(1)
	go func() { defer runWG.Done(); h.Run(ctx) }()
	defer runWG.Wait()
	defer cancel()
	hbWaitFor(t, 30*time.Second, "the harvester to IDLE on INBOX", func() bool {
		return h.Status().Mailboxes["INBOX"].State == "idle"
	})
	type probe struct {
		body, att        string
		appended         time.Time
		byBody, byAttach time.Time
	}
	probes := make([]*probe, n)
	var mu sync.Mutex
	find := func(field query.Field, w string) bool {
		res, err := a.Search(ctx, query.Text{Field: field, Value: w}, &indexer.SearchOptions{Limit: 1})
		return err == nil && len(res.Hits) > 0
	}
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() { // every 5 ms, every word not found yet
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			mu.Lock()
			pending := append([]*probe(nil), probes...)
			mu.Unlock()
			for _, p := range pending {
				if p == nil {
					continue
				}
				if p.byBody.IsZero() && find(query.FieldBody, p.body) {
					p.byBody = time.Now()
				}
				if p.byAttach.IsZero() && find(query.FieldAttachment, p.att) {
					p.byAttach = time.Now()
				}
			}
		}
	}()
	appender := srv.Dial(t, hbBenchUser)
	for i := range n {
		p := &probe{body: fmt.Sprintf("mvbody%05d", i), att: fmt.Sprintf("mvattach%05d", i)}
		doc := withWord(t, docx, p.att)
		raw := fmt.Sprintf("From: sender@example.org\r\nTo: bench@example.org\r\nSubject: latency %d\r\nDate: %s\r\nMessage-ID: <att%d@bench.example>\r\n"+
			"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nprobe %s\r\n"+
			"--B\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=letter.docx\r\n"+
			"Content-Disposition: attachment; filename=letter.docx\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--B--\r\n",
			i, time.Now().Format(time.RFC1123Z), i, p.body, base64.StdEncoding.EncodeToString(doc))
		cmd := appender.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		p.appended = time.Now()
		mu.Lock()
		probes[i] = p
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	hbWaitFor(t, 120*time.Second, "every probe found by both words", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range probes {
			if p.byBody.IsZero() || p.byAttach.IsZero() {
				return false
			}
		}
		return true
	})
	close(stop)
	<-polled
	var body, att []time.Duration
	for _, p := range probes {
		body = append(body, p.byBody.Sub(p.appended))
		att = append(att, p.byAttach.Sub(p.appended))
	}
	qb, qa := hbQuantiles(body), hbQuantiles(att)
	benchtest.Mdf(t, "%d messages APPENDed 20 ms apart to Dovecot %s, each with a DOCX attachment; load %s.", n, hbDovecotVersion(), hbLoadAvg())
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| APPEND → searchable | p50 ms | p95 ms | p99 ms | max ms |")
	benchtest.Mdf(t, "|---|---|---|---|---|")
	benchtest.Mdf(t, "| by its body | %s | %s | %s | %s |", hbMS(qb[0]), hbMS(qb[1]), hbMS(qb[2]), hbMS(qb[3]))
	benchtest.Mdf(t, "| by its attachment's text | %s | %s | %s | %s |", hbMS(qa[0]), hbMS(qa[1]), hbMS(qa[2]), hbMS(qa[3]))
}

// withWord returns a copy of a DOCX with word added as a paragraph of its
// document.xml.
func withWord(t *testing.T, docx []byte, word string) []byte {
	t.Helper()
	out, err := rewriteZipMember(docx, "word/document.xml", func(xml string) string {
		return strings.Replace(xml, "</w:body>", "<w:p><w:r><w:t>"+word+"</w:t></w:r></w:p></w:body>", 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewriteZipMember copies a ZIP, with member name passed through edit.
func rewriteZipMember(data []byte, name string, edit func(string) string) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if f.Name == name {
			body = []byte(edit(string(body)))
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			return nil, err
		}
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
