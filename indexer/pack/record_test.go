package pack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"

	"mailvault/indexer/store"
)

// FuzzRecord feeds the segment record reader what a damaged disk could hold.
// It must never panic, never allocate past the frame cap, and accept only
// bytes that re-encode to themselves (a whole, checksummed record); a record
// it accepts decodes or is refused as corrupt, never as anything else.
func FuzzRecord(f *testing.F) {
	enc, _ := zstd.NewWriter(nil)
	dec, _ := zstd.NewReader(nil)
	for _, raw := range [][]byte{message(1), {}, []byte("x")} {
		rec := encodeRecord(store.KeyOf(raw), enc.EncodeAll(raw, nil), len(raw))
		f.Add(rec)
		f.Add(rec[:len(rec)-1])
		f.Add(rec[:headerLen])
		bad := bytes.Clone(rec)
		bad[40] ^= 1
		f.Add(bad)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, frame, err := parseRecord(b)
		if err != nil {
			if !errors.Is(err, errTorn) && !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("parseRecord: %v is neither torn nor corrupt", err)
			}
			return
		}
		if again := encodeRecord(h.key, frame, h.rlen); !bytes.Equal(again, b[:headerLen+h.clen]) {
			t.Fatalf("parseRecord accepted bytes that do not re-encode to themselves")
		}
		if h.rlen <= 1<<20 {
			dec.DecodeAll(frame, nil) // must not panic; errors are ErrCorrupt in Get
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	raw := message(5)
	k := store.KeyOf(raw)
	rec := encodeRecord(k, []byte("frame"), len(raw))
	h, frame, err := parseRecord(append(rec, "next record"...))
	if err != nil || h.key != k || string(frame) != "frame" || h.rlen != len(raw) {
		t.Errorf("parseRecord = %+v, %q, %v", h, frame, err)
	}
	for cut := range len(rec) {
		if _, _, err := parseRecord(rec[:cut]); !errors.Is(err, errTorn) {
			t.Errorf("parseRecord(first %d of %d bytes) = %v, want errTorn", cut, len(rec), err)
		}
	}
}
