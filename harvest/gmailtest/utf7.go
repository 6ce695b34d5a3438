package gmailtest

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Mailbox names and labels travel in RFC 3501 section 5.1.3's modified
// UTF-7: printable ASCII stands for itself, "&" is "&-", anything else is
// UTF-16BE in base64 (with "," for "/", no padding) between "&" and "-".
// Written here rather than taken from go-imap (its copy is internal), so the
// tests that read names through go-imap check this one against it.

var utf7Base64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding).Strict()

// utf7Encode encodes a UTF-8 name in modified UTF-7.
func utf7Encode(s string) string {
	var b strings.Builder
	var run []uint16
	shiftOut := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 0, 2*len(run))
		for _, u := range run {
			buf = append(buf, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(utf7Base64.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			shiftOut()
			b.WriteRune(r)
			if r == '&' {
				b.WriteByte('-')
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	shiftOut()
	return b.String()
}

var errUTF7 = errors.New("invalid modified UTF-7")

// utf7Decode decodes a name in modified UTF-7. It refuses what RFC 3501
// forbids: 8-bit bytes, a base64 run of printable ASCII, a run that is not
// whole UTF-16, two runs back to back, and an unterminated run.
func utf7Decode(s string) (string, error) {
	var b strings.Builder
	lastRunEnd := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errUTF7
		}
		enc := s[i+1 : i+1+end]
		if enc == "" {
			b.WriteByte('&')
			i++
			continue
		}
		if lastRunEnd == i {
			return "", errUTF7
		}
		raw, err := utf7Base64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 || len(raw) == 0 {
			return "", errUTF7
		}
		units := make([]uint16, len(raw)/2)
		for j := range units {
			units[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for j := 0; j < len(units); j++ {
			r := rune(units[j])
			if utf16.IsSurrogate(r) {
				if j+1 >= len(units) {
					return "", errUTF7
				}
				r = utf16.DecodeRune(r, rune(units[j+1]))
				j++
				if r == utf8.RuneError {
					return "", errUTF7
				}
			} else if r >= 0x20 && r <= 0x7e {
				return "", errUTF7
			}
			b.WriteRune(r)
		}
		i += 1 + end
		lastRunEnd = i + 1
	}
	return b.String(), nil
}
