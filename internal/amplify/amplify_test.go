package amplify

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shape lists an entity tree's content types, and the bytes of every part
// that is not text (which must survive unchanged).
func shape(t *testing.T, r io.Reader, h mail.Header, depth int, out *[]string, blobs *[][]byte) {
	ct := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || ct == "" {
		mt = "text/plain?"
	}
	*out = append(*out, strings.Repeat(" ", depth)+mt)
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" && depth < 8 {
		mr := multipart.NewReader(r, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				if err != io.EOF {
					*out = append(*out, "err")
				}
				return
			}
			shape(t, p, mail.Header(p.Header), depth+1, out, blobs)
		}
	}
	b, _ := io.ReadAll(r)
	if !strings.HasPrefix(mt, "text/") {
		*blobs = append(*blobs, b)
	}
}

func TestCorpusShapes(t *testing.T) {
	dir := os.Getenv("MAILVAULT_CORPUS")
	if dir == "" {
		t.Skip("MAILVAULT_CORPUS not set")
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "maildir", ".*", "cur", "*"))
	if len(paths) == 0 {
		t.Skip("no corpus")
	}
	edited := 0
	for i, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		res := Message(raw, uint64(i), 1, Rand(12, uint64(i)))
		if bytes.Equal(res.Raw, raw) {
			t.Fatalf("%s: unchanged", p)
		}
		again := Message(raw, uint64(i), 1, Rand(12, uint64(i)))
		if !bytes.Equal(res.Raw, again.Raw) {
			t.Fatalf("%s: not deterministic", p)
		}
		m0, err0 := mail.ReadMessage(bytes.NewReader(raw))
		m1, err1 := mail.ReadMessage(bytes.NewReader(res.Raw))
		if (err0 == nil) != (err1 == nil) {
			t.Fatalf("%s: parse %v, amplified %v", p, err0, err1)
		}
		if err0 != nil {
			continue
		}
		for _, h := range []string{"Message-Id", "Date", "To"} {
			if m1.Header.Get(h) == "" || m1.Header.Get(h) == m0.Header.Get(h) {
				t.Fatalf("%s: %s %q, was %q", p, h, m1.Header.Get(h), m0.Header.Get(h))
			}
		}
		if _, err := m1.Header.Date(); err != nil {
			t.Fatalf("%s: new Date: %v", p, err)
		}
		if m0.Header.Get("Subject") != m1.Header.Get("Subject") || m0.Header.Get("From") != m1.Header.Get("From") {
			t.Fatalf("%s: Subject or From changed", p)
		}
		var s0, s1 []string
		var b0, b1 [][]byte
		shape(t, m0.Body, m0.Header, 0, &s0, &b0)
		shape(t, m1.Body, m1.Header, 0, &s1, &b1)
		if strings.Join(s0, "\n") != strings.Join(s1, "\n") {
			t.Fatalf("%s: structure\n%s\nbecame\n%s", p, strings.Join(s0, "\n"), strings.Join(s1, "\n"))
		}
		if len(b0) != len(b1) {
			t.Fatalf("%s: %d non-text parts, then %d", p, len(b0), len(b1))
		}
		for j := range b0 {
			if !bytes.Equal(b0[j], b1[j]) {
				t.Fatalf("%s: non-text part %d changed", p, j)
			}
		}
		if res.BodyEdit != "" {
			edited++
		}
	}
	t.Logf("%d messages, %d with a body edit", len(paths), edited)
}
