package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"mailvault/indexer"
	"mailvault/service"
)

// openLocal opens the archive in data for a one-shot command with no serve
// running, and the service over it, as the operator would get from serve.
// Local searches and reads are audited like the web's.
func openLocal(e *env, data string, readOnly bool) (*service.Service, func(), error) {
	return openLocalWith(e, data, indexer.Options{ReadOnly: readOnly})
}

// openLocalWith is openLocal with the archive's options o (its Logger is
// the command's).
func openLocalWith(e *env, data string, o indexer.Options) (*service.Service, func(), error) {
	return openLocalService(e, data, o, service.Options{})
}

// openLocalService is openLocalWith with the service's options so (its
// Logger, Users and Ledger are the command's): a check of the configured
// accounts passes them and their harvest options.
func openLocalService(e *env, data string, o indexer.Options, so service.Options) (*service.Service, func(), error) {
	readOnly := o.ReadOnly
	o.Logger = e.log
	a, err := indexer.Open(data, &o)
	if err != nil {
		return nil, nil, err
	}
	// The user store holds the audit trail: what the operator searches and
	// reads from the CLI is recorded like what the web's users do.
	users, err := service.OpenUsers(data)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	// The ledger follows what this command adds (and what it audits); a
	// read-only command whose data directory cannot take the ledger's
	// writes still runs, without it, and says so.
	lg, err := openLedger(context.Background(), a, users, nil)
	if err != nil {
		if !readOnly {
			users.Close()
			a.Close()
			return nil, nil, err
		}
		e.log.Warn("ledger not opened", "err", err)
	}
	so.Logger, so.Users, so.Ledger = e.log, users, lg
	return service.New(a, &so), func() {
		if lg != nil {
			if err := lg.Settle(context.Background()); err != nil {
				e.log.Error("ledger", "err", err)
			}
			lg.Close()
		}
		users.Close()
		a.Close()
	}, nil
}

// dataDir is the data directory of a command: --data when given, else the
// data_dir of --config when given, else --data's default.
func dataDir(fs *flag.FlagSet, data, cfgPath string) (string, error) {
	if cfgPath == "" || flagSet(fs, "data") {
		return data, nil
	}
	cfg, _, err := loadConfig(cfgPath)
	if err != nil {
		return "", &exitError{code: 2, err: err}
	}
	return cfg.DataDir, nil
}

// cliError gives a service error its exit code: 2 for what the caller must
// change (a bad query, no such account), 1 for the rest.
func cliError(err error) error {
	if errors.Is(err, service.ErrBadRequest) || errors.Is(err, service.ErrNotFound) || errors.Is(err, service.ErrForbidden) {
		return &exitError{code: 2, err: err}
	}
	return err
}

// auditLocal records what a one-shot command that opens the archive itself
// (verify, reindex, recover) is about to do, in the data directory's audit
// trail (users.db, made when it is not there yet: users or none, the
// trail is kept), as the operator: "operator:" and the OS user. It fails
// closed: when the row cannot be written the command does not run.
func auditLocal(ctx context.Context, data, action, detail string) error {
	users, err := service.OpenUsers(data)
	if err != nil {
		return fmt.Errorf("the audit trail cannot be opened, so %s does not run: %w", action, err)
	}
	defer users.Close()
	c := service.Operator()
	if err := users.Audit(ctx, service.AuditEntry{User: c.Name, Action: action, Detail: detail, Remote: c.Remote}); err != nil {
		return fmt.Errorf("the audit trail cannot be written, so %s does not run: %w", action, err)
	}
	return nil
}
