package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"mailvault/indexer"
	"mailvault/ledger"
	"mailvault/service"
)

// The ledger's signing key is kept outside the data directory (a database
// superuser who can rewrite the catalog must not be able to sign a new
// history): $MAILVAULT_LEDGER_KEY (the key itself or a file holding it),
// else the config's ledger.key_file, else the default file `mailvault key
// init` writes, in the user's configuration directory.

// ledgerConfig is the `ledger:` section of the serve config.
type ledgerConfig struct {
	KeyFile            string `yaml:"key_file"`
	CopyDir            string `yaml:"copy_dir"`
	CheckpointEvery    int64  `yaml:"checkpoint_every"`
	CheckpointInterval string `yaml:"checkpoint_interval"`
	// TSAURL, when set, has every checkpoint timestamped (RFC 3161) by
	// that time-stamping authority; TSACAFile (PEM) holds the roots its
	// certificate must chain to, TSATimeout bounds a request (10s).
	TSAURL     string `yaml:"tsa_url"`
	TSACAFile  string `yaml:"tsa_ca_file"`
	TSATimeout string `yaml:"tsa_timeout"`
}

func defaultKeyFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "mailvault", "ledger.key")
}

// ledgerOptions finds the signing key and the rest of the ledger's options.
func ledgerOptions(lc *ledgerConfig) (service.LedgerOptions, string, error) {
	var o service.LedgerOptions
	src := ""
	switch {
	case os.Getenv("MAILVAULT_LEDGER_KEY") != "":
		src = os.Getenv("MAILVAULT_LEDGER_KEY")
	case lc != nil && lc.KeyFile != "":
		src = lc.KeyFile
	default:
		if _, err := os.Stat(defaultKeyFile()); err == nil {
			src = defaultKeyFile()
		}
	}
	if src != "" {
		s, vk, err := ledger.LoadSigner(src)
		if err != nil {
			return o, "", err
		}
		o.Signer, o.VerifierKey = s, vk
	}
	if lc != nil {
		o.CopyDir, o.Every = lc.CopyDir, lc.CheckpointEvery
		if lc.CheckpointInterval != "" {
			d, err := time.ParseDuration(lc.CheckpointInterval)
			if err != nil {
				return o, "", fmt.Errorf("ledger.checkpoint_interval: %w", err)
			}
			o.Interval = d
		}
		tsa, err := lc.tsa()
		if err != nil {
			return o, "", err
		}
		o.TSA = tsa
	}
	what := "no signing key: leaves are kept but no checkpoint is signed (mailvault key init)"
	if o.Signer != nil {
		what = "checkpoints signed by " + o.Signer.Name()
	}
	if o.TSA != nil {
		what += ", timestamped by " + o.TSA.URL
	}
	return o, what, nil
}

// tsa is the configured time-stamping authority, nil when none.
func (lc *ledgerConfig) tsa() (*ledger.TSA, error) {
	if lc.TSAURL == "" {
		if lc.TSACAFile != "" || lc.TSATimeout != "" {
			return nil, errors.New("ledger.tsa_ca_file and ledger.tsa_timeout need ledger.tsa_url (verify checks old tokens against roots with --tsa-roots)")
		}
		return nil, nil
	}
	u, err := url.Parse(lc.TSAURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ledger.tsa_url %q: want the http or https URL of an RFC 3161 time-stamping authority", lc.TSAURL)
	}
	t := &ledger.TSA{URL: lc.TSAURL}
	if lc.TSACAFile != "" {
		if t.Roots, err = ledger.LoadRoots(lc.TSACAFile); err != nil {
			return nil, fmt.Errorf("ledger.tsa_ca_file: %w", err)
		}
	}
	if lc.TSATimeout != "" {
		if t.Timeout, err = time.ParseDuration(lc.TSATimeout); err != nil || t.Timeout <= 0 {
			return nil, fmt.Errorf("ledger.tsa_timeout %q: want a duration such as 10s", lc.TSATimeout)
		}
	}
	return t, nil
}

// openLedger opens the data directory's ledger for a one-shot command.
func openLedger(ctx context.Context, a *indexer.Archive, users *service.Users, lc *ledgerConfig) (*service.Ledger, error) {
	return openLedgerNoFollow(ctx, a, users, lc, false)
}

func openLedgerNoFollow(ctx context.Context, a *indexer.Archive, users *service.Users, lc *ledgerConfig, noFollow bool) (*service.Ledger, error) {
	o, _, err := ledgerOptions(lc)
	if err != nil {
		return nil, err
	}
	o.NoFollow = noFollow
	return service.OpenLedger(ctx, a, users, o)
}

// openLedgerService opens the archive read-only, its user store and its
// ledger (appending nothing when noFollow) as a service, for the ledger
// commands run without serve.
func openLedgerService(ctx context.Context, e *env, data string, lc *ledgerConfig, noFollow bool) (*service.Service, func(), error) {
	a, err := indexer.Open(data, &indexer.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return nil, nil, err
	}
	users, err := service.OpenUsers(data)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	lg, err := openLedgerNoFollow(ctx, a, users, lc, noFollow)
	if err != nil {
		users.Close()
		a.Close()
		return nil, nil, err
	}
	svc := service.New(a, &service.Options{Logger: e.log, Users: users, Ledger: lg})
	return svc, func() { lg.Close(); users.Close(); a.Close() }, nil
}

func runKey(ctx context.Context, e *env, args []string) error {
	var data, out, name string
	var force bool
	fs := newFlags(e, "key", &data)
	fs.StringVar(&out, "out", defaultKeyFile(), "write the private key to `FILE` (0600) and the public key to FILE.pub")
	fs.StringVar(&name, "name", "", "the ledger's `NAME`, the checkpoints' origin line (default: mailvault/<host name>)")
	fs.BoolVar(&force, "force", false, "replace an existing key file (checkpoints signed by the old key then need the old public key)")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 || words[0] != "init" {
		fmt.Fprintln(e.stderr, "mailvault key: want init")
		fs.Usage()
		return errUsage
	}
	if name == "" {
		h, _ := os.Hostname()
		name = "mailvault/" + strings.Map(func(r rune) rune {
			if r <= ' ' || r == '+' || r > '~' {
				return '-'
			}
			return r
		}, h)
	}
	if _, err := os.Stat(out); err == nil && !force {
		return &exitError{code: 2, err: fmt.Errorf("key init: %s exists (--force replaces it)", out)}
	}
	skey, vkey, err := ledger.GenerateKey(name)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("key init: %w", err)}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "private key: %s (keep it off the archive's storage; back it up)\npublic key:  %s\n%s\n", out, out+".pub", vkey)
	return nil
}

func runLedger(ctx context.Context, e *env, args []string) error {
	var data, cfgPath, key, copyDir, rootsFile string
	var asJSON, noBlobs bool
	fs := newFlags(e, "ledger", &data)
	fs.StringVar(&cfgPath, "config", "", "the serve config `FILE` (its data_dir and ledger section)")
	fs.StringVar(&key, "key", "", "with verify: the public key (or a `FILE` holding it) the checkpoints must verify under; default: the configured signing key's")
	fs.StringVar(&copyDir, "copy-dir", "", "with verify: also check the checkpoints copied to `DIR`, or one checkpoint file kept elsewhere (a rollback of the ledger shows only against one); the config's ledger.copy_dir is checked anyway")
	fs.BoolVar(&noBlobs, "no-blobs", false, "with verify: do not re-hash every blob (the ledger checks only)")
	fs.StringVar(&rootsFile, "tsa-roots", "", "with verify: the PEM `FILE` of roots the checkpoints' RFC 3161 timestamps must chain to (default: the config's ledger.tsa_ca_file; none: each token's own certificate)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 || (words[0] != "verify" && words[0] != "checkpoint" && words[0] != "status") {
		fmt.Fprintln(e.stderr, "mailvault ledger: want verify, checkpoint or status")
		fs.Usage()
		return errUsage
	}
	var lc *ledgerConfig
	if cfgPath != "" {
		cfg, _, err := loadConfig(cfgPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		lc = &cfg.Ledger
		if !flagSet(fs, "data") {
			data = cfg.DataDir
		}
	}
	req := service.LedgerVerifyRequest{NoBlobs: noBlobs, CopyDir: copyDir}
	if rootsFile != "" {
		pemText, err := os.ReadFile(rootsFile)
		if err == nil {
			_, err = ledger.ParseRoots(pemText)
		}
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--tsa-roots %s: %w", rootsFile, err)}
		}
		req.TSARoots = string(pemText)
	}
	var stamp *ledger.Stamp // the local checkpoint's timestamp, or why none
	var stampErr error
	if key != "" {
		if req.Key, err = ledger.LoadVerifierKey(key); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	var st *service.LedgerStatus
	var cp *ledger.Checkpoint
	var rep *service.LedgerVerifyReport
	if d, derr := dialDaemon(ctx, data); derr == nil {
		// serve runs: it answers for its own ledger.
		switch words[0] {
		case "status":
			st = &service.LedgerStatus{}
			err = d.do(ctx, "GET", "/api/ledger", nil, nil, st)
		case "checkpoint":
			var out struct {
				Origin string `json:"origin"`
				Size   int64  `json:"size"`
				Root   string `json:"root"`
			}
			if err = d.do(ctx, "POST", "/api/ledger/checkpoint", nil, struct{}{}, &out); err == nil {
				cp = &ledger.Checkpoint{Origin: out.Origin, Size: out.Size}
				cp.Root, err = tlog.ParseHash(out.Root)
			}
		case "verify":
			prog := newProgress(e.stderr, "re-hashing blobs")
			var j service.JobInfo
			if j, err = runDaemonJob(ctx, d, jobStart{Kind: service.JobLedgerVerify, Ledger: &req}, prog); err == nil {
				rep = &service.LedgerVerifyReport{}
				if err = json.Unmarshal(j.Result, rep); err != nil {
					err = fmt.Errorf("ledger verify: bad report from serve: %w", err)
				}
			}
		}
		if err != nil {
			return cliError(err)
		}
	} else {
		// verify and status look at the ledger as it is; checkpoint first
		// appends what is not in it yet.
		svc, closeAll, err := openLedgerService(ctx, e, data, lc, words[0] != "checkpoint")
		if err != nil {
			return err
		}
		defer closeAll()
		op := service.Operator()
		switch words[0] {
		case "status":
			st, err = svc.LedgerStatus(ctx, op)
		case "checkpoint":
			// With a TSA the checkpoint is written whether or not the TSA
			// answers; what it answered is shown, not an exit code.
			if cp, err = svc.LedgerCheckpoint(ctx, op); err == nil {
				stamp, stampErr = svc.Ledger().WaitTimestamp()
			}
		case "verify":
			prog := newProgress(e.stderr, "re-hashing blobs")
			rep, err = svc.VerifyLedger(ctx, op, req, prog.update)
			prog.done()
		}
		if err != nil {
			return cliError(err)
		}
	}
	switch {
	case st != nil:
		if asJSON {
			return json.NewEncoder(e.stdout).Encode(st)
		}
		fmt.Fprintf(e.stdout, "leaves:          %d\nsigns:           %v\n", st.Leaves, st.Signs)
		if st.Signs {
			fmt.Fprintf(e.stdout, "origin:          %s\npublic key:      %s\ncheckpoint:      %d leaves, root %s\ncopied:          %v\n",
				st.Origin, st.PublicKey, st.CheckpointSize, st.CheckpointRoot, st.CopyDir)
		}
		return nil
	case cp != nil:
		if asJSON {
			out := map[string]any{"origin": cp.Origin, "size": cp.Size, "root": cp.Root}
			if stamp != nil {
				out["timestamp"] = stamp
			}
			if stampErr != nil {
				out["timestamp_error"] = stampErr.Error()
			}
			return json.NewEncoder(e.stdout).Encode(out)
		}
		fmt.Fprintf(e.stdout, "checkpoint: %s, %d leaves, root %s\n", cp.Origin, cp.Size, cp.Root)
		if stamp != nil {
			fmt.Fprintf(e.stdout, "timestamp: %s by %s\n", stamp.Time.UTC().Format(time.RFC3339), stamp.TSA)
		}
		if stampErr != nil {
			fmt.Fprintf(e.stdout, "timestamp: FAILED (the checkpoint is kept; the next one tries again): %v\n", stampErr)
		}
		return nil
	}
	if asJSON {
		json.NewEncoder(e.stdout).Encode(rep)
	} else {
		latest := "none"
		if rep.Latest != nil {
			latest = fmt.Sprintf("%d leaves, root %s", rep.Latest.Size, rep.Latest.Root)
		}
		fmt.Fprintf(e.stdout, "ledger: %d leaves; %d signed checkpoints and %d timestamps checked; latest %s\n", rep.Leaves, rep.Checkpoints, rep.Timestamps, latest)
		for _, k := range ledger.Kinds {
			if n, ok := rep.Rows[k]; ok {
				fmt.Fprintf(e.stdout, "  %-11s %d rows replayed, %d newer than the ledger\n", k, n, rep.Pending[k])
			}
		}
		if !noBlobs {
			fmt.Fprintf(e.stdout, "  blobs       %d re-hashed\n", rep.Blobs)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(e.stdout, "PROBLEM %s: %s\n", p.Kind, p.What)
		}
		if rep.OK {
			fmt.Fprintln(e.stdout, "OK: the catalog and the audit trail are what the ledger recorded")
		}
	}
	if !rep.OK {
		return &exitError{code: 1, err: fmt.Errorf("ledger verify: %d problems", len(rep.Problems))}
	}
	return nil
}

func runProve(ctx context.Context, e *env, args []string) error {
	var data, out string
	fs := newFlags(e, "prove", &data)
	fs.StringVar(&out, "out", "", "write the bundle to `FILE` (default: standard output)")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 {
		fs.Usage()
		return errUsage
	}
	id := strings.ToLower(words[0])
	var b *ledger.Bundle
	if d, derr := dialDaemon(ctx, data); derr == nil {
		b = &ledger.Bundle{}
		err = d.do(ctx, "GET", "/api/ledger/prove/"+url.PathEscape(id), nil, nil, b)
	} else {
		svc, closeAll, err := openLedgerService(ctx, e, data, nil, false)
		if err != nil {
			return err
		}
		defer closeAll()
		b, err = svc.Prove(ctx, service.Operator(), id)
		if err != nil {
			return cliError(err)
		}
	}
	if err != nil {
		return cliError(err)
	}
	raw, _ := json.MarshalIndent(b, "", "  ")
	raw = append(raw, '\n')
	if out == "" {
		_, err = e.stdout.Write(raw)
		return err
	}
	return os.WriteFile(out, raw, 0o644)
}

func runVerifyProof(ctx context.Context, e *env, args []string) error {
	var data, key, msg, rootsFile string
	var asJSON bool
	fs := newFlags(e, "verify-proof", &data)
	fs.StringVar(&key, "key", "", "the archive's public key, or a `FILE` holding it (required: get it from the archive's owner, not from the bundle)")
	fs.StringVar(&msg, "message", "", "also check that the message `FILE` (.eml) is the one the bundle proves")
	fs.StringVar(&rootsFile, "tsa-roots", "", "the PEM `FILE` of roots the bundle's RFC 3161 timestamp must chain to (without it the token is checked against its own certificate only: check who the TSA is)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 || key == "" {
		fmt.Fprintln(e.stderr, "mailvault verify-proof: want BUNDLE and --key")
		fs.Usage()
		return errUsage
	}
	vk, err := ledger.LoadVerifierKey(key)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	b, err := ledger.ReadBundle(words[0])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var roots *x509.CertPool
	if rootsFile != "" {
		if roots, err = ledger.LoadRoots(rootsFile); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	v, err := ledger.VerifyBundleTimestamp(b, vk, roots)
	if err == nil && msg != "" {
		var raw []byte
		if raw, err = os.ReadFile(msg); err == nil {
			err = v.CheckMessage(raw)
		}
	}
	if asJSON {
		res := map[string]any{"ok": err == nil}
		if err != nil {
			res["error"] = err.Error()
		} else {
			res["leaf"], res["index"], res["tree_size"], res["origin"] = v.Leaf, b.Index, v.Checkpoint.Size, v.Checkpoint.Origin
			if !v.Time.IsZero() {
				res["timestamp"], res["tsa"], res["tsa_roots_checked"] = v.Time, v.TSA, roots != nil
			}
		}
		json.NewEncoder(e.stdout).Encode(res)
	} else if err == nil {
		fmt.Fprintf(e.stdout, "OK: %s leaf %d (row %d", v.Leaf.Kind, b.Index, v.Leaf.ID)
		if v.Leaf.SHA256 != "" {
			fmt.Fprintf(e.stdout, ", sha256 %s", v.Leaf.SHA256)
		}
		fmt.Fprintf(e.stdout, ") is in the ledger %s of %d leaves, signed by its key\n", v.Checkpoint.Origin, v.Checkpoint.Size)
		switch {
		case v.Time.IsZero():
			fmt.Fprintln(e.stdout, "no timestamp: the bundle's checkpoint was not timestamped by a TSA")
		case roots != nil:
			fmt.Fprintf(e.stdout, "timestamped: %s by %s (chains to --tsa-roots)\n", v.Time.UTC().Format(time.RFC3339), v.TSA)
		default:
			fmt.Fprintf(e.stdout, "timestamped: %s by %s (against its own certificate only: --tsa-roots checks who that is)\n", v.Time.UTC().Format(time.RFC3339), v.TSA)
		}
	}
	if err != nil {
		if !asJSON {
			fmt.Fprintln(e.stdout, "FAILED:", err)
		}
		if errors.Is(err, ledger.ErrProof) {
			return &exitError{code: 1, err: err}
		}
		return err
	}
	return nil
}
