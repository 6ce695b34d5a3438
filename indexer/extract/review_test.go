package extract

import (
	"encoding/binary"
	"testing"
)

// wrapCountZip is a ZIP whose central directory holds n entries (empty
// stored files named "a"; one local header, archive/zip's NewReader reads
// the directory alone) and whose end record claims n mod 65536 of them.
// archive/zip reads every directory header there is and then compares the
// count modulo 65536 (uint16), so a claim of a few thousand passes any
// check made on the claim while the reader builds n *zip.File.
func wrapCountZip(n int) []byte {
	var l [30]byte // one local header, so that the file starts as a ZIP does
	copy(l[:], "PK\x03\x04")
	binary.LittleEndian.PutUint16(l[4:], 20)
	binary.LittleEndian.PutUint16(l[26:], 1)
	b := append(l[:], 'a')
	dirOff := len(b)
	for range n {
		var h [46]byte
		copy(h[:], zipCentralSig)
		binary.LittleEndian.PutUint16(h[4:], 20)
		binary.LittleEndian.PutUint16(h[6:], 20)
		binary.LittleEndian.PutUint16(h[28:], 1) // name length
		b = append(b, h[:]...)
		b = append(b, 'a')
	}
	dirSize := len(b) - dirOff
	var e [22]byte
	copy(e[:], zipEndSig)
	binary.LittleEndian.PutUint16(e[8:], uint16(n))
	binary.LittleEndian.PutUint16(e[10:], uint16(n))
	binary.LittleEndian.PutUint32(e[12:], uint32(dirSize))
	binary.LittleEndian.PutUint32(e[16:], uint32(dirOff))
	return append(b, e[:]...)
}

// The hostile review of issue 15: Detect on a ZIP whose end record's
// entry count wrapped. It runs before the deadline's goroutine and before
// MaxInput (Extract's safeDetect; export's TNEF check), so its memory
// must be bounded by what it reads, not by what archive/zip makes of it.
func TestHostileWrappedEntryCount(t *testing.T) {
	for _, c := range []hostileCase{
		{name: "wrapped.zip", data: func(testing.TB) []byte { return wrapCountZip(400_000) },
			status: []Status{Truncated, Failed}},
		{name: "wrapped.docx", data: func(testing.TB) []byte { return wrapCountZip(400_000) },
			status: []Status{Truncated, Failed}},
	} {
		t.Run(c.name, func(t *testing.T) { runHostile(t, c) })
	}
}
