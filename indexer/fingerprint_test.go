package indexer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"

	"mailvault/indexer/mime"
)

// genMail is one generated message, rendered by render with the choices a
// delivery can change (headers added, line ends, transfer encoding).
type genMail struct {
	msgID, from, subject, body string
	date                       string
	attName                    string
	att                        []byte
}

func randWords(r *rand.Rand, n int) string {
	words := []string{"quarterly", "numbers", "über", "naïve", "contract", "draft", "meeting", "€100", "tomorrow", "ok", "the", "a"}
	var b strings.Builder
	for i := range n {
		if i > 0 {
			if r.IntN(7) == 0 {
				b.WriteString("\n")
			} else {
				b.WriteString(" ")
			}
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

func genMessage(r *rand.Rand, i int) genMail {
	g := genMail{
		msgID:   fmt.Sprintf("<gen-%d-%d@example.org>", i, r.IntN(1e6)),
		from:    fmt.Sprintf("Sender %d <sender%d@example.org>", i, r.IntN(50)),
		subject: randWords(r, 1+r.IntN(6)),
		body:    randWords(r, 5+r.IntN(200)),
		date:    fmt.Sprintf("Tue, %d Dec 2026 %02d:%02d:00 +0100", 1+r.IntN(28), r.IntN(24), r.IntN(60)),
	}
	g.subject = strings.ReplaceAll(g.subject, "\n", " ")
	if r.IntN(2) == 0 {
		g.attName = fmt.Sprintf("report-%d.pdf", i)
		g.att = make([]byte, 100+r.IntN(5000))
		for j := range g.att {
			g.att[j] = byte(r.IntN(256))
		}
	}
	return g
}

type delivery struct {
	headers []string // prepended, as a delivery does
	lf      bool     // LF line ends (a server's store)
	qp      bool     // the body re-encoded quoted-printable (an MTA downgrading 8BITMIME)
}

func (g genMail) render(d delivery) []byte {
	var b strings.Builder
	for _, h := range d.headers {
		b.WriteString(h + "\r\n")
	}
	subj := g.subject
	if strings.ContainsFunc(subj, func(r rune) bool { return r > 127 }) {
		subj = "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(subj)) + "?="
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: rcpt@example.org\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n",
		g.from, subj, g.date, g.msgID)
	body := strings.ReplaceAll(g.body, "\n", "\r\n")
	enc := "8bit"
	if d.qp {
		var q strings.Builder
		w := quotedprintable.NewWriter(&q)
		w.Write([]byte(body))
		w.Close()
		body, enc = q.String(), "quoted-printable"
	}
	textPart := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + enc + "\r\n\r\n" + body + "\r\n"
	if g.att == nil {
		b.WriteString(textPart)
	} else {
		b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n" + textPart)
		b.WriteString("--b1\r\nContent-Type: application/pdf; name=\"" + g.attName + "\"\r\nContent-Disposition: attachment; filename=\"" + g.attName + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(g.att)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--b1--\r\n")
	}
	s := b.String()
	if d.lf {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	return []byte(s)
}

func fp(raw []byte) string { return Fingerprint(mime.Parse(raw, nil)) }

// The fingerprint of generated mail is the same under what a delivery
// changes, and differs when the content does.
func TestFingerprintProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 3))
	deliveryHeaders := []string{
		"Return-Path: <sender@example.org>",
		"Delivered-To: rcpt@example.org",
		"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby imap.example.org (Postfix) with ESMTPS id 4Xz; Tue, 1 Dec 2026 10:00:03 +0000",
		"X-Original-To: rcpt@example.org",
		"X-Spam-Status: No, score=-1.0",
		"Authentication-Results: imap.example.org; dkim=pass",
	}
	for i := range 300 {
		g := genMessage(r, i)
		base := fp(g.render(delivery{}))
		if base == "" {
			t.Fatalf("message %d: no fingerprint", i)
		}
		n := r.IntN(len(deliveryHeaders) + 1)
		d := delivery{headers: deliveryHeaders[:n], lf: r.IntN(2) == 0, qp: r.IntN(2) == 0}
		if got := fp(g.render(d)); got != base {
			t.Fatalf("message %d delivered (%d headers, lf %v, qp %v): fingerprint %s, want %s\n%s", i, n, d.lf, d.qp, got, base, g.render(d))
		}
		// A change to any part of the content is another fingerprint.
		changes := map[string]func(genMail) genMail{
			"body":       func(g genMail) genMail { g.body += " changed"; return g },
			"subject":    func(g genMail) genMail { g.subject = "[SPAM] " + g.subject; return g },
			"message-id": func(g genMail) genMail { g.msgID = "<other-" + g.msgID[1:]; return g },
			"date":       func(g genMail) genMail { g.date = strings.Replace(g.date, "+0100", "+0200", 1); return g },
			"from":       func(g genMail) genMail { g.from = "Other <other@example.org>"; return g },
		}
		if g.att != nil {
			changes["attachment size"] = func(g genMail) genMail { g.att = append(g.att, 0); return g }
			changes["attachment name"] = func(g genMail) genMail { g.attName = "x" + g.attName; return g }
		}
		for name, change := range changes {
			if got := fp(change(g).render(d)); got == base {
				t.Errorf("message %d with another %s: same fingerprint %s", i, name, got)
			}
		}
	}
}

func TestFingerprintWithoutMessageID(t *testing.T) {
	if got := fp([]byte("From: a@b.c\r\nSubject: s\r\n\r\nbody\r\n")); got != "" {
		t.Errorf("fingerprint without a Message-ID = %q, want \"\"", got)
	}
}

func TestCollapse(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"  a  b\r\n\tc  ":    "a b c",
		"a\u00a0b":           "a b",
		"one\n\ntwo\r\n\r\n": "one two",
	} {
		if got := collapse(in); got != want {
			t.Errorf("collapse(%q) = %q, want %q", in, got, want)
		}
	}
}

// collapsedSum is the sha256 of collapse, on generated text with every
// kind of white space, multi-byte runes and invalid UTF-8.
func TestCollapsedSum(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	pieces := []string{" ", "  ", "\r\n", "\t", "\u00a0", "\u2028", "\u0085", "a", "über", "€", "\xff", "\xe2\x82", "x", "\v", "\f"}
	for i := range 2000 {
		var b strings.Builder
		for range r.IntN(3000) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		want := sha256.Sum256([]byte(collapse(s)))
		if got := collapsedSum(s); got != hex.EncodeToString(want[:]) {
			t.Fatalf("case %d: collapsedSum(%q) = %s, want sha256(collapse) %x", i, s, got, want)
		}
	}
}
