package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/mime"
)

// memSource is a Source over messages in memory.
type memSource struct {
	msgs []Message
	err  error // returned by Each after the first message
}

func (s *memSource) Count(context.Context) (int, error) { return len(s.msgs), nil }

func (s *memSource) Each(ctx context.Context, fn func(Message) error) error {
	for i, m := range s.msgs {
		if i == 1 && s.err != nil {
			return s.err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func msg(raw string, occs ...Occurrence) Message {
	raw = strings.ReplaceAll(raw, "\n", "\r\n")
	sum := sha256.Sum256([]byte(raw))
	return Message{SHA256: hex.EncodeToString(sum[:]), Raw: []byte(raw), Occurrences: occs}
}

func occ(acct, box string, uid uint32) Occurrence {
	return Occurrence{Account: acct, Mailbox: box, UIDValidity: 7, UID: uid,
		InternalDate: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC),
		URL:          fmt.Sprintf("imap://%s@mail.example/%s;UIDVALIDITY=7/;UID=%d", acct, box, uid)}
}

const plainMsg = `From: Alice <alice@example.com>
To: Bob <bob@example.com>, carol@example.com
Cc: Dan <dan@example.com>
Subject: =?UTF-8?B?UsOpc3Vtw6k=?= plain
Date: Tue, 05 Mar 2024 09:15:00 -0800
Message-ID: <plain-1@example.com>

Hello Bob.
From here on, text.
`

const multipartMsg = `From: Eve <eve@example.com>
To: Bob <bob@example.com>
Subject: report with attachments
Date: Wed, 06 Mar 2024 23:30:00 +0530
Message-ID: <multi-1@example.com>
In-Reply-To: <plain-1@example.com>
References: <plain-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 report
--b2
Content-Type: text/html; charset=utf-8

<p>Caf&eacute; <b>report</b></p>
--b2--
--b1
Content-Type: application/pdf; name="report.PDF"
Content-Disposition: attachment; filename="report.PDF"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK
--b1
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="../../etc/passwd"

root:x:0:0
--b1
Content-Type: text/plain
Content-Disposition: attachment; filename="a/b\c.txt"

slashes
--b1
Content-Type: text/plain
Content-Disposition: attachment; filename="dup.txt"

first dup
--b1
Content-Type: text/plain
Content-Disposition: attachment; filename="dup.txt"

second dup
--b1
Content-Type: message/rfc822

From: Inner <inner@example.com>
Subject: inner message
Date: Mon, 04 Mar 2024 08:00:00 +0100
Message-ID: <inner-1@example.com>
Content-Type: multipart/mixed; boundary="i1"

--i1
Content-Type: text/plain

inner body
--i1
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="inner.bin"
Content-Transfer-Encoding: base64

AAECAwQ=
--i1--
--b1
Content-Type: image/png
Content-Disposition: attachment; filename="last.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--b1--
`

// hostileMsg has delimiters of every load file in its subject and a file
// name with NUL and control characters (RFC 2231-encoded).
const hostileMsg = "From: x@example.com\nTo: y@example.com\n" +
	"Subject: =?UTF-8?B?" + "PLACEHOLDER" + "?=\n" +
	"Date: Thu, 07 Mar 2024 12:00:00 +0000\nMessage-ID: <hostile@example.com>\n" +
	"Content-Type: multipart/mixed; boundary=\"h\"\n\n--h\nContent-Type: text/plain\n\nbody\n" +
	"--h\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''%00evil%0D%0A%14name%FE.%2E%2F..%2Fx.exe\n\nMZ\n--h--\n"

func hostileSubject() string { return "DC4\x14 thorn\u00fe reg\u00ae quote\" <tag> & line\nbreak" }

func corpus() []Message {
	h := strings.Replace(hostileMsg, "PLACEHOLDER", b64(hostileSubject()), 1)
	garbage := "\x00\x01\xff not a message at all\n\x00"
	return []Message{
		msg(plainMsg, occ("alice", "INBOX", 1), occ("bob", "INBOX", 9), occ("bob", "Archive", 3)),
		msg(multipartMsg, occ("bob", "INBOX", 10)),
		msg(h, occ("carol", "Sent", 4)),
		msg(garbage, occ("carol", "Junk", 5)),
	}
}

func b64(s string) string {
	const tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b strings.Builder
	in := []byte(s)
	for len(in) > 0 {
		var c [3]byte
		n := copy(c[:], in)
		in = in[n:]
		v := uint(c[0])<<16 | uint(c[1])<<8 | uint(c[2])
		for i := 0; i < 4; i++ {
			if i > n {
				b.WriteByte('=')
			} else {
				b.WriteByte(tbl[v>>(18-6*i)&63])
			}
		}
	}
	return b.String()
}

func write(t *testing.T, src Source, opts Options) (string, *Manifest) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "out")
	}
	m, err := Write(context.Background(), src, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return opts.Dir, m
}

func mustVerify(t *testing.T, dir string) {
	t.Helper()
	r, err := Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !r.OK {
		t.Fatalf("Verify(%s) problems: %v", dir, r.Problems)
	}
	cmd := exec.Command("sha256sum", "--quiet", "-c", SumsName)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
}

// readDAT parses a Concordance DAT by the rules alone: UTF-8 BOM, records
// ending in CR LF, values between þ separated by DC4, ® for a newline.
func readDAT(t *testing.T, b []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		t.Fatal("DAT has no UTF-8 BOM")
	}
	s := string(b[3:])
	if !strings.HasSuffix(s, "\r\n") {
		t.Fatal("DAT's last record does not end in CR LF")
	}
	var out [][]string
	for _, line := range strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n") {
		var rec []string
		for _, f := range strings.Split(line, "\x14") {
			if len(f) < 4 || !strings.HasPrefix(f, "þ") || !strings.HasSuffix(f, "þ") {
				t.Fatalf("DAT value %q is not between þ", f)
			}
			v := strings.TrimSuffix(strings.TrimPrefix(f, "þ"), "þ")
			if strings.Contains(v, "þ") {
				t.Fatalf("DAT value %q holds a qualifier", v)
			}
			rec = append(rec, strings.ReplaceAll(v, "®", "\n"))
		}
		out = append(out, rec)
	}
	return out
}

func pythonCSV(t *testing.T, path string) [][]string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is needed under CI")
		}
		t.Skip("no python3")
	}
	script := `import csv, json, sys
with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:
    print(json.dumps(list(csv.reader(f, strict=True))))`
	out, err := exec.Command("python3", "-c", script, path).Output()
	if err != nil {
		t.Fatalf("python csv: %v", err)
	}
	var rows [][]string
	if err := jsonUnmarshal(out, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

type edrm struct {
	XMLName xml.Name `xml:"Root"`
	Batch   struct {
		Documents []struct {
			DocID string `xml:"DocID,attr"`
			Tags  []struct {
				Name  string `xml:"TagName,attr"`
				Value string `xml:"TagValue,attr"`
				Type  string `xml:"TagDataType,attr"`
			} `xml:"Tags>Tag"`
			Files []struct {
				Type string `xml:"FileType,attr"`
				Ext  struct {
					Path string `xml:"FilePath,attr"`
					Name string `xml:"FileName,attr"`
					Size int64  `xml:"FileSize,attr"`
					Hash string `xml:"Hash,attr"`
				} `xml:"ExternalFile"`
			} `xml:"Files>File"`
		} `xml:"Documents>Document"`
		Relationships []struct {
			Type   string `xml:"Type,attr"`
			Parent string `xml:"ParentDocID,attr"`
			Child  string `xml:"ChildDocID,attr"`
		} `xml:"Relationships>Relationship"`
	}
}

func TestProductionRoundTrip(t *testing.T) {
	src := &memSource{msgs: corpus()}
	dir, man := write(t, src, Options{Dedup: DedupNone, By: "auditor", Tool: "mailvault test", Scope: map[string]any{"q": "from:alice"}})
	mustVerify(t, dir)

	datB, err := os.ReadFile(filepath.Join(dir, DATName))
	if err != nil {
		t.Fatal(err)
	}
	dat := readDAT(t, datB)
	if strings.Join(dat[0], ",") != strings.Join(Fields(), ",") {
		t.Fatalf("DAT header = %v", dat[0])
	}
	rows := dat[1:]
	if len(rows) != man.Counts.Documents {
		t.Fatalf("DAT has %d rows, manifest %d documents", len(rows), man.Counts.Documents)
	}
	col := map[string]int{}
	for i, f := range Fields() {
		col[f] = i
	}
	get := func(r []string, f string) string { return r[col[f]] }

	// Dedup none: the plain message is 3 documents (3 copies), then the
	// multipart family: parent, pdf, passwd, slashes, dup, dup, inner (and
	// its inner.bin), png = 9, then hostile (2), then garbage (1).
	if want := 3 + 9 + 2 + 1; len(rows) != want {
		for _, r := range rows {
			t.Log(get(r, "BEGDOC"), get(r, "PARENTID"), get(r, "FILENAME"), get(r, "NATIVEPATH"))
		}
		t.Fatalf("%d documents, want %d", len(rows), want)
	}
	for i, r := range rows {
		if want := fmt.Sprintf("MV%08d", i+1); get(r, "BEGDOC") != want || get(r, "ENDDOC") != want {
			t.Errorf("row %d BEGDOC = %s, want %s", i, get(r, "BEGDOC"), want)
		}
	}
	p := rows[0]
	if get(p, "SUBJECT") != "Résumé plain" || get(p, "TIMESENT") != "09:15:00-08:00" || get(p, "DATESENT") != "2024-03-05" ||
		get(p, "CUSTODIAN") != "alice" || get(p, "FOLDERPATH") != "alice/INBOX" || get(p, "DOCTYPE") != "email" ||
		get(p, "TO") != "Bob <bob@example.com>; carol@example.com" || get(p, "MESSAGEID") != "<plain-1@example.com>" {
		t.Errorf("plain row = %q", p)
	}
	fam := rows[3:12]
	for _, r := range fam {
		if get(r, "BEGATTACH") != "MV00000004" || get(r, "ENDATTACH") != "MV00000012" {
			t.Errorf("family span of %s = %s..%s", get(r, "BEGDOC"), get(r, "BEGATTACH"), get(r, "ENDATTACH"))
		}
	}
	if got := get(fam[0], "ATTACHIDS"); got != "MV00000005; MV00000006; MV00000007; MV00000008; MV00000009; MV00000010; MV00000012" {
		t.Errorf("ATTACHIDS = %q", got)
	}
	if get(fam[7], "PARENTID") != "MV00000010" || get(fam[7], "FILENAME") != "inner.bin" || get(fam[6], "FILEEXT") != "eml" {
		t.Errorf("nested rows: %q / %q", fam[6], fam[7])
	}
	if get(fam[2], "FILENAME") != "../../etc/passwd" || get(fam[2], "NATIVEPATH") != "NATIVES/0001/MV00000006.bin" {
		t.Errorf("hostile name row: %q", fam[2])
	}
	if get(fam[1], "NATIVEPATH") != "NATIVES/0001/MV00000005.pdf" || get(fam[0], "INREPLYTO") != "<plain-1@example.com>" {
		t.Errorf("pdf row: %q", fam[1])
	}
	hs := rows[12]
	want := strings.NewReplacer("\x14", "\uFFFD", "þ", "\uFFFD", "®", "\uFFFD").Replace(hostileSubject())
	if get(hs, "SUBJECT") != want {
		t.Errorf("DAT hostile SUBJECT = %q, want %q", get(hs, "SUBJECT"), want)
	}
	g := rows[14]
	if get(g, "PARSEERROR") == "" || get(g, "NATIVEPATH") != "NATIVES/0001/MV00000015.eml" {
		t.Errorf("garbage row: %q", g)
	}

	// Every native against the source.
	byDoc := map[string][]byte{}
	for i, m := range src.msgs {
		_ = i
		_ = m
	}
	byDoc["MV00000001"] = src.msgs[0].Raw
	byDoc["MV00000003"] = src.msgs[0].Raw
	byDoc["MV00000004"] = src.msgs[1].Raw
	byDoc["MV00000015"] = src.msgs[3].Raw
	raw := src.msgs[1].Raw
	for j, doc := range []string{"MV00000005", "MV00000006", "MV00000007", "MV00000008", "MV00000009", "MV00000010", "MV00000011", "MV00000012"} {
		_, data, ok := mime.AttachmentData(raw, j)
		if !ok {
			t.Fatalf("no attachment %d", j)
		}
		byDoc[doc] = data
	}
	for _, r := range rows {
		b, err := os.ReadFile(filepath.Join(dir, get(r, "NATIVEPATH")))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != get(r, "SHA256HASH") || fmt.Sprint(len(b)) != get(r, "FILESIZE") {
			t.Errorf("%s: hash or size in the DAT disagrees with the file", get(r, "BEGDOC"))
		}
		if want, ok := byDoc[get(r, "BEGDOC")]; ok && !bytes.Equal(b, want) {
			t.Errorf("%s native differs from the source", get(r, "BEGDOC"))
		}
		if _, err := os.Stat(filepath.Join(dir, get(r, "TEXTPATH"))); err != nil {
			t.Error(err)
		}
	}
	txt, _ := os.ReadFile(filepath.Join(dir, "TEXT/0001/MV00000004.txt"))
	if !strings.Contains(string(txt), "Café report") {
		t.Errorf("text of MV00000004 = %q", txt)
	}

	// CSV through Python: same rows, exact values (line breaks as CR LF).
	cs := pythonCSV(t, filepath.Join(dir, CSVName))
	if len(cs) != len(dat) {
		t.Fatalf("CSV has %d rows, DAT %d", len(cs), len(dat))
	}
	for i := range cs {
		for j := range cs[i] {
			c := strings.ReplaceAll(cs[i][j], "\r\n", "\n")
			d := dat[i][j]
			if i == 13 && j == col["SUBJECT"] {
				if c != clean(hostileSubject()) {
					t.Errorf("CSV hostile SUBJECT = %q", c)
				}
				continue
			}
			if c != d && !strings.Contains(d, "\uFFFD") {
				t.Errorf("CSV[%d][%s] = %q, DAT %q", i, Fields()[j], c, d)
			}
		}
	}

	// EDRM XML.
	xb, _ := os.ReadFile(filepath.Join(dir, XMLName))
	var x edrm
	if err := xml.Unmarshal(xb, &x); err != nil {
		t.Fatalf("EDRM XML: %v", err)
	}
	if len(x.Batch.Documents) != len(rows) {
		t.Fatalf("EDRM has %d documents", len(x.Batch.Documents))
	}
	for i, d := range x.Batch.Documents {
		if d.DocID != get(rows[i], "BEGDOC") || len(d.Files) != 2 || d.Files[0].Ext.Hash != get(rows[i], "MD5HASH") ||
			d.Files[0].Ext.Path+"/"+d.Files[0].Ext.Name != get(rows[i], "NATIVEPATH") {
			t.Errorf("EDRM document %d = %+v", i, d)
		}
		for _, tg := range d.Tags {
			if tg.Name == "SUBJECT" && i == 12 && tg.Value != clean(hostileSubject()) {
				t.Errorf("EDRM hostile SUBJECT = %q", tg.Value)
			}
		}
	}
	var rels []string
	for _, r := range x.Batch.Relationships {
		rels = append(rels, r.Type+":"+r.Parent+">"+r.Child)
	}
	if len(rels) != 9 || rels[0] != "Attachment:MV00000004>MV00000005" || rels[6] != "Attachment:MV00000010>MV00000011" {
		t.Errorf("relationships = %v", rels)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, OPTName)); len(b) != 0 {
		t.Errorf("OPT = %q, want empty", b)
	}

	// Nothing outside the export's own names.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if !d.IsDir() && !validName(rel) {
			t.Errorf("unexpected file %q", rel)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, tmpDir)); err == nil {
		t.Error("working directory left behind")
	}
	custody, _ := os.ReadFile(filepath.Join(dir, CustodyName))
	if !strings.Contains(string(custody), "auditor") || !strings.Contains(string(custody), "from:alice") {
		t.Errorf("custody = %s", custody)
	}
}

func validName(rel string) bool {
	rel = filepath.ToSlash(rel)
	switch rel {
	case ManifestName, CustodyName, SumsName, DATName, CSVName, XMLName, OPTName:
		return true
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || (parts[0] != "NATIVES" && parts[0] != "TEXT") || len(parts[1]) != 4 || !strings.HasPrefix(parts[2], "MV") {
		return false
	}
	f := parts[1] + parts[2]
	for _, r := range f {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.') {
			return false
		}
	}
	return true
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
