package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a tree head in the C2SP tlog-checkpoint form: the origin
// line (the log's name, which is also the signing key's name), the tree
// size in decimal, the root hash in base64, each ending in a newline. It is
// signed as a C2SP signed note (golang.org/x/mod/sumdb/note, Ed25519).
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text is the checkpoint's body, the signed text.
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ParseCheckpoint reads a checkpoint's body (extension lines after the
// third are allowed and ignored, as the format says).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return Checkpoint{}, errors.New("ledger: checkpoint: want origin, size and root hash lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint: bad size %q", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint: bad root hash %q", lines[2])
	}
	c := Checkpoint{Origin: lines[0], Size: n}
	copy(c.Root[:], h)
	return c, nil
}

// GenerateKey makes a signing key for the log named name (a host-like name,
// e.g. "mailvault.example.com/archive"): the private key in the note
// package's text form (PRIVATE+KEY+name+hash+key) and the public verifier
// key (name+hash+key), which is what a third party needs.
func GenerateKey(name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// Sign signs a checkpoint of the tree as it is now.
func (l *Log) Sign(s note.Signer) (Checkpoint, []byte, error) {
	var c Checkpoint
	var signed []byte
	err := l.locked(func() error {
		root, err := l.TreeHash(l.n)
		if err != nil {
			return err
		}
		c = Checkpoint{Origin: s.Name(), Size: l.n, Root: root}
		signed, err = note.Sign(&note.Note{Text: c.Text()}, s)
		return err
	})
	return c, signed, err
}

// OpenCheckpoint checks a signed checkpoint against the verifier key vkey
// and returns it. The origin must be the key's name.
func OpenCheckpoint(signed []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger: verifier key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint of %q, signed by the key of %q", c.Origin, v.Name())
	}
	return c, nil
}

// CheckpointDir is where a ledger keeps its signed checkpoints, one file
// per tree size (<size>.txt); Latest is the newest's copy.
const (
	CheckpointDir = "checkpoints"
	Latest        = "checkpoint"
)

// WriteCheckpoint signs the tree as it is and stores the checkpoint in the
// ledger's checkpoints/ and, when copyDir is not empty, in copyDir too (a
// directory on other storage: a rewrite of the ledger cannot reach it). The
// leaves are synced to disk first. It returns the checkpoint, unchanged
// when the tree has not grown since the last one.
func (l *Log) WriteCheckpoint(s note.Signer, copyDir string) (Checkpoint, error) {
	if err := l.Sync(); err != nil {
		return Checkpoint{}, err
	}
	c, signed, err := l.Sign(s)
	if err != nil {
		return Checkpoint{}, err
	}
	name := strconv.FormatInt(c.Size, 10) + ".txt"
	for _, dir := range []string{filepath.Join(l.dir, CheckpointDir), copyDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return Checkpoint{}, fmt.Errorf("ledger: %w", err)
		}
		if err := writeFileSync(filepath.Join(dir, name), signed); err != nil {
			return Checkpoint{}, err
		}
	}
	if err := writeFileSync(filepath.Join(l.dir, Latest), signed); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// writeFileSync writes path through a temporary name, synced, then renamed.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// StoredCheckpoint is a checkpoint file found in a directory.
type StoredCheckpoint struct {
	Path   string
	Signed []byte
}

// Checkpoints lists the checkpoint files of dir (<size>.txt), smallest
// tree first.
//
// dir may also be one checkpoint file (one an auditor kept).
func Checkpoints(dir string) ([]StoredCheckpoint, error) {
	if fi, err := os.Stat(dir); err == nil && fi.Mode().IsRegular() {
		if fi.Size() > 64<<10 {
			return nil, fmt.Errorf("ledger: %s: %d bytes is not a checkpoint", dir, fi.Size())
		}
		b, err := os.ReadFile(dir)
		if err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		return []StoredCheckpoint{{Path: dir, Signed: b}}, nil
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	type one struct {
		n int64
		p string
	}
	var all []one
	for _, e := range ents {
		s, ok := strings.CutSuffix(e.Name(), ".txt")
		n, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil {
			continue
		}
		all = append(all, one{n, filepath.Join(dir, e.Name())})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n < all[j].n })
	var out []StoredCheckpoint
	for _, o := range all {
		b, err := os.ReadFile(o.p)
		if err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		out = append(out, StoredCheckpoint{Path: o.p, Signed: b})
	}
	return out, nil
}

// LoadSigner reads a private key written by GenerateKey (the key itself, or
// a file holding it) and returns its signer and its public verifier key.
func LoadSigner(keyOrFile string) (note.Signer, string, error) {
	k := strings.TrimSpace(keyOrFile)
	if !strings.HasPrefix(k, "PRIVATE+KEY+") {
		b, err := os.ReadFile(keyOrFile)
		if err != nil {
			return nil, "", fmt.Errorf("ledger: signing key: %w", err)
		}
		k = string(bytes.TrimSpace(b))
	}
	s, err := note.NewSigner(k)
	if err != nil {
		return nil, "", fmt.Errorf("ledger: signing key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>: the public key
	// follows from the Ed25519 seed.
	f := strings.SplitN(k, "+", 5) // a name has no "+"; the base64 may
	raw, err := base64.StdEncoding.DecodeString(f[len(f)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, "", errors.New("ledger: signing key: not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, "", fmt.Errorf("ledger: signing key: %w", err)
	}
	return s, vkey, nil
}

// LoadVerifierKey reads a public verifier key (the key itself, or a file
// holding it) and checks its form.
func LoadVerifierKey(keyOrFile string) (string, error) {
	k := strings.TrimSpace(keyOrFile)
	if _, err := note.NewVerifier(k); err != nil {
		b, ferr := os.ReadFile(keyOrFile)
		if ferr != nil {
			return "", fmt.Errorf("ledger: verifier key: %v (and not a readable file: %v)", err, ferr)
		}
		k = string(bytes.TrimSpace(b))
		if _, err := note.NewVerifier(k); err != nil {
			return "", fmt.Errorf("ledger: verifier key %s: %w", keyOrFile, err)
		}
	}
	return k, nil
}
