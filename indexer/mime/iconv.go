package mime

import (
	"bytes"
	_ "embed"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// The charsets Dovecot's search converts are the ones its converter,
// glibc's iconv, opens (src/lib-charset/charset-iconv.c: iconv_open with
// the name as written). A name iconv does not know is not an error to
// Dovecot: the part is read as UTF-8, each invalid sequence a U+FFFD
// (message-decoder.c falls back to charset_utf8_to_utf8_begin). So a
// Korean part labelled ks_c_5601-1987, a WHATWG label golang.org/x/text
// decodes but glibc has no alias for, is searched by Dovecot as bytes read
// as UTF-8, where "\xC7\xAA" is "Ǫ" and so holds "O" (issue 13, found by
// the generated queries on spam-1). The view follows Dovecot; the index
// for human search (Parse) still decodes every charset it can, since a
// person searching Korean wants the Korean.
//
// iconv_names.txt is `iconv -l` of glibc 2.36 (Debian 12, the Dovecot
// 2.3.19.1 the tests run against), one name a line:
//
//	iconv -l | tr ',' '\n' | sed 's/^ *//; s/\/\/$//' | grep -v '^$' | sort -u
//
//go:embed iconv_names.txt
var iconvNamesText string

var iconvNames = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(iconvNamesText, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			m[l] = true
		}
	}
	return m
})

// dovecotUTF8 reports whether Dovecot reads text in charset cs as UTF-8:
// no charset, its UTF-8 and ASCII names (charset_is_utf8), or a name
// iconv cannot open.
func dovecotUTF8(cs string) bool {
	switch strings.ToLower(cs) {
	case "", "us-ascii", "ascii", "utf-8", "utf8":
		return true
	}
	return !iconvKnows(cs)
}

// iconvKnows reports whether glibc's iconv_open knows the name: it
// upper-cases it and keeps only letters, digits and "_-.,:" (glibc's
// gconv_charset.c strip) before looking it up.
func iconvKnows(cs string) bool {
	var b strings.Builder
	for _, c := range strings.ToUpper(cs) {
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.,:", c) {
			b.WriteRune(c)
		}
	}
	return b.Len() > 0 && iconvNames()[b.String()]
}

// viewConvert converts text in charset cs to UTF-8 as Dovecot's search
// does: as it is when Dovecot reads it as UTF-8 (Fold then makes each
// invalid sequence a U+FFFD), else by the decoder golang.org/x/text has
// for the name (through normCharset's aliases); text it cannot convert is
// kept as it is.
func viewConvert(cs string, raw []byte) []byte {
	cs = strings.Trim(cs, " \t\r\n\"'")
	if dovecotUTF8(cs) {
		return raw
	}
	r, err := charset.Reader(normCharset(cs), bytes.NewReader(raw))
	if err != nil {
		return raw
	}
	conv, err := io.ReadAll(r)
	if err != nil {
		return raw
	}
	return conv
}

// viewCharsetReader is the encoded-word decoder's charset reader for the
// view. An encoded word in a charset iconv cannot open is, to Dovecot
// (message-header-decode.c, decode_utf8_callback), its bytes with each
// invalid UTF-8 sequence a U+FFFD, appended without the normaliser: not
// case-folded, so SUBJECT "o" does not find such a word's "Ǫ" (checked
// against Dovecot 2.3.19.1). The reader returns those bytes between
// protect marks, which foldHeader keeps out of Fold.
func viewCharsetReader(cs string, input io.Reader) (io.Reader, error) {
	cs = strings.Trim(cs, " \t\"'")
	if !dovecotUTF8(cs) {
		return charset.Reader(normCharset(cs), input)
	}
	if !iconvKnows(cs) {
		raw, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		return strings.NewReader(protectOpen + dovecotValidUTF8(raw) + protectClose), nil
	}
	return input, nil
}

// The marks around text foldHeader must not fold: bytes that are never
// UTF-8 (0xFF) and, in a header, next to never a control character.
const protectOpen, protectClose = "\xff\x01", "\xff\x02"

// foldHeader folds a decoded header value as Dovecot searches it: Fold,
// except the text between protect marks, kept as it is.
func foldHeader(s string) string {
	if !strings.Contains(s, protectOpen) {
		return Fold(s)
	}
	var b strings.Builder
	for {
		i := strings.Index(s, protectOpen)
		if i < 0 {
			b.WriteString(Fold(s))
			return b.String()
		}
		b.WriteString(Fold(s[:i]))
		s = s[i+len(protectOpen):]
		j := strings.Index(s, protectClose)
		if j < 0 {
			j = len(s)
		}
		b.WriteString(s[:j])
		s = s[min(j+len(protectClose), len(s)):]
	}
}

// dovecotValidUTF8 is uni_utf8_get_valid_data: b with each invalid sequence
// replaced by U+FFFD, never two of them in a row.
func dovecotValidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var out strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			if !strings.HasSuffix(out.String(), "\uFFFD") {
				out.WriteRune(utf8.RuneError)
			}
		} else {
			out.Write(b[:n])
		}
		b = b[n:]
	}
	return out.String()
}
