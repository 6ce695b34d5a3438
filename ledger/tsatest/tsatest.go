// Package tsatest runs an RFC 3161 time-stamping authority in the test
// process, on loopback (httptest), for the ledger's timestamp tests: a
// self-signed TSA certificate with the timeStamping extended key usage, made
// fresh for each TSA, and answers built by github.com/digitorus/timestamp.
// It can be told to lie, to show each lie is caught.
package tsatest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
)

// Lie is how the TSA misbehaves.
type Lie int

const (
	Honest       Lie = iota
	WrongNonce       // answers with another nonce (a replayed answer)
	WrongImprint     // stamps other bytes than asked
	WrongKey         // signs with a key that is not its certificate's
	Reject           // answers status rejection
	Garbage          // answers bytes that are not a TimeStampResp
)

// TSA is a time-stamping authority on loopback.
type TSA struct {
	URL      string
	Cert     *x509.Certificate
	Roots    *x509.CertPool // the certificate itself, as the trusted root
	RootsPEM []byte
	// Time is the time the TSA stamps (fixed, so tests can check it).
	Time time.Time
	// Delay, when set, holds each answer that long (a TSA that hangs).
	Delay time.Duration
	// Requests counts the requests answered.
	Requests atomic.Int64

	key, other crypto.Signer
	mu         sync.Mutex
	lie        Lie
	srv        *httptest.Server
}

// New starts a TSA; it is closed when the test ends.
func New(t testing.TB) *TSA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	// RFC 3161 section 2.3: the TSA's certificate has one extended key
	// usage, timeStamping, in a critical extension (Go writes the field
	// ExtKeyUsage non-critical, which OpenSSL refuses).
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "mailvault test TSA", Organization: []string{"tsatest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature, // a TSA's only use (OpenSSL checks it too)
		ExtraExtensions:       []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	s := &TSA{Cert: cert, Roots: x509.NewCertPool(), RootsPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Time: now.Add(-time.Minute), key: key, other: other}
	s.Roots.AddCert(cert)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// SetLie makes the TSA answer the next requests with lie.
func (s *TSA) SetLie(lie Lie) {
	s.mu.Lock()
	s.lie = lie
	s.mu.Unlock()
}

// Close stops the TSA: requests then fail (a TSA that is down).
func (s *TSA) Close() { s.srv.Close() }

func (s *TSA) serve(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-r.Context().Done():
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
		http.Error(w, "want a POSTed application/timestamp-query", http.StatusBadRequest)
		return
	}
	req, err := timestamp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	lie := s.lie
	s.mu.Unlock()
	ts := timestamp.Timestamp{HashAlgorithm: req.HashAlgorithm, HashedMessage: req.HashedMessage, Time: s.Time,
		Nonce: req.Nonce, Policy: []int{1, 3, 6, 1, 4, 1, 99999, 1}, AddTSACertificate: req.Certificates, Accuracy: time.Second}
	signer := s.key
	var resp []byte
	switch lie {
	case WrongNonce:
		ts.Nonce = new(big.Int).Add(req.Nonce, big.NewInt(1))
	case WrongImprint:
		h := append([]byte(nil), req.HashedMessage...)
		h[0] ^= 1
		ts.HashedMessage = h
	case WrongKey:
		signer = s.other
	case Reject:
		resp, err = timestamp.CreateErrorResponse(timestamp.Rejection, timestamp.SystemFailure)
	case Garbage:
		resp = []byte("not a timestamp")
	}
	if resp == nil && err == nil {
		resp, err = ts.CreateResponseWithOpts(s.Cert, signer, crypto.SHA256)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Write(resp)
}

// Ask sends a TimeStampReq over SHA-256 of data (with a nonce, asking for
// the certificate) to url and returns the answer's bytes unchecked: for
// tests that need a lying TSA's token as it came.
func Ask(url string, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	req, err := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: sum[:], Certificates: true, Nonce: big.NewInt(42)}).Marshal()
	if err != nil {
		return nil, err
	}
	resp, err := http.Post(url, "application/timestamp-query", bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("TSA: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}
