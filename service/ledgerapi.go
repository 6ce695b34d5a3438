package service

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"mailvault/ledger"
)

// The ledger's front door: the same calls for the CLI (locally or through
// serve's socket), the API and the status page, with the role rule and the
// audit applied here once.
//
// Who may: status, verify and prove are for those who check the archive
// (admin, auditor, legal, operator); a user may prove a message they can
// see (a custodian proving their own mail is in the record); writing a
// checkpoint on demand is for admin and the operator.

// JobLedgerVerify is the kind of ledger verification jobs.
const JobLedgerVerify JobKind = "ledger-verify"

// ActionProve and the other ledger actions, as the audit trail names them.
const (
	ActionProve            = "prove"
	ActionLedgerStatus     = "ledger-status"
	ActionLedgerVerify     = "ledger-verify"
	ActionLedgerCheckpoint = "ledger-checkpoint"
)

// LedgerStatus is the ledger as GET /api/ledger and the status page show it.
type LedgerStatus struct {
	Leaves    int64  `json:"leaves"`
	Signs     bool   `json:"signs"`
	Origin    string `json:"origin,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
	// Checkpoint is the latest signed one (size and root), if any.
	CheckpointSize int64  `json:"checkpoint_size"`
	CheckpointRoot string `json:"checkpoint_root,omitempty"`
	CopyDir        bool   `json:"copy_dir"` // checkpoints are copied to other storage
}

func checksArchive(c Caller) bool { return c.SeesAll() || c.Role == RoleLegal }

func (s *Service) ledgerOrErr() (*Ledger, error) {
	if s.opts.Ledger == nil {
		return nil, errorf(ErrNotFound, "this archive has no ledger open")
	}
	return s.opts.Ledger, nil
}

// LedgerStatus says how big the ledger is and what its latest checkpoint is.
func (s *Service) LedgerStatus(ctx context.Context, c Caller) (*LedgerStatus, error) {
	if !checksArchive(c) {
		return nil, s.refused(ctx, c, ActionLedgerStatus, errorf(ErrForbidden, "user %s (%s) may not read the ledger's status", c.Name, c.Role))
	}
	l, err := s.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, ActionLedgerStatus, ""); err != nil {
		return nil, err
	}
	return l.status()
}

func (l *Ledger) status() (*LedgerStatus, error) {
	if err := l.Log.Refresh(); err != nil {
		return nil, err
	}
	st := &LedgerStatus{Leaves: l.Log.Size(), Signs: l.Signs(), CopyDir: l.opts.CopyDir != ""}
	if vk, err := l.VerifierKey(); err == nil {
		st.PublicKey = vk
		st.Origin = l.opts.Signer.Name()
		if b, err := os.ReadFile(filepath.Join(l.Log.Dir(), ledger.Latest)); err == nil {
			if c, err := ledger.OpenCheckpoint(b, vk); err == nil {
				st.CheckpointSize, st.CheckpointRoot = c.Size, c.Root.String()
			}
		}
	}
	return st, nil
}

// Prove gives the proof bundle that message id (its sha256) is in the
// ledger. A message c may not see answers as one that does not exist.
func (s *Service) Prove(ctx context.Context, c Caller, id string) (*ledger.Bundle, error) {
	l, err := s.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, s.denied(ctx, c, ActionProve, id, err)
	}
	if err := s.audit(ctx, c, ActionProve, h.SHA256); err != nil {
		return nil, err
	}
	return l.Prove(ctx, s.a, h.SHA256)
}

// LedgerCheckpoint signs a checkpoint now.
func (s *Service) LedgerCheckpoint(ctx context.Context, c Caller) (*ledger.Checkpoint, error) {
	if !c.RunsJobs() {
		return nil, s.refused(ctx, c, ActionLedgerCheckpoint, errorf(ErrForbidden, "user %s (%s) may not write a checkpoint: an admin or the operator may", c.Name, c.Role))
	}
	l, err := s.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, ActionLedgerCheckpoint, ""); err != nil {
		return nil, err
	}
	if err := l.Follow(ctx, true); err != nil {
		return nil, err
	}
	cp, err := l.Checkpoint()
	if err != nil {
		return nil, errorf(ErrBadRequest, "%v", err)
	}
	return &cp, nil
}

// LedgerVerifyRequest is what a ledger verification checks against.
type LedgerVerifyRequest struct {
	// Key is the public key the checkpoints must verify under (the key or
	// its file's content); empty: the configured signer's.
	Key string `json:"key,omitempty"`
	// NoBlobs skips re-hashing every blob.
	NoBlobs bool `json:"no_blobs,omitempty"`
	// CopyDir is a further directory of checkpoint copies to check (the
	// configured copy_dir is always checked).
	CopyDir string `json:"copy_dir,omitempty"`
	// TSARoots (PEM) are the roots the checkpoints' RFC 3161 timestamps
	// must chain to; empty: the configured TSA's (ledger.tsa_ca_file).
	TSARoots string `json:"tsa_roots,omitempty"`
}

// LedgerVerifyReport is a ledger verification's outcome: the ledger's
// report with the blob re-hash's problems added.
type LedgerVerifyReport struct {
	*ledger.Report
	Blobs int `json:"blobs"`
}

// VerifyLedger checks the ledger now (the job's body; a one-shot command
// calls it directly).
func (s *Service) VerifyLedger(ctx context.Context, c Caller, req LedgerVerifyRequest, progress func(done, total int)) (*LedgerVerifyReport, error) {
	if !checksArchive(c) {
		return nil, s.refused(ctx, c, ActionLedgerVerify, errorf(ErrForbidden, "user %s (%s) may not verify the ledger", c.Name, c.Role))
	}
	l, err := s.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	vk := strings.TrimSpace(req.Key)
	if vk == "" {
		if vk, err = l.VerifierKey(); err != nil {
			return nil, errorf(ErrBadRequest, "ledger verify: no key given and %v", err)
		}
	}
	if vk, err = ledger.LoadVerifierKey(vk); err != nil {
		return nil, errorf(ErrBadRequest, "%v", err)
	}
	if err := s.audit(ctx, c, ActionLedgerVerify, "key "+vk); err != nil {
		return nil, err
	}
	var dirs []string
	for _, d := range []string{l.opts.CopyDir, req.CopyDir} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	roots, err := l.tsaRoots(req.TSARoots)
	if err != nil {
		return nil, errorf(ErrBadRequest, "%v", err)
	}
	rep, err := ledger.VerifyTimestamped(ctx, l.Log, l.Sources(), vk, roots, dirs...)
	if err != nil {
		return nil, err
	}
	out := &LedgerVerifyReport{Report: rep}
	if !req.NoBlobs {
		blobs, err := s.a.Verify(ctx, progress)
		if err != nil {
			return nil, err
		}
		out.Blobs = blobs.Blobs
		for _, p := range blobs.Problems {
			if strings.HasPrefix(p.Kind, "blob-") || p.Kind == "catalog-corrupt" {
				rep.Problems = append(rep.Problems, ledger.Problem{Kind: p.Kind, What: p.String()})
				rep.OK = false
			}
		}
	}
	return out, nil
}

// StartLedgerVerify runs VerifyLedger as a job (serve: the ledger is
// checked while harvest goes on; rows added meanwhile are pending).
func (s *Service) StartLedgerVerify(c Caller, req LedgerVerifyRequest) (JobInfo, error) {
	if !checksArchive(c) {
		return JobInfo{}, s.refused(context.Background(), c, ActionLedgerVerify, errorf(ErrForbidden, "user %s (%s) may not verify the ledger", c.Name, c.Role))
	}
	if _, err := s.ledgerOrErr(); err != nil {
		return JobInfo{}, err
	}
	return s.jobs.start(c, JobLedgerVerify, "the ledger against the catalog, the audit trail and the blobs", func(ctx context.Context, progress func(int, int)) (any, error) {
		return s.VerifyLedger(ctx, c, req, progress)
	})
}

// refused records a refused ledger request (as "denied", like the other
// refusals) and returns why it was refused, or the audit's error.
func (s *Service) refused(ctx context.Context, c Caller, action string, err error) error {
	if aerr := s.audit(ctx, c, ActionDenied, action); aerr != nil {
		return aerr
	}
	return err
}
