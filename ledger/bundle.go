package ledger

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// BundleFormat names the proof bundle's format (docs/ledger.md).
const BundleFormat = "mailvault-proof/1"

// Bundle proves that a leaf is in the ledger: the leaf's bytes, its index,
// the inclusion proof (the sibling hashes from the leaf up, as
// RFC 6962 / RFC 9162 audit paths are), and the signed checkpoint of the
// tree it is proved against. Everything needed to check it is inside, but
// the verifier key, which the checker must get from the archive's owner by
// other means.
type Bundle struct {
	Format     string      `json:"format"`
	Leaf       string      `json:"leaf"`  // the leaf's bytes (JSON text, see Leaf)
	Index      int64       `json:"index"` // its position, from 0
	TreeSize   int64       `json:"tree_size"`
	Proof      []tlog.Hash `json:"proof"`      // base64 each
	Checkpoint string      `json:"checkpoint"` // the signed note
	// Timestamp, when the checkpoint was timestamped, is the TSA's RFC 3161
	// TimeStampResp over SHA-256 of Checkpoint's bytes (DER; base64 in
	// JSON): the checkpoints/<size>.tsr file (timestamp.go).
	Timestamp []byte `json:"timestamp,omitempty"`
}

// Prove makes the bundle for leaf i against the signed checkpoint, which
// must be of a tree holding it.
func (l *Log) Prove(i int64, signed []byte, vkey string) (*Bundle, error) {
	c, err := OpenCheckpoint(signed, vkey)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= c.Size {
		return nil, fmt.Errorf("ledger: leaf %d is not in the checkpoint's tree of %d (a newer checkpoint is needed)", i, c.Size)
	}
	root, err := l.TreeHash(c.Size)
	if err != nil {
		return nil, err
	}
	if root != c.Root {
		return nil, fmt.Errorf("ledger: the checkpoint of size %d does not match the ledger (ledger verify)", c.Size)
	}
	leaf, err := l.Leaf(i)
	if err != nil {
		return nil, err
	}
	p, err := l.ProveLeaf(i, c.Size)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Format: BundleFormat, Leaf: string(leaf), Index: i, TreeSize: c.Size, Proof: p, Checkpoint: string(signed)}
	// The checkpoint's token, when it has one that stamps these very bytes
	// (one that does not is left out here and reported by ledger verify).
	if tsr, err := l.ReadTimestamp(c.Size); err == nil {
		if _, err := VerifyTimestamp(tsr, signed, nil); err == nil {
			b.Timestamp = tsr
		}
	}
	return b, nil
}

// Verified is what a checked bundle proves.
type Verified struct {
	Leaf       Leaf
	Checkpoint Checkpoint
	// Time is the TSA's time of the checkpoint's timestamp (the tree, so
	// the leaf, existed then), zero when the bundle has none; TSA names the
	// token's signer.
	Time time.Time
	TSA  string
}

// ErrProof is wrapped by every reason a bundle does not verify.
var ErrProof = errors.New("the proof does not verify")

// VerifyBundle checks a bundle offline against the verifier key: the
// checkpoint's signature, then that the leaf at its index hashes up to the
// checkpoint's root, then its timestamp, when it has one, against the
// token's own certificate (VerifyBundleTimestamp to chain it to roots).
func VerifyBundle(b *Bundle, vkey string) (*Verified, error) {
	return VerifyBundleTimestamp(b, vkey, nil)
}

// VerifyBundleTimestamp is VerifyBundle with the roots the timestamp's
// signer must chain to. A timestamp present is never ignored: one that does
// not parse, stamps other bytes or does not verify fails the bundle.
func VerifyBundleTimestamp(b *Bundle, vkey string, tsaRoots *x509.CertPool) (*Verified, error) {
	if b.Format != BundleFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrProof, b.Format, BundleFormat)
	}
	c, err := OpenCheckpoint([]byte(b.Checkpoint), vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	if b.TreeSize != c.Size {
		return nil, fmt.Errorf("%w: the bundle says tree size %d, its checkpoint %d", ErrProof, b.TreeSize, c.Size)
	}
	if b.Index < 0 || b.Index >= c.Size {
		return nil, fmt.Errorf("%w: leaf index %d outside the tree of %d", ErrProof, b.Index, c.Size)
	}
	if err := tlog.CheckRecord(b.Proof, c.Size, c.Root, b.Index, tlog.RecordHash([]byte(b.Leaf))); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	f, err := DecodeLeaf([]byte(b.Leaf))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	v := &Verified{Leaf: f, Checkpoint: c}
	if b.Timestamp != nil {
		st, err := VerifyTimestamp(b.Timestamp, []byte(b.Checkpoint), tsaRoots)
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint timestamp: %v", ErrProof, err)
		}
		v.Time, v.TSA = st.Time, st.TSA
	}
	return v, nil
}

// ReadBundle reads a bundle file (at most 1 MiB: a bundle is a few KB).
func ReadBundle(path string) (*Bundle, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("%s: %d bytes is not a proof bundle", path, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// CheckMessage checks that raw is the message a verified message leaf
// names (its sha256 and size).
func (v *Verified) CheckMessage(raw []byte) error {
	if v.Leaf.Kind != KindMessage {
		return fmt.Errorf("%w: the leaf is a %s, not a message", ErrProof, v.Leaf.Kind)
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != v.Leaf.SHA256 || int64(len(raw)) != v.Leaf.Size {
		return fmt.Errorf("%w: the message given has sha256 %s and %d bytes; the ledger's has %s and %d", ErrProof, got, len(raw), v.Leaf.SHA256, v.Leaf.Size)
	}
	return nil
}
