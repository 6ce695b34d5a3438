package export

import (
	"bytes"
	"testing"
)

// mboxrdQuoteLines is mboxrd quoting written the plain way, line by line,
// as the reference mboxrdQuote must equal.
func mboxrdQuoteLines(raw []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
			out = append(out, '>')
		}
		out = append(out, line...)
	}
	if !bytes.HasSuffix(raw, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}

// FuzzMboxrdQuote: the quoting equals the line-by-line reference, and
// un-quoting (one ">" off every line matching ^>+From ) gives back raw.
func FuzzMboxrdQuote(f *testing.F) {
	for _, s := range []string{"", "From x", "From ", ">From a\n", "a\nFrom b\n>>From c\r\nxFrom d\n", "\n>From", "From From From \nFrom", ">>>", "a>From b\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, want := mboxrdQuote(raw), mboxrdQuoteLines(raw)
		if !bytes.Equal(got, want) {
			t.Fatalf("mboxrdQuote(%q) = %q, want %q", raw, got, want)
		}
		var back []byte
		for _, line := range bytes.SplitAfter(got, []byte("\n")) {
			if bytes.HasPrefix(line, []byte(">")) && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				line = line[1:]
			}
			back = append(back, line...)
		}
		if !bytes.HasSuffix(raw, []byte("\n")) {
			back = back[:len(back)-1]
		}
		if !bytes.Equal(back, raw) {
			t.Fatalf("un-quoting mboxrdQuote(%q) gives %q", raw, back)
		}
	})
}
