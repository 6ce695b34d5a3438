package extract

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// RTF (Microsoft's Rich Text Format 1.9.1), read by a small tokenizer of
// our own: control words (\word with an optional numeric parameter),
// control symbols (\'hh, \~, \{ …), groups, and text. What is not the
// document's text is skipped by destination: the font, colour, style and
// list tables, \info, pictures and objects, field instructions (the
// result, \fldrslt, is kept), and every \* destination (which the spec
// says a reader that does not know it must skip). \uN is a Unicode
// character (negative N is N+65536) followed by \ucN fallback characters
// to skip; \'hh bytes are decoded in the \ansicpg code page (Windows-1252
// when none is given). Per-font charsets (\fcharset) are not followed: the
// writers seen encode anything outside the code page as \uN.
func init() { register("rtf", extractRTF) }

// rtfSkip are the destinations whose content is not text.
var rtfSkip = map[string]bool{
	"fonttbl": true, "colortbl": true, "stylesheet": true, "info": true, "pict": true,
	"object": true, "objdata": true, "fldinst": true, "listtable": true, "listoverridetable": true,
	"revtbl": true, "rsidtbl": true, "filetbl": true, "themedata": true, "colorschememapping": true,
	"datastore": true, "latentstyles": true, "generator": true, "xmlnstbl": true, "nonshppict": true,
	"bkmkstart": true, "bkmkend": true, "pgdsctbl": true, "mmathPr": true,
}

type rtfGroup struct {
	skip bool
	uc   int // fallback characters after \uN
}

func extractRTF(j *Job, data []byte) error {
	if !bytes.HasPrefix(data, []byte("{\\rtf")) {
		return errors.New("not RTF: no {\\rtf header")
	}
	var (
		stack    = []rtfGroup{{uc: 1}}
		line     []byte // UTF-8 text of the current paragraph
		raw      []byte // code-page bytes not decoded yet
		dec      = charmap.Windows1252.NewDecoder()
		skipNext int // fallback characters still to skip after \uN
	)
	cur := func() *rtfGroup { return &stack[len(stack)-1] }
	decode := func() {
		if len(raw) == 0 {
			return
		}
		if s, err := dec.Bytes(raw); err == nil {
			line = append(line, s...)
		} else {
			line = append(line, bytes.ToValidUTF8(raw, []byte("\uFFFD"))...)
		}
		raw = raw[:0]
	}
	flush := func() error {
		decode()
		t := bytes.TrimSpace(line)
		line = line[:0]
		if len(t) == 0 {
			return nil
		}
		return j.Text(string(t) + "\n")
	}
	emitByte := func(b byte) {
		if cur().skip {
			return
		}
		if skipNext > 0 {
			skipNext--
			return
		}
		raw = append(raw, b)
	}
	for i := 0; i < len(data); {
		if i&0xffff == 0 {
			if err := j.Alive(); err != nil {
				return err
			}
		}
		if len(line)+len(raw) > j.lim.MaxText {
			if err := flush(); err != nil {
				return err
			}
		}
		c := data[i]
		switch c {
		case '{':
			if len(stack) > 1<<16 {
				return fmt.Errorf("groups nested deeper than %d (at offset %d)", 1<<16, i)
			}
			stack = append(stack, *cur())
			i++
		case '}':
			if len(stack) <= 2 {
				return flush() // the document's group closed: what follows is not RTF
			}
			stack = stack[:len(stack)-1]
			i++
		case '\r', '\n':
			i++
		case '\\':
			if i+1 >= len(data) {
				return fmt.Errorf("truncated control word (at offset %d)", i)
			}
			n := data[i+1]
			switch {
			case rtfLetter(n):
				k := i + 1
				for k < len(data) && k-i < 64 && rtfLetter(data[k]) {
					k++
				}
				word := string(data[i+1 : k])
				p := k
				if p < len(data) && data[p] == '-' {
					p++
				}
				for p < len(data) && p-k < 11 && data[p] >= '0' && data[p] <= '9' {
					p++
				}
				param, hasParam := 0, false
				if p > k && !(p == k+1 && data[k] == '-') {
					param, _ = strconv.Atoi(string(data[k:p]))
					hasParam = true
				}
				if p < len(data) && data[p] == ' ' {
					p++ // the delimiting space belongs to the control word
				}
				i = p
				g := cur()
				switch {
				case word == "bin" && hasParam:
					i += max(0, param) // binary data: skipped whole
				case rtfSkip[word]:
					g.skip = true
				case g.skip:
				case word == "par" || word == "line" || word == "sect" || word == "page" || word == "row":
					if err := flush(); err != nil {
						return err
					}
				case word == "tab" || word == "cell" || word == "emspace" || word == "enspace":
					decode()
					line = append(line, ' ')
				case word == "u" && hasParam:
					decode()
					r := rune(param)
					if r < 0 {
						r += 65536
					}
					if !utf8.ValidRune(r) {
						r = utf8.RuneError
					}
					line = utf8.AppendRune(line, r)
					skipNext = g.uc
				case word == "uc" && hasParam:
					g.uc = max(0, param)
				case word == "ansicpg" && hasParam:
					decode()
					dec = rtfCodePage(param).NewDecoder()
				case word == "emdash":
					raw = append(raw, 0x97)
				case word == "endash":
					raw = append(raw, 0x96)
				case word == "bullet":
					raw = append(raw, 0x95)
				case word == "lquote", word == "rquote":
					raw = append(raw, '\'')
				case word == "ldblquote", word == "rdblquote":
					raw = append(raw, '"')
				}
			case n == '\'':
				if i+4 > len(data) {
					return fmt.Errorf("truncated \\' escape (at offset %d)", i)
				}
				v, err := strconv.ParseUint(string(data[i+2:i+4]), 16, 8)
				i += 4
				if err == nil {
					emitByte(byte(v))
				}
			case n == '*':
				cur().skip = true
				i += 2
			case n == '~':
				emitByte(' ')
				i += 2
			case n == '_':
				emitByte('-')
				i += 2
			case n == '\r' || n == '\n':
				if !cur().skip {
					if err := flush(); err != nil {
						return err
					}
				}
				i += 2
			case n == '\\' || n == '{' || n == '}':
				emitByte(n)
				i += 2
			default: // \- optional hyphen, \| \: and the like: no text
				i += 2
			}
		default:
			emitByte(c)
			i++
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return fmt.Errorf("truncated RTF: %d groups not closed", len(stack)-1)
}

func rtfLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// rtfCodePage maps \ansicpg's Windows code page to a decoder; an unknown
// one reads as Windows-1252 (most text is ASCII either way).
func rtfCodePage(cp int) encoding.Encoding {
	switch cp {
	case 437:
		return charmap.CodePage437
	case 850:
		return charmap.CodePage850
	case 852:
		return charmap.CodePage852
	case 866:
		return charmap.CodePage866
	case 874:
		return charmap.Windows874
	case 932:
		return japanese.ShiftJIS
	case 936:
		return simplifiedchinese.GBK
	case 949:
		return korean.EUCKR
	case 950:
		return traditionalchinese.Big5
	case 1250:
		return charmap.Windows1250
	case 1251:
		return charmap.Windows1251
	case 1253:
		return charmap.Windows1253
	case 1254:
		return charmap.Windows1254
	case 1255:
		return charmap.Windows1255
	case 1256:
		return charmap.Windows1256
	case 1257:
		return charmap.Windows1257
	case 1258:
		return charmap.Windows1258
	case 10000:
		return charmap.Macintosh
	}
	return charmap.Windows1252
}
