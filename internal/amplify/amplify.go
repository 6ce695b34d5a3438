// Package amplify makes a large set of distinct, realistic messages out of a
// small corpus, for scale benchmarks (issues 12 and 14): copy k of corpus
// message m gets a new Message-ID, Date (spread over several years, in the
// original's zone offset) and To recipient, and a few words changed and a
// line added in its first text/plain part (or its top-level text part).
// Nothing else is touched: other headers, multipart boundaries, attachments
// and every other part keep their bytes, so the MIME structure stays as valid
// as the original's.
//
// The output is deterministic: message i depends only on (seed, i) and the
// corpus, not on how many workers write it.
package amplify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime"
	"net/mail"
	"strings"
	"time"
)

// Span of the new dates: 2016-01-01 to 2025-12-31 (UTC), uniform.
var (
	dateFrom = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
	dateTo   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Result is one amplified message.
type Result struct {
	Raw      []byte
	Date     time.Time // the new Date: header (use it as the file's mtime)
	BodyEdit string    // what was edited: "text/plain", "text/html", "" (headers only)
}

// Rand is the generator for output message i under seed.
func Rand(seed, i uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, i^0x9e3779b97f4a7c15)) }

// Message rewrites corpus message raw as output message i (copy k of it).
func Message(raw []byte, i, k uint64, r *rand.Rand) Result {
	hdr, sep, body := splitHeader(raw)
	eol := "\n"
	if bytes.Contains(hdr, []byte("\r\n")) {
		eol = "\r\n"
	}
	fs := parseFields(hdr)

	// Date: keep the zone offset of the original (+0000 when unparsable).
	off := 0
	if v, ok := fs.get("Date"); ok {
		if t, err := mail.ParseDate(unfold(v)); err == nil {
			_, off = t.Zone()
		}
	}
	span := dateTo.Unix() - dateFrom.Unix()
	when := time.Unix(dateFrom.Unix()+r.Int64N(span), 0).In(time.FixedZone("", off))
	fs.set("Date", when.Format("Mon, 02 Jan 2006 15:04:05 -0700"), eol)

	// Message-ID: unique per i; the right-hand side keeps the original's
	// domain when it has one.
	domain := "mail.example.org"
	if v, ok := fs.get("Message-ID"); ok {
		v = strings.TrimSpace(unfold(v))
		if at := strings.LastIndexByte(v, '@'); at >= 0 {
			d := strings.TrimRight(v[at+1:], "> \t")
			if d != "" && !strings.ContainsAny(d, " <>@\t\"") {
				domain = d
			}
		}
	}
	fs.set("Message-ID", fmt.Sprintf("<%s.%x.%d.%d@%s>", when.UTC().Format("20060102150405"), r.Uint32(), k, i, domain), eol)

	// To: one new recipient.
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	dom := domains[r.IntN(len(domains))]
	fs.set("To", fmt.Sprintf("%s %s <%s.%s@%s>", first, last, strings.ToLower(first), strings.ToLower(last), dom), eol)
	// Lengths recorded in the header no longer hold once the body changes.
	fs.del("Content-Length")
	fs.del("Lines")

	res := Result{Date: when}
	if sep != nil {
		ct, _ := fs.get("Content-Type")
		cte, _ := fs.get("Content-Transfer-Encoding")
		var nb []byte
		nb, res.BodyEdit = editEntity(unfold(ct), unfold(cte), body, r, 0)
		if nb != nil {
			body = nb
		}
	}
	var out bytes.Buffer
	out.Grow(len(raw) + 256)
	for _, f := range fs {
		out.Write(f.raw)
	}
	out.Write(sep)
	out.Write(body)
	res.Raw = out.Bytes()
	return res
}

// splitHeader cuts raw at its first empty line: header (with the last
// field's line end), the empty line, body. No empty line: all header, nil sep.
func splitHeader(raw []byte) (hdr, sep, body []byte) {
	pos := 0
	for pos < len(raw) {
		nl := bytes.IndexByte(raw[pos:], '\n')
		if nl < 0 {
			break
		}
		line := raw[pos : pos+nl+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return raw[:pos], line, raw[pos+nl+1:]
		}
		pos += nl + 1
	}
	return raw, nil, nil
}

type field struct {
	name string // as written
	raw  []byte // the whole field with continuation lines and line ends
}

type fields []field

func parseFields(hdr []byte) fields {
	var fs fields
	pos := 0
	for pos < len(hdr) {
		end := pos
		for {
			nl := bytes.IndexByte(hdr[end:], '\n')
			if nl < 0 {
				end = len(hdr)
				break
			}
			end += nl + 1
			if end >= len(hdr) || (hdr[end] != ' ' && hdr[end] != '\t') {
				break
			}
		}
		raw := hdr[pos:end]
		name := ""
		if c := bytes.IndexByte(raw, ':'); c > 0 {
			name = strings.TrimSpace(string(raw[:c]))
		}
		fs = append(fs, field{name: name, raw: raw})
		pos = end
	}
	return fs
}

func (fs fields) get(name string) (string, bool) {
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			c := bytes.IndexByte(f.raw, ':')
			return string(f.raw[c+1:]), true
		}
	}
	return "", false
}

// set replaces the first field called name (dropping any others) or adds
// it at the end of the header.
func (fs *fields) set(name, value, eol string) {
	nf := field{name: name, raw: []byte(name + ": " + value + eol)}
	out := (*fs)[:0:0]
	done := false
	for _, f := range *fs {
		if strings.EqualFold(f.name, name) {
			if !done {
				out = append(out, nf)
				done = true
			}
			continue
		}
		out = append(out, f)
	}
	if !done {
		// The last field may lack a line end (a message with no body).
		if n := len(out); n > 0 && !bytes.HasSuffix(out[n-1].raw, []byte("\n")) {
			out[n-1].raw = append(append([]byte{}, out[n-1].raw...), eol...)
		}
		out = append(out, nf)
	}
	*fs = out
}

func (fs *fields) del(name string) {
	out := (*fs)[:0:0]
	for _, f := range *fs {
		if !strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	*fs = out
}

func unfold(v string) string {
	v = strings.ReplaceAll(v, "\r\n", "")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.TrimSpace(v)
}

// editEntity edits the body of an entity whose Content-Type and
// Content-Transfer-Encoding are ct and cte: a text/plain or top-level text/*
// body directly, a multipart's first text/plain part (depth first). It
// returns the new body, or nil when nothing was edited, and what it edited.
func editEntity(ct, cte string, body []byte, r *rand.Rand, depth int) ([]byte, string) {
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" {
		mt, err = "text/plain", nil
	}
	if err != nil {
		// Unparsable: take the type alone when it is plain text.
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
		params = nil
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && depth < 8:
		b := params["boundary"]
		if b == "" {
			return nil, ""
		}
		return editMultipart(b, body, r, depth)
	case mt == "text/plain" || (depth == 0 && strings.HasPrefix(mt, "text/")):
		if !plainCharset(params["charset"]) {
			return nil, ""
		}
		nb := editText(body, strings.ToLower(strings.TrimSpace(cte)), mt == "text/html", r)
		if nb == nil {
			return nil, ""
		}
		return nb, mt
	}
	return nil, ""
}

// editMultipart finds the parts between "--boundary" lines and edits the
// first one that editEntity can edit; the delimiter lines, the preamble,
// the epilogue and every other part keep their bytes.
func editMultipart(boundary string, body []byte, r *rand.Rand, depth int) ([]byte, string) {
	delim := []byte("--" + boundary)
	// Offsets of delimiter lines: at the start of body or after a '\n'.
	var starts []int // where each delimiter line begins
	var after []int  // where the line after it begins
	pos := 0
	for pos <= len(body) {
		j := bytes.Index(body[pos:], delim)
		if j < 0 {
			break
		}
		at := pos + j
		if at == 0 || body[at-1] == '\n' {
			rest := body[at+len(delim):]
			nl := bytes.IndexByte(rest, '\n')
			lineEnd := len(body)
			if nl >= 0 {
				lineEnd = at + len(delim) + nl + 1
			}
			tail := strings.TrimRight(string(body[at+len(delim):lineEnd]), " \t\r\n")
			if tail == "" || tail == "--" {
				starts = append(starts, at)
				after = append(after, lineEnd)
				if tail == "--" {
					break
				}
			}
		}
		pos = at + len(delim)
	}
	for p := 0; p+1 < len(starts); p++ {
		ps, pe := after[p], starts[p+1]
		// The line end before the next delimiter belongs to the delimiter.
		if pe > ps && body[pe-1] == '\n' {
			pe--
			if pe > ps && body[pe-1] == '\r' {
				pe--
			}
		}
		if pe < ps {
			continue
		}
		part := body[ps:pe]
		ph, psep, pb := splitHeader(part)
		if psep == nil {
			continue
		}
		pfs := parseFields(ph)
		ct, _ := pfs.get("Content-Type")
		cte, _ := pfs.get("Content-Transfer-Encoding")
		ct = unfold(ct)
		if ct == "" {
			ct = "text/plain"
		}
		nb, what := editEntity(ct, unfold(cte), pb, r, depth+1)
		if nb == nil {
			continue
		}
		var out bytes.Buffer
		out.Grow(len(body) + len(nb) - len(pb))
		out.Write(body[:ps])
		out.Write(ph)
		out.Write(psep)
		out.Write(nb)
		out.Write(body[pe:])
		return out.Bytes(), what
	}
	return nil, ""
}

func plainCharset(cs string) bool {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"`))
	switch {
	case cs == "", cs == "us-ascii", cs == "ascii", cs == "utf-8", cs == "utf8",
		strings.HasPrefix(cs, "iso-8859-"), strings.HasPrefix(cs, "iso8859-"),
		strings.HasPrefix(cs, "windows-125"), strings.HasPrefix(cs, "cp125"):
		return true
	}
	return false
}

// editText changes a few words (to words of the same length) and adds a
// line of words, in the encoded form for 7bit/8bit/quoted-printable (ASCII
// whole words only, delimited by white space, so no =XX escape or soft
// break is touched) and decoded then re-encoded for base64.
func editText(body []byte, cte string, html bool, r *rand.Rand) []byte {
	switch cte {
	case "", "7bit", "8bit", "binary", "quoted-printable":
		return editWords(body, html, r)
	case "base64":
		clean := bytes.Map(func(c rune) rune {
			if c == '\r' || c == '\n' || c == ' ' || c == '\t' {
				return -1
			}
			return c
		}, body)
		dec, err := base64.StdEncoding.DecodeString(string(clean))
		if err != nil {
			return nil
		}
		ed := editWords(dec, html, r)
		if ed == nil {
			return nil
		}
		eol := "\n"
		if bytes.Contains(body, []byte("\r\n")) {
			eol = "\r\n"
		}
		enc := base64.StdEncoding.EncodeToString(ed)
		var out bytes.Buffer
		for len(enc) > 76 {
			out.WriteString(enc[:76])
			out.WriteString(eol)
			enc = enc[76:]
		}
		out.WriteString(enc)
		out.WriteString(eol)
		return out.Bytes()
	}
	return nil
}

const maxScan = 64 << 10 // words are looked for in the first 64 KiB only

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// editWords replaces 2–4 whole words and inserts a line of 3–7 words. In
// HTML only text outside tags counts, and the line goes after <body ...>.
func editWords(text []byte, html bool, r *rand.Rand) []byte {
	eol := "\n"
	if bytes.Contains(text, []byte("\r\n")) {
		eol = "\r\n"
	}
	lim := min(len(text), maxScan)
	start := 0
	if html {
		if b := indexFold(text[:lim], "<body"); b >= 0 {
			if gt := bytes.IndexByte(text[b:lim], '>'); gt >= 0 {
				start = b + gt + 1
			}
		} else {
			start = lim // no <body>: leave the HTML alone
		}
	}
	type span struct{ at, n int }
	var words []span
	inTag := false
	for i := start; i < lim; {
		c := text[i]
		if html && c == '<' {
			inTag = true
		}
		if html && c == '>' {
			inTag = false
			i++
			continue
		}
		if inTag || !isLetter(c) || (i > 0 && !isSpace(text[i-1])) {
			i++
			continue
		}
		j := i
		for j < lim && isLetter(text[j]) {
			j++
		}
		n := j - i
		if n >= 4 && n <= 10 && (j == len(text) || isSpace(text[j]) || bytes.IndexByte([]byte(".,!?"), text[j]) >= 0) {
			words = append(words, span{i, n})
		}
		i = j
	}
	out := append([]byte{}, text...)
	changed := false
	for c := 2 + r.IntN(3); c > 0 && len(words) > 0; c-- {
		w := words[r.IntN(len(words))]
		cands := vocab[w.n]
		if len(cands) == 0 {
			continue
		}
		nw := cands[r.IntN(len(cands))]
		if isUpper(out[w.at]) {
			nw = strings.ToUpper(nw[:1]) + nw[1:]
		}
		copy(out[w.at:], nw)
		changed = true
	}

	// The added line.
	var line strings.Builder
	for c := 3 + r.IntN(5); c > 0; c-- {
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(insertWords[r.IntN(len(insertWords))])
	}
	ins := -1
	add := line.String() + eol
	if html {
		if start > 0 && start <= lim {
			ins = start
			add = "<p>" + line.String() + "</p>" + eol
		}
	} else {
		// After a line that is not a quoted-printable soft break, at a random
		// line start in the first 64 KiB (the first line when there is none).
		var at []int
		for i := 0; i < lim; i++ {
			if text[i] == '\n' && (i == 0 || text[i-1] != '=') && !(i > 1 && text[i-1] == '\r' && text[i-2] == '=') {
				at = append(at, i+1)
			}
		}
		if len(at) > 0 {
			ins = at[r.IntN(len(at))]
		} else {
			ins = 0
		}
	}
	if ins >= 0 {
		out = append(out[:ins], append([]byte(add), out[ins:]...)...)
		changed = true
	}
	if !changed {
		return nil
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func indexFold(b []byte, s string) int {
	return bytes.Index(bytes.ToLower(b), []byte(s))
}

var firstNames = []string{"Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
	"Karl", "Laura", "Mallory", "Nina", "Oscar", "Peggy", "Quentin", "Rupert", "Sybil", "Trent", "Ursula",
	"Victor", "Wendy", "Xavier", "Yvonne", "Zoe", "Amir", "Beatriz", "Chen", "Dmitri", "Eva", "Fatima",
	"Giulia", "Hiro", "Ingrid", "Jonas", "Kwame", "Lena", "Mateo", "Noor", "Olga", "Priya", "Rafael", "Sofia"}

var lastNames = []string{"Smith", "Jones", "Garcia", "Miller", "Davis", "Martin", "Lopez", "Wilson", "Anderson",
	"Thomas", "Taylor", "Moore", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young",
	"King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts",
	"Carter", "Phillips", "Evans", "Turner", "Torres", "Parker", "Collins", "Edwards", "Stewart", "Morris",
	"Nguyen", "Murphy", "Rivera", "Cook", "Rogers", "Morgan", "Peterson", "Cooper", "Reed", "Bailey", "Bell"}

var domains = []string{"example.com", "example.org", "example.net", "corp.example.com", "mail.example.org",
	"acme.example", "globex.example", "initech.example", "umbrella.example", "hooli.example",
	"lists.example.net", "research.example.edu", "sales.example.com", "eu.example.com", "partners.example.org"}

var insertWords = []string{"regarding", "the", "quarterly", "report", "please", "review", "attached", "notes",
	"meeting", "tomorrow", "budget", "project", "update", "schedule", "deadline", "contract", "invoice",
	"shipment", "customer", "feedback", "server", "backup", "release", "draft", "proposal", "agenda",
	"minutes", "approval", "thanks", "again", "best", "regards", "team", "office", "travel", "expenses",
	"policy", "training", "security", "migration", "archive", "compliance", "audit", "ledger", "summary"}

// vocab holds replacement words by length (4–10), so that a replaced word
// keeps the line's length.
var vocab = func() map[int][]string {
	m := map[int][]string{}
	for _, w := range strings.Fields(`able also area back base best book call care case city come cost
	data deal door down draw each east easy edge even face fact fair fall farm fast fear feel file fill
	find fine fire firm five flat flow food foot form free full fund gain game gave gift give glad goal
	about above after again agent agree ahead allow alone along among apply argue avoid award aware basic
	begin below birth black board brief bring build carry catch cause chain chair chart check chief child
	claim class clear close coach could count court cover craft crowd daily dance dream drive early earth
	action active actual advice afford agency almost amount annual answer anyone appear around arrive
	artist assume attack author battle beauty become before behind better beyond budget button camera
	ability account achieve address advance against airport already another anxiety anybody applied
	arrange article attempt average balance barrier battery bedroom benefit between billion brother
	absolute academic accepted accident accurate activity actually addition adequate advanced
	affected aircraft analysis announce anything anywhere apparent approach approval argument
	abandoned abilities aboriginal absolutely absorption abundance academics accelerate
	accessible accidental accomplish accordance accounting accredited accumulate accurately
	achieve advocate analyses calendar category champion chemical children circuit climbing
	community complete composer consider consumer continue contract corridor creation criminal`) {
		if n := len(w); n >= 4 && n <= 10 {
			m[n] = append(m[n], w)
		}
	}
	return m
}()
