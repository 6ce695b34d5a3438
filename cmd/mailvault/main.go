// Command mailvault archives mail and searches the archive.
//
// Every command takes --data DIR, the data directory: the blob store, the
// catalog and the index. Its default is $MAILVAULT_DATA, or ./mailvault-data
// when that is not set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // usage line after the name
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// commands is filled in init: the commands' run functions refer back to it
// (for their usage text), which a plain initializer would make a cycle.
var commands []command

func init() {
	commands = []command{
		{"demo", "[--listen ADDRESS] [--every 5s]", "try mailvault with nothing to configure: an IMAP server, mail arriving, the web UI", runDemo},
		{"serve", "[--config FILE]", "harvest the configured IMAP accounts into the archive and serve it (web UI, API, and the read-only IMAP view with an imap: section); without --config, serve the archive alone", runServe},
		{"import", "--account NAME [--mailbox NAME] PATH...", "archive mail from Maildir, mbox, .eml/.emlx, Gmail Takeout and PST files", runImport},
		{"search", "[--account NAME] [--mailbox NAME] [--limit N] [--json] [--imap] QUERY", "search the archive", runSearch},
		{"status", "[--json] [--config FILE] [--check [--out FILE]]", "show every archived mailbox: messages, parse errors, indexing, harvest state; --check: a gap check of the configured accounts now, with a completeness report", runStatus},
		{"verify", "[--json]", "re-hash every blob and check that store, catalog and index agree (online while serve runs)", runVerify},
		{"reindex", "", "rebuild the search index from the store and catalog (online while serve runs)", runReindex},
		{"store", "init [--layout pack|files] | migrate --to pack|files [--keep-old] | compact [--json]", "the store of record's layout: create an archive with pack segments, move an archive between one file per blob and pack segments (resumable, every blob verified), reclaim deleted blobs' bytes; serve must be stopped", runStore},
		{"recover", "[--json]", "catalog the mail verify reports as blob-unreferenced (lost by the catalog) in _recovered/lost+found; serve must be stopped", runRecover},
		{"jobs", "[--json] [--cancel ID]", "list the long jobs (import, verify, reindex, export) of the running serve", runJobs},
		{"export", "--out DIR [--format production|mbox|eml] [--dedup none|global|custodian] QUERY | verify DIR", "write an eDiscovery production (natives, text, load files, manifest) of a search, or verify one offline", runExport},
		{"key", "init [--out FILE] [--name NAME]", "make the Ed25519 key that signs the ledger's checkpoints (kept outside the data directory)", runKey},
		{"ledger", "verify|checkpoint|status [--key PUB] [--json]", "check the tamper-evident ledger against the catalog, the audit trail and the blobs; sign a checkpoint; show it", runLedger},
		{"prove", "SHA256 [--out FILE]", "write a proof bundle that the message is in the archive's ledger (checked offline by verify-proof)", runProve},
		{"verify-proof", "BUNDLE --key PUB [--message FILE] [--tsa-roots PEM]", "check a proof bundle offline, with no archive: signature, inclusion, its RFC 3161 timestamp when it has one, and optionally the message itself", runVerifyProof},
		{"hold", "create|list|show|release [NAME] [--name N --custodian A... [--query Q]] [--reason R] [--json]", "legal holds: keep the mail of custodians (optionally what a query matches) from any deletion, until released", runHold},
		{"retention", "plan|list|show ID|approve ID|apply [--plan ID]|worm on|off|status [--reason R] [--config FILE] [--json]", "plan what retention policies delete (and what holds keep), approve a plan (four eyes), apply it; the archive's WORM switch", runRetention},
		{"erase", "SHA256 --reason R [--config FILE] [--json]", "delete one message for a legal erasure request (refused under a hold or in WORM mode), leaving its tombstone", runErase},
		{"journal", "coverage [--account A] [--config FILE] [--json]", "per account, the mail only the journal saw, only the mailbox holds, and both (journal and mailbox linked by Message-ID and normalised content)", runJournal},
		{"audit", "[--user U] [--action A] [--since T] [--until T] [--limit N] [--before ID] [--json|--csv]", "read the audit trail: who did what, when, from where (filtered, newest first)", runAudit},
		{"user", "add|passwd|remove|token NAME [--role R] [--account A]... [--expires D] | tokens [NAME] | revoke ID | list | audit", "manage who may use the web UI, the API and the IMAP view, their API tokens, and read the audit trail", runUser},
	}
}

// env is what every command shares: where output goes and how to log.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

// exitError carries a process exit code through a command's error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errUsage means the command line was wrong; the flag set printed why.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal forces exit.
		<-ctx.Done()
		stop()
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		<-c
		fmt.Fprintln(os.Stderr, "mailvault: second signal, exiting now")
		os.Exit(130)
	}()
	e := &env{stdout: os.Stdout, stderr: os.Stderr}
	// MAILVAULT_CPUPROFILE=FILE writes a CPU profile of the command, for
	// performance work (go tool pprof FILE).
	if path := os.Getenv("MAILVAULT_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			code := run(ctx, e, os.Args[1:])
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	code := run(ctx, e, os.Args[1:])
	// MAILVAULT_MEMPROFILE=FILE writes a heap profile (with allocation totals) at exit.
	if path := os.Getenv("MAILVAULT_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// Help that was asked for goes to stdout with exit 0 (so that
	// `mailvault search --help | less` works); a wrong command line gets
	// the usage on stderr with exit 2.
	switch {
	case len(args) == 0:
		usage(e.stderr)
		return 2
	case args[0] == "help" && len(args) > 1 && args[1] != "help":
		// mailvault help COMMAND is mailvault COMMAND --help.
		return run(ctx, e, []string{args[1], "--help"})
	case args[0] == "help" || helpAsked(args[:1]):
		usage(e.stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		ce := e
		if helpAsked(args[1:]) {
			// The flag set prints its usage to the command's stderr;
			// the log stays on the real one.
			h := *e
			h.stderr = e.stdout
			ce = &h
		}
		err := c.run(ctx, ce, args[1:])
		var ee *exitError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case errors.As(err, &ee):
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintf(e.stderr, "mailvault %s: %v\n", c.name, ee.err)
			}
			return ee.code
		default:
			fmt.Fprintf(e.stderr, "mailvault %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "mailvault: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "mailvault archives mail byte-exact and makes it searchable.\n\nUsage:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  mailvault %-*s %s\n", width, c.name, c.args)
	}
	fmt.Fprintf(w, "\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "\nEvery command takes --data DIR (default $MAILVAULT_DATA, else ./mailvault-data)\nand --help. Run `mailvault COMMAND --help` for its flags.\n")
}

// newFlags returns a flag set for a command with the common --data flag.
func newFlags(e *env, name string, data *string) *flag.FlagSet {
	var c command
	for _, cc := range commands {
		if cc.name == name {
			c = cc
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	def := os.Getenv("MAILVAULT_DATA")
	if def == "" {
		def = "./mailvault-data"
	}
	fs.StringVar(data, "data", def, "data `DIR`: blob store, catalog and index ($MAILVAULT_DATA)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mailvault %s %s\n\n%s.\n\nFlags:\n", name, c.args, upperFirst(c.summary))
		fs.PrintDefaults()
		if h, ok := helpText[name]; ok {
			fmt.Fprintf(w, "\n%s", h)
		}
	}
	return fs
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parse parses args, flags and positional arguments in any order, and returns
// the positional ones. Everything after "--" is positional, so a query that
// starts with "-" (a negation) goes after it. Flag errors become errUsage.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		// The flag package swallows a "--" that ends the flags: everything
		// after it is positional, even words that start with "-".
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
