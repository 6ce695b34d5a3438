package pack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"mailvault/indexer/store"
)

// A record is one blob in a segment:
//
//	magic  "MVP1"        4 bytes
//	key    sha256 of raw 32 bytes
//	clen   uint32 BE     length of the zstd frame that follows
//	rlen   uint32 BE     length of the raw message
//	crc    uint32 BE     CRC-32C of bytes 0..43 and of the frame
//	frame  clen bytes    zstd(raw)
//
// The framing lets a reader tell a whole record from a torn or damaged one
// without the index (compaction scans segments with it; the fuzz test feeds
// it damaged bytes), and the key in the header lets a record be checked
// against the index entry that points at it.
const (
	headerLen = 48
	magic     = "MVP1"
	// maxFrame bounds what a damaged length field can make a reader
	// allocate: no message the archive accepts compresses to more.
	maxFrame = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn is a record cut short: the bytes end inside it.
var errTorn = errors.New("record cut short")

// encodeRecord frames a compressed blob.
func encodeRecord(k store.Key, frame []byte, rawLen int) []byte {
	b := make([]byte, headerLen+len(frame))
	copy(b, magic)
	copy(b[4:36], k[:])
	binary.BigEndian.PutUint32(b[36:], uint32(len(frame)))
	binary.BigEndian.PutUint32(b[40:], uint32(rawLen))
	copy(b[headerLen:], frame)
	c := crc32.Update(0, castagnoli, b[:44])
	c = crc32.Update(c, castagnoli, frame)
	binary.BigEndian.PutUint32(b[44:], c)
	return b
}

// header is a record's parsed header.
type header struct {
	key  store.Key
	clen int
	rlen int
	crc  uint32
}

// parseHeader checks the magic and the lengths of the header in b (at least
// headerLen bytes).
func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, errTorn
	}
	if string(b[:4]) != magic {
		return header{}, fmt.Errorf("%w: bad record magic %q", store.ErrCorrupt, b[:4])
	}
	var h header
	copy(h.key[:], b[4:36])
	h.clen = int(binary.BigEndian.Uint32(b[36:]))
	h.rlen = int(binary.BigEndian.Uint32(b[40:]))
	h.crc = binary.BigEndian.Uint32(b[44:])
	if h.clen > maxFrame {
		return header{}, fmt.Errorf("%w: record frame of %d bytes", store.ErrCorrupt, h.clen)
	}
	return h, nil
}

// parseRecord reads the record at the start of b: its header and its frame
// (a sub-slice of b), checking the checksum. A record that b holds only part
// of is errTorn; one that is whole but wrong is store.ErrCorrupt.
func parseRecord(b []byte) (header, []byte, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, nil, err
	}
	if len(b) < headerLen+h.clen {
		return h, nil, errTorn
	}
	frame := b[headerLen : headerLen+h.clen]
	c := crc32.Update(0, castagnoli, b[:44])
	c = crc32.Update(c, castagnoli, frame)
	if c != h.crc {
		return h, nil, fmt.Errorf("%w: record checksum %08x, want %08x", store.ErrCorrupt, c, h.crc)
	}
	return h, frame, nil
}
