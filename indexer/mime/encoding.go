package mime

// Lenient transfer decoders. Real mail has base64 with garbage, missing or
// early padding, and quoted-printable with bare "=" signs; these decoders
// keep whatever decodes and never fail.

const (
	b64Invalid = 0xFF
	b64Pad     = 0xFE
	b64Space   = 0xFD
)

// b64 maps a byte to its 6-bit value. Both the standard and the URL-safe
// alphabets are accepted.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Invalid
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		t[std[i]] = byte(i)
	}
	t['-'], t['_'] = 62, 63
	t['='] = b64Pad
	for _, c := range []byte(" \t\r\n\f\v") {
		t[c] = b64Space
	}
	return t
}()

// appendBase64 decodes base64 from src onto dst, stopping once max bytes
// were added (max < 0: no limit). Characters outside the alphabet are
// skipped; padding ends a quantum, so concatenated encodings decode too.
func appendBase64[T string | []byte](dst []byte, src T, max int) []byte {
	dst, _ = decodeBase64(dst, src, max, false)
	return dst
}

// base64Size returns the decoded size of src without decoding it.
func base64Size(src []byte) int64 {
	_, n := decodeBase64(nil, src, -1, true)
	return n
}

func decodeBase64[T string | []byte](dst []byte, src T, max int, count bool) ([]byte, int64) {
	var acc uint32
	var n int // sextets in acc
	var total int64
	limit := len(dst) + max
	if !count && cap(dst)-len(dst) < len(src)/4*3+3 {
		grown := make([]byte, len(dst), len(dst)+len(src)/4*3+3)
		copy(grown, dst)
		dst = grown
	}
	flush := func() {
		switch n {
		case 2:
			if count {
				total++
			} else {
				dst = append(dst, byte(acc>>4))
			}
		case 3:
			if count {
				total += 2
			} else {
				dst = append(dst, byte(acc>>10), byte(acc>>2))
			}
		}
		acc, n = 0, 0
	}
	for i := 0; i < len(src); i++ {
		v := b64[src[i]]
		if v < 64 {
			acc = acc<<6 | uint32(v)
			n++
			if n == 4 {
				if count {
					total += 3
				} else {
					dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
					if max >= 0 && len(dst) >= limit {
						return dst[:limit], 0
					}
				}
				acc, n = 0, 0
			}
			continue
		}
		if v == b64Pad {
			flush()
		}
	}
	flush()
	if max >= 0 && len(dst) > limit {
		dst = dst[:limit]
	}
	return dst, total
}

// appendQP decodes quoted-printable from src onto dst, stopping once max
// bytes were added (max < 0: no limit). A "=" that starts neither an escape
// nor a soft line break is kept.
func appendQP(dst []byte, src []byte, max int) []byte {
	if cap(dst)-len(dst) < len(src) {
		grown := make([]byte, len(dst), len(dst)+len(src))
		copy(grown, dst)
		dst = grown
	}
	limit := len(dst) + max
	for i := 0; i < len(src); i++ {
		if max >= 0 && len(dst) >= limit {
			return dst[:limit]
		}
		c := src[i]
		if c != '=' {
			dst = append(dst, c)
			continue
		}
		b, last, emit := qpEquals(src, i)
		if emit {
			dst = append(dst, b)
		}
		i = last
	}
	if max >= 0 && len(dst) > limit {
		dst = dst[:limit]
	}
	return dst
}

// qpEquals decodes the "=" at src[i]: an escape "=XX" gives its byte; a soft
// line break ("=", optional blanks, then a line end or the end of the input)
// gives nothing; any other "=" stands for itself. It returns the index of the
// last byte consumed.
func qpEquals(src []byte, i int) (b byte, last int, emit bool) {
	if i+2 < len(src) && unhex(src[i+1]) >= 0 && unhex(src[i+2]) >= 0 {
		return byte(unhex(src[i+1])<<4 | unhex(src[i+2])), i + 2, true
	}
	j := i + 1
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	switch {
	case j == len(src):
		return 0, j, false
	case src[j] == '\n':
		return 0, j, false
	case src[j] == '\r' && j+1 < len(src) && src[j+1] == '\n':
		return 0, j + 1, false
	case src[j] == '\r':
		return 0, j, false
	}
	return '=', i, true
}

// qpSize returns the decoded size of quoted-printable src.
func qpSize(src []byte) int64 {
	var n int64
	for i := 0; i < len(src); i++ {
		if src[i] != '=' {
			n++
			continue
		}
		_, last, emit := qpEquals(src, i)
		if emit {
			n++
		}
		i = last
	}
	return n
}
