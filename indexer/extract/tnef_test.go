package extract

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

var update = flag.Bool("update", false, "rewrite testdata/containers/winmail.dat from the TNEF writer")

// tnefWriter writes TNEF from [MS-OXTNEF], for round trips and for
// Debian's tnef to read back (a differential check of both sides).
type tnefWriter struct{ b bytes.Buffer }

func newTNEFWriter() *tnefWriter {
	w := &tnefWriter{}
	binary.Write(&w.b, binary.LittleEndian, uint32(tnefSignature))
	binary.Write(&w.b, binary.LittleEndian, uint16(0x0001)) // legacy key
	w.attr(1, 0x00089006, []byte{0, 0, 1, 0})               // attTnefVersion
	w.attr(1, 0x00069007, []byte{0xe4, 0x04, 0, 0, 0, 0, 0, 0})
	w.attr(1, 0x00078008, []byte("IPM.Microsoft Mail.Note\x00"))
	return w
}

// attr writes level, ID (type in the high 16 bits), length, data, checksum.
func (w *tnefWriter) attr(level byte, id uint32, data []byte) {
	w.b.WriteByte(level)
	binary.Write(&w.b, binary.LittleEndian, id)
	binary.Write(&w.b, binary.LittleEndian, uint32(len(data)))
	w.b.Write(data)
	var sum uint16
	for _, c := range data {
		sum += uint16(c)
	}
	binary.Write(&w.b, binary.LittleEndian, sum)
}

// mapiProp is one property for mapiBlock: a string (ptString8 or
// ptUnicode) or bytes (ptBinary).
type mapiProp struct {
	typ, id uint16
	val     any
}

func mapiBlock(props ...mapiProp) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	le(uint32(len(props)))
	for _, p := range props {
		le(p.typ)
		le(p.id)
		var v []byte
		switch p.typ {
		case ptString8:
			v = append([]byte(p.val.(string)), 0)
		case ptUnicode:
			for _, c := range utf16.Encode([]rune(p.val.(string))) {
				v = binary.LittleEndian.AppendUint16(v, c)
			}
			v = append(v, 0, 0)
		default:
			v = p.val.([]byte)
		}
		le(uint32(1)) // one value
		le(uint32(len(v)))
		b.Write(v)
		b.Write(make([]byte, int(pad4(uint32(len(v))))-len(v)))
	}
	return b.Bytes()
}

type tnefFile struct {
	title, long, mime string
	data              []byte
}

func (w *tnefWriter) attachment(f tnefFile) {
	w.attr(2, 0x00069002, make([]byte, 14)) // attAttachRenddata
	if f.title != "" {
		w.attr(2, 0x00018010, append([]byte(f.title), 0))
	}
	w.attr(2, 0x0006800F, f.data)
	var props []mapiProp
	if f.long != "" {
		props = append(props, mapiProp{ptUnicode, prAttachLongName, f.long})
	}
	if f.mime != "" {
		props = append(props, mapiProp{ptString8, prAttachMIMETag, f.mime})
	}
	if props != nil {
		w.attr(2, 0x00069005, mapiBlock(props...))
	}
}

// compressRTF writes LZFu with a greedy match search against the same
// ring dictionary the reader keeps (matches that do not overlap the write
// position), so both literals and references are exercised.
func compressRTF(raw []byte) []byte {
	var dict [4096]byte
	copy(dict[:], prebufRTF)
	w := len(prebufRTF)
	var out []byte
	emitted := 0
	var ctl byte
	var group []byte
	bits := 0
	flush := func() {
		out = append(out, ctl)
		out = append(out, group...)
		ctl, group, bits = 0, nil, 0
	}
	put := func(c byte) { dict[w] = c; w = (w + 1) & 4095 }
	for emitted < len(raw) {
		best, bestLen := 0, 0
		for off := range 4096 {
			if off == w {
				continue
			}
			n := 0
			for n < 17 && emitted+n < len(raw) && (w-off)&4095 > n && dict[(off+n)&4095] == raw[emitted+n] {
				n++
			}
			if n > bestLen {
				best, bestLen = off, n
			}
		}
		if bestLen >= 2 {
			ctl |= 1 << bits
			ref := best<<4 | (bestLen - 2)
			group = append(group, byte(ref>>8), byte(ref))
			for k := range bestLen {
				put(raw[emitted+k])
			}
			emitted += bestLen
		} else {
			group = append(group, raw[emitted])
			put(raw[emitted])
			emitted++
		}
		if bits++; bits == 8 {
			flush()
		}
	}
	ctl |= 1 << bits // the end: a reference to the write position
	ref := w << 4
	group = append(group, byte(ref>>8), byte(ref))
	flush()
	var h bytes.Buffer
	binary.Write(&h, binary.LittleEndian, uint32(len(out)+12))
	binary.Write(&h, binary.LittleEndian, uint32(len(raw)))
	binary.Write(&h, binary.LittleEndian, uint32(rtfCompressed))
	// The CRC ([MS-OXRTFCP] 2.1.3.2): the IEEE table, from 0, no final
	// XOR, over what follows the header. The reader does not check it;
	// Debian's tnef does.
	binary.Write(&h, binary.LittleEndian, ^crc32.Update(0xffffffff, crc32.IEEETable, out))
	return append(h.Bytes(), out...)
}

func TestPrebufIs207Bytes(t *testing.T) {
	if len(prebufRTF) != 207 {
		t.Fatalf("len %d", len(prebufRTF))
	}
}

func TestRTFRoundTrip(t *testing.T) {
	for _, raw := range []string{
		"",
		"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n",
		"{\\rtf1 " + strings.Repeat("abcabcabd ", 500) + "}",
		strings.Repeat("x", 5000), // past the dictionary's size: the ring wraps
	} {
		j := testJob(Limits{})
		got, err := decompressRTF(j, compressRTF([]byte(raw)))
		if err != nil || string(got) != raw {
			t.Fatalf("decompressRTF(compressRTF(%.40q…)) = %.40q…, %v", raw, got, err)
		}
	}
}

// sampleTNEF is the fixture: a plain body, a compressed RTF, an XML and an
// HTML attachment with long names, a short-named one, and a nested
// winmail.dat (an embedded message) holding an ICS.
func sampleTNEF() []byte {
	inner := newTNEFWriter()
	inner.attr(1, 0x00018004, []byte("Forwarded invitation\x00"))
	inner.attachment(tnefFile{title: "invite.ics", data: []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Cormorant planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")})

	w := newTNEFWriter()
	w.attr(1, 0x00018004, []byte("Quarterly figures\x00"))
	w.attr(1, 0x0002800C, []byte("Please find the Albatross figures attached.\x00"))
	w.attr(1, 0x00069003, mapiBlock(mapiProp{ptBinary, prRTFCompressed, compressRTF([]byte("{\\rtf1\\ansi Albatross figures}"))}))
	w.attachment(tnefFile{title: "BUDGET~1.XML", long: "budget-2024 Zürich.xml", mime: "application/xml", data: []byte("<budget><line>Puffin line item</line></budget>")})
	w.attachment(tnefFile{title: "NOTES~1.HTM", long: "meeting notes.html", data: []byte("<html><title>Gannet notes</title><body>decided</body></html>")})
	w.attachment(tnefFile{title: "logo.bin", data: []byte{0, 1, 2, 3, 0xff}})
	w.attachment(tnefFile{title: "forward.dat", data: inner.b.Bytes()})
	return w.b.Bytes()
}

func TestTNEFFixture(t *testing.T) {
	data := sampleTNEF()
	path := filepath.Join("testdata", "containers", "winmail.dat")
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(fixture(t, "winmail.dat"), data) {
		t.Fatal("testdata/containers/winmail.dat differs from what the writer makes: run with -update")
	}
	r := extract(t, "winmail.dat", data, nil)
	if r.Format != "tnef" || r.Status != OK {
		t.Fatalf("got %s %s %s", r.Format, r.Status, r.Detail)
	}
	want := "Quarterly figures Please find the Albatross figures attached. budget-2024 Zürich.xml Puffin line item meeting notes.html Gannet notes decided logo.bin forward.dat Forwarded invitation invite.ics Cormorant planning"
	if r.Text != want {
		t.Fatalf("text %q,\nwant %q", r.Text, want)
	}
	if got := strings.Join(memberNames(r), "|"); got != "budget-2024 Zürich.xml|meeting notes.html|logo.bin|forward.dat" {
		t.Fatalf("members %q", got)
	}
	for _, m := range r.Members {
		if m.Data == nil || int64(len(m.Data)) != m.Size {
			t.Errorf("member %s: %d bytes, size %d", m.Name, len(m.Data), m.Size)
		}
	}
	if f := r.Members[3].Result; f.Format != "tnef" || len(f.Members) != 1 || f.Members[0].Name != "invite.ics" {
		t.Fatalf("nested: %+v", f)
	}
	if r.Members[0].Result.Format != "xml" || r.Members[2].Result.Status != Unsupported {
		t.Fatalf("member results %+v / %+v", r.Members[0].Result, r.Members[2].Result)
	}
}

// With no plain body, the compressed RTF is decompressed and given to the
// RTF extractor (when one is registered) as body.rtf.
func TestTNEFCompressedRTFBody(t *testing.T) {
	w := newTNEFWriter()
	w.attr(1, 0x00069003, mapiBlock(
		mapiProp{ptUnicode, prSubject, "Ibis"},
		mapiProp{ptBinary, prRTFCompressed, compressRTF([]byte("{\\rtf1\\ansi\\deff0 {\\fonttbl{\\f0 Arial;}}\\pard Spoonbill report\\par}"))}))
	r := extract(t, "winmail.dat", w.b.Bytes(), nil)
	if r.Status != OK || !strings.HasPrefix(r.Text, "Ibis") {
		t.Fatalf("got %s %s %q", r.Status, r.Detail, r.Text)
	}
	if formats["rtf"] != nil && !strings.Contains(r.Text, "Spoonbill report") {
		t.Fatalf("rtf body not extracted: %q", r.Text)
	}
}

// Debian's tnef reads the writer's files: the names and bytes it extracts
// are the Members ours finds. Under CI the tool must be there (.ci/run
// installs it).
func TestTNEFAgainstDebianTnef(t *testing.T) {
	bin, err := exec.LookPath("tnef")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tnef (Debian package tnef) not installed")
		}
		t.Skip("tnef not installed (apt-get install tnef)")
	}
	cases := map[string][]byte{"sample": sampleTNEF()}
	for i := range 5 {
		w := newTNEFWriter()
		for k := range i + 1 {
			data := bytes.Repeat([]byte{byte(k), byte(i)}, 100*k+i+1)
			w.attachment(tnefFile{title: fmt.Sprintf("F%d_%d.BIN", i, k), long: fmt.Sprintf("file %d of case %d.bin", k, i), data: data})
		}
		cases[fmt.Sprint("generated", i)] = w.b.Bytes()
		// RTF bodies of varied repetitiveness, for tnef's LZFu reader.
		var rtf strings.Builder
		rtf.WriteString("{\\rtf1\\ansi ")
		for k := range 300 * i {
			fmt.Fprintf(&rtf, "word%d ", (k*k)%(7+i*40))
		}
		rtf.WriteString("}")
		w = newTNEFWriter()
		w.attr(1, 0x00069003, mapiBlock(mapiProp{ptBinary, prRTFCompressed, compressRTF([]byte(rtf.String()))}))
		cases[fmt.Sprint("rtf", i)] = w.b.Bytes()
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "winmail.dat")
			out := filepath.Join(dir, "out")
			os.WriteFile(in, data, 0o644)
			os.Mkdir(out, 0o755)
			b, err := exec.Command(bin, "-f", in, "-C", out, "--overwrite", "--save-body", "--body-pref=r").CombinedOutput()
			if err != nil || len(b) > 0 {
				t.Fatalf("tnef: %v: %s", err, b)
			}
			// The body it decompressed is the one we do.
			m, err := parseTNEF(data, 100)
			if err != nil {
				t.Fatal(err)
			}
			if m.rtf != nil {
				ours, err := decompressRTF(testJob(Limits{}), m.rtf)
				theirs, _ := os.ReadFile(filepath.Join(out, "message.rtf"))
				if err != nil || !bytes.Equal(ours, theirs) {
					t.Fatalf("RTF body: ours %d bytes (%v), tnef %d bytes", len(ours), err, len(theirs))
				}
				os.Remove(filepath.Join(out, "message.rtf"))
			}
			ents, _ := os.ReadDir(out)
			theirs := map[string][]byte{}
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(out, e.Name()))
				theirs[e.Name()] = b
			}
			r := extract(t, "winmail.dat", data, nil)
			ours := map[string][]byte{}
			for _, m := range r.Members {
				ours[m.Name] = m.Data
			}
			var tn, on []string
			for k := range theirs {
				tn = append(tn, k)
			}
			for k := range ours {
				on = append(on, k)
			}
			slices.Sort(tn)
			slices.Sort(on)
			if !slices.Equal(tn, on) {
				t.Fatalf("names: tnef %q, ours %q", tn, on)
			}
			for k, v := range theirs {
				if !bytes.Equal(v, ours[k]) {
					t.Errorf("%s: tnef %d bytes, ours %d, differ", k, len(v), len(ours[k]))
				}
			}
		})
	}
}

// Bad input: a signature only, a length field of 4 GiB, a MAPI count of
// billions, cut at every byte: bounded, flagged, no panic.
func TestTNEFHostile(t *testing.T) {
	w := newTNEFWriter()
	w.b.WriteByte(2)
	binary.Write(&w.b, binary.LittleEndian, uint32(0x0006800F))
	binary.Write(&w.b, binary.LittleEndian, uint32(0xffffffff))
	w.b.WriteString("short")
	r := extract(t, "winmail.dat", w.b.Bytes(), nil)
	if r.Status != Failed || r.Reason != ReasonCorrupt || !strings.Contains(r.Detail, "past the end") {
		t.Fatalf("4 GiB length: %s %s %s", r.Status, r.Reason, r.Detail)
	}
	w = newTNEFWriter()
	w.attr(1, 0x00069003, []byte{0xff, 0xff, 0xff, 0xff, 0x1e, 0, 0x37, 0, 0xff, 0xff, 0xff, 0x7f})
	r = extract(t, "winmail.dat", w.b.Bytes(), nil)
	if r.Status != Failed || r.Reason != ReasonCorrupt {
		t.Fatalf("MAPI count: %s %s %s", r.Status, r.Reason, r.Detail)
	}
	data := sampleTNEF()
	for n := range len(data) {
		r := extract(t, "winmail.dat", data[:n], nil)
		if r.Status == OK && n < len(data) {
			// A cut exactly between attributes is a shorter valid stream.
			if _, err := parseTNEF(data[:n], 100); err != nil {
				t.Fatalf("cut at %d: ok but parse says %v", n, err)
			}
		}
	}
}

func TestTNEFMemberLimit(t *testing.T) {
	w := newTNEFWriter()
	for i := range 10 {
		w.attachment(tnefFile{title: fmt.Sprintf("a%d.bin", i), data: []byte{1}})
	}
	r := extract(t, "winmail.dat", w.b.Bytes(), &Limits{MaxMembers: 3})
	if r.Status != Truncated || r.Reason != ReasonMembers || len(r.Members) != 3 {
		t.Fatalf("got %s %s %d members", r.Status, r.Reason, len(r.Members))
	}
}
