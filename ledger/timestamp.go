package ledger

// RFC 3161 timestamps of checkpoints (issue 12, item 2).
//
// A signed checkpoint proves what the ledger held, but not when: whoever
// holds the signing key could sign a back-dated history. A time-stamping
// authority (TSA) countersigns SHA-256 of the signed checkpoint's bytes with
// its own clock and key, so the tree existed no later than the TSA's time.
//
// The token is the TSA's whole TimeStampResp, DER, kept byte for byte beside
// the checkpoint it stamps: checkpoints/<size>.tsr next to <size>.txt (and in
// copy_dir the same), the form `openssl ts -reply` and `openssl ts -verify
// -data <size>.txt -in <size>.tsr -CAfile roots.pem` read.
//
// A token is good when the TSA granted it, it carries the TSA's certificate
// (we ask with certReq), its signature verifies under that certificate,
// whose one extended key usage is timeStamping, critical (RFC 3161 section
// 2.3; OpenSSL refuses others too), its message imprint is
// SHA-256 of exactly the checkpoint's bytes, and, when roots are given, the
// certificate chains to one of them at the token's time. Without roots a
// token only proves itself consistent: anyone can run a TSA, so who signed
// it (Stamp.TSA) must be checked by other means, as the ledger key is.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
)

// TimestampExt is the file extension of a checkpoint's timestamp token.
const TimestampExt = ".tsr"

// maxTimestamp bounds a TSA's answer: a token with its certificate chain is
// a few KB.
const maxTimestamp = 1 << 20

// ErrTimestamp is wrapped by every reason a timestamp token is refused.
var ErrTimestamp = errors.New("the timestamp does not verify")

// TSA is an RFC 3161 time-stamping authority that checkpoints are sent to.
type TSA struct {
	// URL takes POSTed TimeStampReqs (application/timestamp-query).
	URL string
	// Roots, when not nil, are the certificates a token's signer must
	// chain to; nil checks the token against its own certificate only.
	Roots *x509.CertPool
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
	// Client is the HTTP client (default: a new one with Timeout).
	Client *http.Client
}

// Stamp is what a verified timestamp token says.
type Stamp struct {
	Time   time.Time `json:"time"`   // the TSA's genTime
	TSA    string    `json:"tsa"`    // the signing certificate's subject
	Serial string    `json:"serial"` // the token's serial number, hex
}

// Request asks the TSA for a token over SHA-256 of signed, the bytes of a
// signed checkpoint, and checks the answer as VerifyTimestamp does, and
// also that it answers this request (its nonce). It returns the
// TimeStampResp's DER bytes, to be stored.
func (t *TSA) Request(ctx context.Context, signed []byte) ([]byte, *Stamp, error) {
	sum := sha256.Sum256(signed)
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, err
	}
	req, err := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: sum[:], Certificates: true, Nonce: nonce}).Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("timestamp request: %w", err)
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(req))
	if err != nil {
		return nil, nil, fmt.Errorf("timestamp request to %s: %w", t.URL, err)
	}
	hr.Header.Set("Content-Type", "application/timestamp-query")
	c := t.Client
	if c == nil {
		c = &http.Client{Timeout: timeout}
	}
	resp, err := c.Do(hr)
	if err != nil {
		return nil, nil, fmt.Errorf("timestamp request to %s: %w", t.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTimestamp+1))
	if err != nil {
		return nil, nil, fmt.Errorf("timestamp from %s: %w", t.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("timestamp from %s: HTTP %s", t.URL, resp.Status)
	}
	ts, st, err := checkTimestamp(body, signed, t.Roots)
	if err != nil {
		return nil, nil, fmt.Errorf("timestamp from %s: %w", t.URL, err)
	}
	if ts.Nonce == nil || ts.Nonce.Cmp(nonce) != 0 {
		return nil, nil, fmt.Errorf("timestamp from %s: %w: the nonce is not the request's (a replayed or forged answer)", t.URL, ErrTimestamp)
	}
	return body, st, nil
}

// VerifyTimestamp checks a stored token (a TimeStampResp, DER) against the
// signed checkpoint it stamps, and against roots when not nil.
func VerifyTimestamp(tsr, signed []byte, roots *x509.CertPool) (*Stamp, error) {
	_, st, err := checkTimestamp(tsr, signed, roots)
	return st, err
}

func checkTimestamp(tsr, signed []byte, roots *x509.CertPool) (*timestamp.Timestamp, *Stamp, error) {
	if len(tsr) > maxTimestamp {
		return nil, nil, fmt.Errorf("%w: %d bytes is not a timestamp token", ErrTimestamp, len(tsr))
	}
	// ParseResponse refuses a status other than granted and, when the
	// token carries certificates, checks its signature under the signer's.
	ts, err := timestamp.ParseResponse(tsr)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	if len(ts.Certificates) == 0 {
		return nil, nil, fmt.Errorf("%w: the token carries no TSA certificate, so its signature cannot be checked", ErrTimestamp)
	}
	sum := sha256.Sum256(signed)
	if ts.HashAlgorithm != crypto.SHA256 || !bytes.Equal(ts.HashedMessage, sum[:]) {
		return nil, nil, fmt.Errorf("%w: it stamps %s %x, not the checkpoint's SHA-256 %x (a token of another checkpoint)", ErrTimestamp, ts.HashAlgorithm, ts.HashedMessage, sum)
	}
	// The signature again, now knowing the signer, with its key usage and,
	// given roots, its chain at the token's own time (a TSA certificate
	// expired since still vouches for what it stamped while valid).
	p7, err := pkcs7.Parse(ts.RawToken)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, nil, fmt.Errorf("%w: want exactly one signer", ErrTimestamp)
	}
	if !timeStampingOnly(signer) {
		return nil, nil, fmt.Errorf("%w: the signer %q is not a time-stamping certificate (RFC 3161 section 2.3: one critical extended key usage, timeStamping)", ErrTimestamp, signer.Subject)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), CurrentTime: ts.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}
	for _, c := range p7.Certificates {
		opts.Intermediates.AddCert(c)
	}
	if err := p7.VerifyWithOpts(opts); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	st := &Stamp{Time: ts.Time, TSA: signer.Subject.String()}
	if ts.SerialNumber != nil {
		st.Serial = hex.EncodeToString(ts.SerialNumber.Bytes())
	}
	return ts, st, nil
}

// timeStampingOnly reports whether c has what RFC 3161 section 2.3 asks of a
// TSA's certificate, as OpenSSL checks it: the extended key usage extension
// critical, and timeStamping its only purpose.
func timeStampingOnly(c *x509.Certificate) bool {
	critical := false
	for _, e := range c.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 37}) {
			critical = e.Critical
		}
	}
	return critical && len(c.UnknownExtKeyUsage) == 0 && slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping})
}

// LoadRoots reads PEM certificates (a TSA's root or chain) from file.
func LoadRoots(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("TSA roots: %w", err)
	}
	pool, err := ParseRoots(b)
	if err != nil {
		return nil, fmt.Errorf("TSA roots %s: %w", file, err)
	}
	return pool, nil
}

// ParseRoots reads PEM certificates; at least one is needed.
func ParseRoots(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// TimestampName is the token file of the checkpoint of size leaves.
func TimestampName(size int64) string { return strconv.FormatInt(size, 10) + TimestampExt }

// ReadTimestamp reads the stored token of the checkpoint of size leaves
// (os.ErrNotExist when it has none).
func (l *Log) ReadTimestamp(size int64) ([]byte, error) {
	return os.ReadFile(filepath.Join(l.dir, CheckpointDir, TimestampName(size)))
}

// StampCheckpoint has the stored checkpoint of size leaves timestamped by
// tsa and stores the token beside it, in checkpoints/ and in copyDir when
// set. A token already stored that verifies is kept (the checkpoint of a
// size is signed again unchanged when the tree has not grown).
func (l *Log) StampCheckpoint(ctx context.Context, tsa *TSA, size int64, copyDir string) (*Stamp, error) {
	dir := filepath.Join(l.dir, CheckpointDir)
	signed, err := os.ReadFile(filepath.Join(dir, strconv.FormatInt(size, 10)+".txt"))
	if err != nil {
		return nil, fmt.Errorf("ledger: timestamp: %w", err)
	}
	if old, err := l.ReadTimestamp(size); err == nil {
		if st, err := VerifyTimestamp(old, signed, tsa.Roots); err == nil {
			if copyDir != "" {
				if _, err := os.Stat(filepath.Join(copyDir, TimestampName(size))); err != nil {
					if err := writeFileSync(filepath.Join(copyDir, TimestampName(size)), old); err != nil {
						return nil, err
					}
				}
			}
			return st, nil
		}
	}
	tsr, st, err := tsa.Request(ctx, signed)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, copyDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		if err := writeFileSync(filepath.Join(d, TimestampName(size)), tsr); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// checkTimestamps checks every token in dirs against the checkpoint beside
// it (`ledger verify`): each must stamp that checkpoint's bytes and verify
// (under roots when given). A token with no checkpoint beside it is
// reported too: a checkpoint was removed.
func checkTimestamps(r *Report, dirs []string, roots *x509.CertPool) error {
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && !fi.IsDir() {
			continue // one checkpoint file kept elsewhere: no tokens beside it
		}
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		for _, e := range ents {
			s, ok := strings.CutSuffix(e.Name(), TimestampExt)
			if _, err := strconv.ParseInt(s, 10, 64); !ok || err != nil {
				continue
			}
			p := filepath.Join(d, e.Name())
			tsr, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
			signed, err := os.ReadFile(filepath.Join(d, s+".txt"))
			if err != nil {
				r.add(Problem{Kind: "timestamp", What: fmt.Sprintf("%s: no checkpoint %s.txt beside it: the checkpoint it stamps was removed", p, s)})
				continue
			}
			if _, err := VerifyTimestamp(tsr, signed, roots); err != nil {
				r.add(Problem{Kind: "timestamp", What: fmt.Sprintf("%s: %v (replaced, forged or of another checkpoint)", p, err)})
				continue
			}
			r.Timestamps++
		}
	}
	return nil
}
