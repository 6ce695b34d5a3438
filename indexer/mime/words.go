package mime

import (
	"strings"
)

// decodeWords decodes the RFC 2047 encoded words in s, which must be valid
// UTF-8. It is lenient: words need not be separated from surrounding text,
// Q-encoded text may hold spaces, and adjacent words in one charset are
// joined before conversion so that a character split across them survives.
// where names the value in problems, e.g. "header Subject".
func (p *parser) decodeWords(s, where string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	out := make([]byte, 0, len(s))
	var pend []byte // decoded bytes of the pending run of words
	var pendCS string
	afterWord := false // the last thing written was an encoded word
	flush := func() {
		if len(pend) > 0 {
			out = append(out, p.toUTF8(nil, pendCS, pend, where)...)
			pend = pend[:0]
		}
	}
	// No word can end after the last "?=": knowing that keeps the search
	// for the end of a word linear when many "=?" are never closed.
	lastEnd := strings.LastIndex(s, "?=")
	pos := 0
	for pos < len(s) {
		i := strings.Index(s[pos:], "=?")
		if i < 0 {
			break
		}
		i += pos
		cs, enc, text, end, ok := encodedWord(s, i, lastEnd)
		if !ok {
			flush()
			out = append(out, s[pos:i+2]...)
			pos = i + 2
			afterWord = false
			continue
		}
		between := s[pos:i]
		switch {
		case afterWord && isBlank(between):
			// Whitespace between two encoded words is dropped.
			if normCharset(cs) != pendCS {
				flush()
			}
		default:
			flush()
			out = append(out, between...)
		}
		pendCS = normCharset(cs)
		if enc == 'b' {
			pend = appendBase64(pend, text, -1)
		} else {
			pend = appendQ(pend, text)
		}
		afterWord = true
		pos = end
	}
	flush()
	out = append(out, s[pos:]...)
	return string(out)
}

// encodedWord parses "=?charset?e?text?=" at s[i:]; lastEnd is the index
// of the last "?=" in s.
func encodedWord(s string, i, lastEnd int) (cs string, enc byte, text string, end int, ok bool) {
	j := i + 2
	q1 := strings.IndexByte(s[j:], '?')
	if q1 <= 0 || q1 > 64 {
		return
	}
	cs = s[j : j+q1]
	if strings.ContainsAny(cs, " \t\r\n=") {
		return
	}
	j += q1 + 1
	if j+2 > len(s) || s[j+1] != '?' {
		return
	}
	switch s[j] {
	case 'b', 'B':
		enc = 'b'
	case 'q', 'Q':
		enc = 'q'
	default:
		return
	}
	j += 2
	if j > lastEnd {
		return
	}
	k := strings.Index(s[j:], "?=")
	if k < 0 {
		return
	}
	return cs, enc, s[j : j+k], j + k + 2, true
}

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWSP(s[i]) {
			return false
		}
	}
	return true
}

// appendQ decodes RFC 2047 Q encoding: "_" is a space, "=XX" a byte, and
// anything malformed is kept as is.
func appendQ(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			dst = append(dst, ' ')
		case c == '=' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0:
			dst = append(dst, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
