package mime

import (
	"sort"
	"strconv"
	"strings"
)

// param is one parameter of a Content-Type or Content-Disposition value.
type param struct {
	key string // lowercased, without the RFC 2231 "*" suffixes
	val string
	ext bool // val was assembled from RFC 2231 syntax and is already UTF-8
}

func paramValue(ps []param, key string) string {
	for _, p := range ps {
		if p.key == key {
			return p.val
		}
	}
	return ""
}

// parseValue parses a "token; key=value; ..." value leniently: a missing
// ";" before a parameter, unterminated quotes, junk and duplicate keys are
// tolerated (the first value wins), and RFC 2231 continuations and charsets
// are decoded. The token is lowercased.
func (p *parser) parseValue(s, where string) (string, []param) {
	end := strings.IndexByte(s, ';')
	if end < 0 {
		end = len(s)
	}
	token := trimWSP(s[:end])
	rest := s[end:]
	if i := strings.IndexByte(token, '('); i >= 0 {
		token = trimWSP(token[:i])
	}
	if i := strings.IndexAny(token, " \t"); i >= 0 {
		// "text/html charset=x": a parameter without the ";".
		rest = token[i:] + rest
		token = token[:i]
	}
	token = strings.Trim(token, `"`)
	token = strings.ToLower(token)

	var ps []param
	star := false
	for i := 0; i < len(rest); {
		c := rest[i]
		if c == ';' || isWSP(c) {
			i++
			continue
		}
		// Key.
		k := i
		for i < len(rest) && rest[i] != '=' && rest[i] != ';' {
			i++
		}
		if i >= len(rest) || rest[i] == ';' {
			continue // no "=": junk
		}
		key := strings.ToLower(trimWSP(rest[k:i]))
		i++
		for i < len(rest) && isWSP(rest[i]) {
			i++
		}
		// Value.
		var val string
		if i < len(rest) && rest[i] == '"' {
			val, i, _ = quotedString(rest, i)
			for i < len(rest) && rest[i] != ';' {
				i++
			}
		} else {
			// The value runs to ";", or to a blank followed by a word
			// with "=" in it ("charset=x format=flowed"); other blanks
			// are kept ("name=my file.txt").
			v := i
			end := i
			for i < len(rest) && rest[i] != ';' {
				if isWSP(rest[i]) {
					i++
					continue
				}
				w := i
				for i < len(rest) && rest[i] != ';' && rest[i] != '=' && !isWSP(rest[i]) {
					i++
				}
				if i < len(rest) && rest[i] == '=' && w > v {
					i = w
					break
				}
				for i < len(rest) && rest[i] != ';' && !isWSP(rest[i]) {
					i++
				}
				end = i
			}
			val = rest[v:end]
		}
		if key == "" {
			continue
		}
		if strings.IndexByte(key, '*') >= 0 {
			star = true
		}
		ps = append(ps, param{key: key, val: val})
	}
	if star {
		ps = p.rfc2231(ps, where)
	}
	return token, ps
}

// quotedString reads a quoted string starting at s[i] == '"', returning
// its unescaped content, the index after the closing quote and whether
// there was one.
func quotedString(s string, i int) (string, int, bool) {
	i++
	start := i
	var b []byte
	for i < len(s) {
		switch s[i] {
		case '"':
			if b == nil {
				return s[start:i], i + 1, true
			}
			return string(b), i + 1, true
		case '\\':
			if b == nil {
				b = append(make([]byte, 0, len(s)-start), s[start:i]...)
			}
			if i+1 < len(s) {
				i++
			}
			b = append(b, s[i])
			i++
			continue
		}
		if b != nil {
			b = append(b, s[i])
		}
		i++
	}
	if b == nil {
		return s[start:], len(s), false
	}
	return string(b), len(s), false
}

// rfc2231 assembles RFC 2231 parameters ("key*", "key*0*", "key*1", ...)
// into one decoded parameter per key, which replaces a plain parameter of
// the same key.
func (p *parser) rfc2231(ps []param, where string) []param {
	type seg struct {
		key string
		idx int
		ext bool
		val string
	}
	var segs []seg
	out := ps[:0]
	for _, q := range ps {
		i := strings.IndexByte(q.key, '*')
		if i < 0 {
			out = append(out, q)
			continue
		}
		s := seg{key: q.key[:i], val: q.val}
		suffix := q.key[i+1:]
		if strings.HasSuffix(suffix, "*") {
			s.ext = true
			suffix = suffix[:len(suffix)-1]
		} else if suffix == "" {
			s.ext = true // "key*": a single extended value
		}
		if suffix != "" {
			n, err := strconv.Atoi(suffix)
			if err != nil || n < 0 || n > 999 {
				continue
			}
			s.idx = n
		}
		segs = append(segs, s)
	}
	sort.SliceStable(segs, func(a, b int) bool {
		if segs[a].key != segs[b].key {
			return segs[a].key < segs[b].key
		}
		return segs[a].idx < segs[b].idx
	})
	for len(segs) > 0 {
		key := segs[0].key
		n := 1
		for n < len(segs) && segs[n].key == key {
			n++
		}
		var raw []byte
		cs := ""
		for k, s := range segs[:n] {
			v := s.val
			if s.ext {
				if k == 0 {
					// charset'language'value
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							cs = v[:a]
							v = v[a+1+b+1:]
						}
					}
				}
				raw = appendPercent(raw, v)
			} else {
				raw = append(raw, v...)
			}
		}
		val := string(p.toUTF8(nil, cs, raw, where))
		replaced := false
		for i := range out {
			if out[i].key == key {
				out[i] = param{key: key, val: val, ext: true}
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, param{key: key, val: val, ext: true})
		}
		segs = segs[n:]
	}
	return out
}

func appendPercent(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0 {
			dst = append(dst, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}
