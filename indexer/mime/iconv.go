package mime

import (
	"bytes"
	_ "embed"
	"io"
	"strings"
	"sync"

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
// view: a charset Dovecot reads as UTF-8 passes through unconverted.
func viewCharsetReader(cs string, input io.Reader) (io.Reader, error) {
	if dovecotUTF8(strings.Trim(cs, " \t\"'")) {
		return input, nil
	}
	return charset.Reader(normCharset(cs), input)
}
