package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mailvault/export"
	"mailvault/service"
)

// runExport is `mailvault export [flags] --out DIR QUERY` and
// `mailvault export verify DIR`.
func runExport(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		return runExportVerify(ctx, e, args[1:])
	}
	var data, out, idsFile, format, dedup, encoding, prefix, after, before string
	var accounts, mailboxes stringList
	var start, width int
	var imapSyntax, zip, asJSON bool
	fs := newFlags(e, "export", &data)
	fs.StringVar(&out, "out", "", "write the export into `DIR` (must not exist, or be empty; required)")
	fs.BoolVar(&imapSyntax, "imap", false, "QUERY is IMAP SEARCH criteria, answered in each mailbox in scope")
	fs.Var(&accounts, "account", "only the custodian (account) `NAME` (repeatable)")
	fs.Var(&mailboxes, "mailbox", "only mailbox `NAME` (repeatable)")
	fs.StringVar(&after, "after", "", "only mail sent on or after `YYYY-MM-DD` (in its own zone)")
	fs.StringVar(&before, "before", "", "only mail sent before `YYYY-MM-DD`")
	fs.StringVar(&idsFile, "ids", "", "only the messages whose sha256 are listed in `FILE`, one a line (with QUERY: both)")
	fs.StringVar(&format, "format", string(export.FormatProduction), "production (natives, text, DAT/CSV/EDRM XML/OPT load files), mbox or eml")
	fs.StringVar(&dedup, "dedup", string(export.DedupNone), "none (a document per copy), global (one per message) or custodian (one per message per custodian)")
	fs.StringVar(&encoding, "encoding", string(export.EncodingUTF8BOM), "load files in utf-8 (with BOM) or windows-1252")
	fs.StringVar(&prefix, "prefix", "MV", "control number `PREFIX`")
	fs.IntVar(&start, "start", 1, "first control `NUMBER`")
	fs.IntVar(&width, "width", 8, "control number `DIGITS`")
	fs.BoolVar(&zip, "zip", false, "write DIR.zip (stored entries) instead of the directory DIR")
	fs.BoolVar(&asJSON, "json", false, "print the result (directory and manifest) as one JSON object")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if out == "" || len(words) == 0 && idsFile == "" {
		fmt.Fprintln(e.stderr, "mailvault export: --out and a QUERY (or --ids) are required")
		fs.Usage()
		return errUsage
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	req := service.ExportRequest{Dir: out, Zip: zip, Format: export.Format(format), Dedup: export.Dedup(dedup),
		Encoding: export.Encoding(encoding), Prefix: prefix, Start: start, Width: width, After: after, Before: before}
	if len(words) > 0 {
		syntax := service.SyntaxHuman
		if imapSyntax {
			syntax = service.SyntaxIMAP
		}
		req.Search = &service.SearchRequest{Query: strings.Join(words, " "), Syntax: syntax, Accounts: accounts, Mailboxes: mailboxes}
		if _, err := service.Parse(syntax, req.Search.Query); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if idsFile != "" {
		b, err := os.ReadFile(idsFile)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		req.IDs = strings.Fields(string(b))
	}
	prog := newProgress(e.stderr, "exporting")
	var res service.ExportResult
	if d, derr := dialDaemon(ctx, data); derr == nil {
		j, err := runDaemonJob(ctx, d, jobStart{Kind: service.JobExport, Export: &req}, prog)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(j.Result, &res); err != nil {
			return fmt.Errorf("export: bad result from serve: %w", err)
		}
	} else {
		svc, closeFn, err := openLocal(e, data, true)
		if err != nil {
			return err
		}
		defer closeFn()
		r, err := svc.Export(ctx, service.Operator(), req, prog.update)
		prog.done()
		if errors.Is(err, context.Canceled) {
			return &exitError{code: 130, err: errors.New("interrupted; the export is incomplete (it has no manifest and fails `mailvault export verify`): remove it and run it again")}
		}
		if err != nil {
			return cliError(err)
		}
		res = *r
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "exported to %s; check it with: mailvault export verify %s\n", res.Dir, res.Dir)
	return nil
}

// runExportVerify is `mailvault export verify DIR`: offline, no archive.
func runExportVerify(ctx context.Context, e *env, args []string) error {
	var data string
	var asJSON bool
	fs := newFlags(e, "export", &data)
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 {
		fmt.Fprintln(e.stderr, "mailvault export verify: want one DIR or DIR.zip")
		return errUsage
	}
	rep, err := export.Verify(words[0])
	if err != nil {
		return err
	}
	if asJSON {
		json.NewEncoder(e.stdout).Encode(rep)
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.stdout, p)
		}
		fmt.Fprintf(e.stdout, "%s: %d files checked, %d problems\n", words[0], rep.Files, len(rep.Problems))
	}
	if len(rep.Problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problems: the export is not what its manifest says", len(rep.Problems))}
	}
	return nil
}
