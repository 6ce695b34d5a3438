package mime

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// normCharset returns the lowercased charset name without quotes, spaces,
// or an RFC 2231 language suffix, with common misspellings mapped to names
// golang.org/x/text knows.
func normCharset(cs string) string {
	cs = strings.Trim(cs, " \t\r\n\"'")
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i]
	}
	cs = strings.ToLower(cs)
	switch cs {
	case "utf8", "x-utf8", "utf-8-sig", "x-unicode-2-0-utf-8", "unicode-1-1-utf-8":
		return "utf-8"
	case "ascii", "us_ascii", "ansi_x3.4-1968", "iso646-us", "us":
		return "us-ascii"
	case "latin1", "latin-1", "l1", "iso8859-1", "iso_8859-1", "iso-8859-1:1987", "iso8859_1", "8859-1", "iso-latin-1", "cp819", "ibm819":
		return "iso-8859-1"
	case "cp1252", "x-cp1252", "windows1252", "win-1252", "ansi":
		return "windows-1252"
	case "x-gbk", "gbk2312", "cp936", "ms936", "windows-936":
		return "gbk"
	case "x-sjis", "sjis", "ms_kanji", "cp932", "windows-31j", "x-ms-cp932":
		return "shift_jis"
	case "ks_c_5601", "ks_c_5601-1987", "ksc5601", "ksc_5601", "cp949", "x-windows-949", "windows-949":
		return "euc-kr"
	case "x-euc-jp", "eucjp":
		return "euc-jp"
	case "big-5", "big5-hkscs", "x-x-big5", "cn-big5", "x-big5", "chinesebig5", "chinesebig5_charset":
		return "big5"
	case "gb_2312-80", "chinese", "csgb2312", "x-gb2312", "euc-cn", "x-euc-cn", "gb2312_charset":
		return "gb2312"
	case "koi8r":
		return "koi8-r"
	case "cp1251", "x-cp1251", "win-1251", "windows1251":
		return "windows-1251"
	}
	return cs
}

// isUTF8Charset reports whether a normalized charset means "treat as UTF-8
// if valid, else salvage": no charset, ASCII, UTF-8 and the various labels
// for "unknown".
func isUTF8Charset(cs string) bool {
	switch cs {
	case "", "us-ascii", "utf-8", "unknown-8bit", "x-unknown", "unknown", "default", "none", "7bit", "8bit", "x-user-defined", "charset",
		"default_charset": // Outlook's placeholder

		return true
	}
	return false
}

func isLatin1Charset(cs string) bool {
	return cs == "iso-8859-1" || cs == "windows-1252"
}

// knownCharset reports whether a normalized charset can be decoded.
func knownCharset(cs string) bool {
	if isUTF8Charset(cs) || isLatin1Charset(cs) {
		return true
	}
	if len(cs) > 64 {
		return false
	}
	_, err := charset.Reader(cs, strings.NewReader(""))
	return err == nil
}

// toUTF8 converts b from charset cs to UTF-8. The result is b itself when
// no conversion is needed, else it is appended to dst[:0]. An unknown
// charset is reported as a problem in where and b is salvaged.
func (p *parser) toUTF8(dst []byte, cs string, b []byte, where string) []byte {
	cs = normCharset(cs)
	switch {
	case isUTF8Charset(cs):
		return salvage(dst, b)
	case isLatin1Charset(cs):
		if isASCIIBytes(b) {
			return b
		}
		return appendCP1252(dst[:0], b)
	}
	if len(cs) > 64 {
		p.problem("unknown charset %s in %s", quote(cs), where)
		return salvage(dst, b)
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		p.problem("unknown charset %s in %s", quote(cs), where)
		return salvage(dst, b)
	}
	out := dst[:0]
	if cap(out) < len(b)+len(b)/2+16 {
		out = make([]byte, 0, len(b)+len(b)/2+16)
	}
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			p.problem("charset %s decoding error in %s", quote(cs), where)
			break
		}
	}
	if !utf8.Valid(out) {
		out = bytes.ToValidUTF8(out, []byte("\uFFFD"))
	}
	return out
}

// salvage returns b if it is valid UTF-8. Otherwise, text that is mostly
// UTF-8 has its bad bytes replaced by U+FFFD, and anything else is read as
// windows-1252; the result is appended to dst[:0].
func salvage(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	good, bad := 0, 0
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			bad++
		} else {
			good++
		}
		i += n
	}
	if good > bad {
		dst = dst[:0]
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, b[:n]...)
			}
			b = b[n:]
		}
		return dst
	}
	return appendCP1252(dst[:0], b)
}

// cp1252 maps bytes 0x80-0x9F of windows-1252; the five unassigned bytes
// map to the C1 controls, as in the WHATWG encoding standard.
var cp1252 = [32]rune{
	'\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
	'\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
	'\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
	'\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
}

func appendCP1252(dst, b []byte) []byte {
	for _, c := range b {
		switch {
		case c < 0x80:
			dst = append(dst, c)
		case c < 0xA0:
			dst = utf8.AppendRune(dst, cp1252[c-0x80])
		default:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return dst
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func validUTF8(s string) bool { return utf8.ValidString(s) }
