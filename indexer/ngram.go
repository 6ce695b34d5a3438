package indexer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"mailvault/indexer/mime"
)

// The IMAP SEARCH prefilter: one fixed-size trigram signature per message,
// on disk, so that a content key (FROM ... TEXT, HEADER) decodes only the
// messages that may hold its string (issue 14).
//
// Invariant: the prefilter never rules out a true hit. A signature is built
// from the same mime.View the exact matcher reads, over the bytes of its
// folded strings; the needle is folded by the same mime.Fold. A needle that
// is a byte substring of a folded string has all its byte trigrams among
// that string's trigrams, so every bit a needle asks for is set in a
// signature of any message that holds it. Bloom bits only add false
// candidates, which the exact verification drops; NOT and OR stay exact
// because the prefilter only answers "no" for a positive leaf that is truly
// false. Byte trigrams rather than rune trigrams: no rune decoding, and a
// two-character CJK needle (6 bytes) is still narrowed.
//
// Layout: <data_dir>/imapsearch.sig, slot i (512 bytes) at offset 512*i for
// the catalog's message row id i (ids are dense, from 1); slot 0 is the
// header (magic, format, fingerprint of the view). A slot:
//
//	[0:16)    the first 16 bytes of the message's sha256
//	[16:20)   CRC-32C of the slot with these 4 bytes zero
//	[20]      1 (a written slot)
//	[32:48)   from: 128 bits over the From fields as Dovecot searches them (FROM)
//	[48:80)   recipients: 256 bits over To, Cc and Bcc (TO CC BCC)
//	[80:96)   subject: 128 bits over the Subjects (SUBJECT)
//	[96:256)  header: 1280 bits over the header block as TEXT sees it (HEADER, TEXT)
//	[256:512) body: 2048 bits over the text parts and nested part headers (BODY, TEXT)
//
// One bit per trigram (k=1). The split follows the distinct trigrams
// measured per region on the amplified corpus (medians of 2,000 messages of
// folder01: 103 in the envelope, 928 in the header block, 710 in the
// body); format 1 gave the envelope 512 bits and the header 1,024, and
// TEXT "deadline" decoded 433 messages of 1,000 for 108 hits (format 2:
// 239). Format 2 had one envelope region for FROM, TO, CC, BCC and
// SUBJECT: FROM "jm@" decoded 6,539 of 10,000 messages for no hit (jm@ is
// in most To fields of the SpamAssassin mail), hence format 3's regions.
// Trigrams of common words stay common, so a needle made of them
// (TEXT "deadline": "LIN", "INE", "EAD" are in most header blocks) is
// narrowed less whatever the bit budget. Why signatures and not posting
// lists: the corpus has about 1,700 distinct trigrams per message, so
// postings (delta + varint, ~1.5 bytes an entry) would be ~2.5 KB a
// message, half the raw mail; a slot is 512 bytes (9.6 % of the corpus's
// 5.3 KB average message), is written in place with one pwrite at ingest
// (no merging of segments), and
// a query reads a mailbox's slots sequentially by id (10,000 slots are
// 5 MB). The cost is a read of every slot of the mailbox per query instead
// of the postings of the needle's trigrams: linear, but small and cheap.
//
// Consistency: a slot is used only when its CRC holds and its sha256 prefix
// is the occurrence's (a row id SQLite reused, a torn write, a slot never
// written all count as unknown, and an unknown message is a candidate:
// scanned, never skipped). The header names the slot format and a
// fingerprint of mime.View over probe messages; when either differs from
// this binary's (the fold or the view changed), the file is replaced by an
// empty one and rebuilt as messages are ingested or searched. A message
// the search had to decode because its slot was unknown gets its slot
// written then, so an archive from before the prefilter fills it at its
// first searches. Expunge and flag changes do not touch content, so not
// the prefilter; a disposal (retention, erasure) zeroes the message's slot,
// since a signature leaks words of the erased text. Slots are not fsynced:
// a crash loses or tears some, which then read as unknown.

const (
	sigSlot      = 512
	sigFormat    = 3
	sigMagic     = "MVNGRAM\x00"
	sigFileName  = "imapsearch.sig"
	sigFromOff   = 32
	sigFromBytes = 16
	sigRcptOff   = 48
	sigRcptBytes = 32
	sigSubjOff   = 80
	sigSubjBytes = 16
	sigHdrOff    = 96
	sigHdrBytes  = 160
	sigBodyOff   = 256
	sigBodyBytes = sigSlot - sigBodyOff
	sigReadSlots = 128 // slots per read of a query's pass (64 KB)
)

// sigRegion is a region of a signature.
type sigRegion struct{ off, bits int }

var (
	regionFrom    = sigRegion{sigFromOff, sigFromBytes * 8}
	regionRcpt    = sigRegion{sigRcptOff, sigRcptBytes * 8}
	regionSubject = sigRegion{sigSubjOff, sigSubjBytes * 8}
	regionHeader  = sigRegion{sigHdrOff, sigHdrBytes * 8}
	regionBody    = sigRegion{sigBodyOff, sigBodyBytes * 8}
)

// bit is the bit of region r that trigram t sets.
func (r sigRegion) bit(t uint32) int {
	return r.off*8 + int((uint64(t)*0x9E3779B97F4A7C15>>32)%uint64(r.bits))
}

// add sets the bits of every byte trigram of s.
func (r sigRegion) add(slot *[sigSlot]byte, s string) {
	for i := 0; i+3 <= len(s); i++ {
		b := r.bit(uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2]))
		slot[b>>3] |= 1 << (b & 7)
	}
}

// signature is the slot of a message with its view v.
func signature(sha [32]byte, v *mime.View) *[sigSlot]byte {
	var s [sigSlot]byte
	copy(s[:16], sha[:16])
	s[20] = 1
	for _, h := range v.Addresses {
		// textMatch compares the key with strings.EqualFold: so here.
		if strings.EqualFold(h.Key, "From") {
			regionFrom.add(&s, h.Value)
		} else {
			regionRcpt.add(&s, h.Value)
		}
	}
	for _, x := range v.Subjects {
		regionSubject.add(&s, x)
	}
	// HEADER reads v.Headers' values; each is written whole into
	// HeaderText (mime.NewView), so HeaderText's trigrams cover them.
	regionHeader.add(&s, v.HeaderText)
	for _, h := range v.Headers {
		regionHeader.add(&s, h.Value)
	}
	regionBody.add(&s, v.Body)
	regionBody.add(&s, v.PartHeaders)
	binary.LittleEndian.PutUint32(s[16:20], slotCRC(&s))
	return &s
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func slotCRC(s *[sigSlot]byte) uint32 {
	c := crc32.Update(0, castagnoli, s[:16])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	return crc32.Update(c, castagnoli, s[20:])
}

// valid reports whether s is a written, intact slot of the message sha.
func slotValid(s []byte, sha [32]byte) bool {
	if len(s) != sigSlot || s[20] != 1 || !bytes.Equal(s[:16], sha[:16]) {
		return false
	}
	return binary.LittleEndian.Uint32(s[16:20]) == slotCRC((*[sigSlot]byte)(s))
}

// sigNeedle is a folded needle as bits to test: the message may hold it
// when, for some region of alts, every bit of that region is set.
type sigNeedle struct {
	alts [][]int
}

// newSigNeedle returns the test of the folded needle over regions, or nil
// when the needle is too short to have a trigram (those keys scan).
func newSigNeedle(needle string, regions ...sigRegion) *sigNeedle {
	if len(needle) < 3 {
		return nil
	}
	n := &sigNeedle{}
	for _, r := range regions {
		seen := map[int]bool{}
		var bits []int
		for i := 0; i+3 <= len(needle); i++ {
			b := r.bit(uint32(needle[i])<<16 | uint32(needle[i+1])<<8 | uint32(needle[i+2]))
			if !seen[b] {
				seen[b] = true
				bits = append(bits, b)
			}
		}
		n.alts = append(n.alts, bits)
	}
	return n
}

// may reports whether the message of slot s may hold the needle.
func (n *sigNeedle) may(s []byte) bool {
	for _, bits := range n.alts {
		all := true
		for _, b := range bits {
			if s[b>>3]&(1<<(b&7)) == 0 {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// sigFile is the signature file of an archive. Writes are pwrites of whole
// slots (a slot is a pure function of the message's bytes and the view, so
// two writers of one slot write the same bytes); mu orders a search's
// backfill against a disposal's zeroing (see put).
type sigFile struct {
	f        *os.File
	writable bool
	mu       sync.Mutex
	forgets  uint64 // disposals so far, under mu

	// checked is one bit per row id: set when a scan found the slot
	// intact (slotValid) and no write to the file began while it read
	// it; cleared, before the write, by every put and forget of that id.
	// A scan trusts a set bit instead of recomputing the CRC of the
	// 512-byte slot (most of a header-only query's prefilter). Kept only
	// by the writer: this process makes every write to the file, so no
	// write it does not see can land behind a set bit. A reader (another
	// process, opened read-only) checks every slot. Under mu; one bit
	// per message (125 KB at a million).
	checked []uint64
	writes  uint64 // puts and forgets begun, under mu
}

// epoch is the count of disposals so far: a backfill passes the value it
// read before it read the message to put.
func (s *sigFile) epoch() uint64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forgets
}

// viewFingerprint hashes mime.View's output over probe messages that
// exercise its decoding (encoded words, addresses, quoted-printable,
// base64, charsets, nested parts, HTML) and mime.Fold: a change of the
// view or the fold that shows on them changes the fingerprint, and the
// signature file is rebuilt.
func viewFingerprint() [32]byte {
	probes := []string{
		"From: =?iso-8859-1?q?J=F6rg?= <jorg@example.org>, \"Odd  Name\" <a@b>\nTo: undisclosed:;\nCc: x@y (comment)\nSubject: =?utf-8?b?w4ljb2xl?=   two\tblanks\nX-Folded: a\n\tb\n  c\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9 na=EFve =\nsoft break   \nFREE \xef\xbc\xa6\xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xa5 Stra\xdfe\n",
		"Subject: multi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n--b1\r\nContent-Type: text/html; charset=windows-1252\r\n\r\n<p>Price \x80 5</p>\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGlkZGVu\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSW5uZXIgdGV4dCDDqQ==\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n--b1\r\nContent-Type: text/plain charset=x\r\n\r\ninvalid type\r\n--b1--\r\n",
		"no header at all \xff\xfe",
		"Content-Type: text/plain; charset=ks_c_5601-1987\n\n\xc7\xd1\xb1\xb9\n",
		"Content-Type: text/plain; charset=iso-2022-jp\nSubject: =?ISO-2022-JP?B?GyRCJEskWyRzGyhC?=\n\n\x1b$B$3$s$K$A$O\x1b(B\n",
	}
	h := sha256.New()
	w := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	for _, p := range probes {
		v := mime.NewView([]byte(p))
		for _, x := range v.Headers {
			w(x.Key)
			w(x.Value)
		}
		for _, x := range v.Addresses {
			w(x.Key)
			w(x.Value)
		}
		for _, x := range v.Subjects {
			w(x)
		}
		w(v.HeaderText)
		w(v.Body)
		w(v.PartHeaders)
		w(mime.Fold(p))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func sigHeader() [sigSlot]byte {
	var s [sigSlot]byte
	copy(s[:8], sigMagic)
	binary.LittleEndian.PutUint32(s[8:12], sigFormat)
	fp := viewFingerprint()
	copy(s[12:44], fp[:])
	return s
}

// openSigFile opens the signature file in dir. One whose header is not
// this binary's is replaced by an empty one (writable), or not used (nil,
// read-only). A missing file is created (writable) or not used.
func openSigFile(dir string, readOnly bool, log *slog.Logger) (*sigFile, error) {
	path := filepath.Join(dir, sigFileName)
	want := sigHeader()
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if readOnly {
			return nil, nil
		}
	case err != nil:
		return nil, fmt.Errorf("open search signatures: %w", err)
	default:
		var got [sigSlot]byte
		if _, err := f.ReadAt(got[:], 0); err == nil && got == want {
			return &sigFile{f: f, writable: !readOnly}, nil
		}
		f.Close()
		if readOnly {
			log.Info("IMAP SEARCH prefilter made by another version of the view; searches scan until a writer rebuilds it", "file", path)
			return nil, nil
		}
		log.Info("IMAP SEARCH prefilter made by another version of the view: replaced by an empty one, rebuilt as mail is ingested and searched", "file", path)
	}
	// A new file: header written and fsynced under a temporary name, then
	// renamed, so that no crash leaves old slots under a new header.
	tmp := path + ".tmp"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create search signatures: %w", err)
	}
	if _, err := nf.WriteAt(want[:], 0); err == nil {
		err = nf.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		nf.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("create search signatures: %w", err)
	}
	return &sigFile{f: nf, writable: true}, nil
}

func (s *sigFile) close() error {
	if s == nil {
		return nil
	}
	return s.f.Close()
}

// put writes the slot of message id. A search's backfill passes since, the
// epoch it read before reading the message: the slot is not written when a
// disposal came after that (it may be of this message, whose blob the
// search read before it was deleted). Ingest passes since < 0.
func (s *sigFile) put(id int64, slot *[sigSlot]byte, since int64) error {
	if s == nil || !s.writable || id <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if since >= 0 && uint64(since) != s.forgets {
		return nil
	}
	s.unchecked(id)
	_, err := s.f.WriteAt(slot[:], id*sigSlot)
	return err
}

// unchecked clears the checked bit of id and counts a write begun; under
// mu, before the write.
func (s *sigFile) unchecked(id int64) {
	s.writes++
	if w := int(id >> 6); w < len(s.checked) {
		s.checked[w] &^= 1 << (id & 63)
	}
}

// forget zeroes the slot of message id (a disposal), if the file has one,
// durably: an erasure must not come back after a crash.
func (s *sigFile) forget(id int64) error {
	if s == nil || !s.writable || id <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgets++
	s.unchecked(id)
	fi, err := s.f.Stat()
	if err != nil || fi.Size() <= id*sigSlot {
		return err
	}
	var zero [sigSlot]byte
	if _, err := s.f.WriteAt(zero[:], id*sigSlot); err != nil {
		return err
	}
	return s.f.Sync()
}

// scan calls fn(i, slot) for every i of ids (row ids, ascending), with
// slot nil when the file has no intact slot of message sha(i) for it.
// Reads are runs of at most sigReadSlots slots, so memory stays at one
// buffer and a bitset.
func (s *sigFile) scan(ids []int64, sha func(i int) [32]byte, fn func(i int, slot []byte)) error {
	buf := make([]byte, sigReadSlots*sigSlot)
	var known [sigReadSlots]bool
	for i := 0; i < len(ids); {
		first := ids[i]
		j := i
		for j < len(ids) && ids[j]-first < sigReadSlots {
			j++
		}
		last := ids[j-1]
		s.mu.Lock()
		before := s.writes
		s.mu.Unlock()
		n, err := s.f.ReadAt(buf[:(last-first+1)*sigSlot], first*sigSlot)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read search signatures: %w", err)
		}
		// A bit is trusted only when no write began since before the
		// read: the bytes read are then those that were checked.
		s.mu.Lock()
		quiet := s.writable && s.writes == before
		for k := i; k < j; k++ {
			id := ids[k]
			w := int(id >> 6)
			known[k-i] = quiet && w < len(s.checked) && s.checked[w]&(1<<(id&63)) != 0
		}
		s.mu.Unlock()
		var fresh []int64
		for k := i; k < j; k++ {
			off := int(ids[k]-first) * sigSlot
			if off+sigSlot > n {
				fn(k, nil)
				continue
			}
			slot := buf[off : off+sigSlot]
			h := sha(k)
			switch {
			case known[k-i]:
				// Checked before: the cheap tests still name the message.
				if slot[20] != 1 || !bytes.Equal(slot[:16], h[:16]) {
					slot = nil
				}
			case slotValid(slot, h):
				if quiet {
					fresh = append(fresh, ids[k])
				}
			default:
				slot = nil
			}
			fn(k, slot)
		}
		if len(fresh) > 0 {
			s.mu.Lock()
			if s.writes == before {
				for _, id := range fresh {
					w := int(id >> 6)
					if w >= len(s.checked) {
						s.checked = slices.Grow(s.checked, w+1-len(s.checked))[:w+1]
					}
					s.checked[w] |= 1 << (id & 63)
				}
			}
			s.mu.Unlock()
		}
		i = j
	}
	return nil
}

// rowIDCatalog is what forgetSignature needs of the catalog (the SQLite
// one has it; the seam in storage.go does not name it).
type rowIDCatalog interface {
	MessageRowID(ctx context.Context, sha [32]byte) (int64, error)
}

// forgetSignature zeroes the signature of the message k (a disposal). A
// catalog that cannot name the message's row fails the disposal rather than
// leave the erased text's bits on disk.
func (a *Archive) forgetSignature(ctx context.Context, k [32]byte) error {
	if a.sigs == nil {
		return nil
	}
	rc, ok := a.cat.(rowIDCatalog)
	if !ok {
		return fmt.Errorf("clear its search signature: the catalog %T cannot name its row", a.cat)
	}
	id, err := rc.MessageRowID(ctx, k)
	if err != nil {
		return fmt.Errorf("clear its search signature: %w", err)
	}
	if err := a.sigs.forget(id); err != nil {
		return fmt.Errorf("clear its search signature: %w", err)
	}
	return nil
}

// sigSize is the file's size in bytes (for the benchmark and status).
func (s *sigFile) size() int64 {
	if s == nil {
		return 0
	}
	fi, err := s.f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// SearchSignatureBytes is the size of the IMAP SEARCH prefilter on disk.
func (a *Archive) SearchSignatureBytes() int64 { return a.sigs.size() }
