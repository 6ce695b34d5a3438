package main

import (
	"errors"
	"flag"

	"mailvault/indexer"
	"mailvault/service"
)

// openLocal opens the archive in data for a one-shot command with no serve
// running, and the service over it, as the operator would get from serve.
// Local searches and reads are audited like the web's.
func openLocal(e *env, data string, readOnly bool) (*service.Service, func(), error) {
	a, err := indexer.Open(data, &indexer.Options{Logger: e.log, ReadOnly: readOnly})
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
	opts := &service.Options{Logger: e.log, Users: users}
	return service.New(a, opts), func() {
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
