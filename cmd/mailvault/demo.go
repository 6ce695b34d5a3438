package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"mailvault/harvest"
	"mailvault/harvest/memtest"
	"mailvault/web"
)

// demoMarker marks a data directory as the demo's, which the demo may wipe.
const demoMarker = ".mailvault-demo"

// Demo logins, printed at start.
const (
	demoAdmin    = "demo"
	demoPassword = "demo-password"
)

// runDemo is `mailvault demo`: nothing to configure. It starts an in-process
// IMAP server with three accounts and a few hundred messages, harvests them
// with the real harvester over loopback into a fresh archive, serves the web
// UI, and delivers a new message every few seconds.
func runDemo(ctx context.Context, e *env, args []string) error {
	var data, listen string
	var every time.Duration
	var seed int
	fs := newFlags(e, "demo", &data)
	fs.StringVar(&listen, "listen", "127.0.0.1:8080", "web UI `ADDRESS`")
	fs.DurationVar(&every, "every", 5*time.Second, "deliver a new message this often (0: never)")
	fs.IntVar(&seed, "messages", 300, "`N` messages to start with")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if !flagSet(fs, "data") {
		data = "./mailvault-demo"
	}
	if err := freshDemoDir(data); err != nil {
		return &exitError{code: 2, err: err}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	mem := imapmemserver.New()
	names := []string{"alice", "bob", "carol"}
	for _, n := range names {
		u := imapmemserver.NewUser(n, "demo-"+n)
		for _, mb := range []string{"INBOX", "Sent", "Archive"} {
			u.Create(mb, nil)
		}
		mem.AddUser(u)
	}
	addr, stopIMAP, err := memtest.Serve(mem)
	if err != nil {
		return err
	}
	defer stopIMAP()

	gen := newDemoMail(1)
	fmt.Fprintf(e.stderr, "demo: filling an in-process IMAP server with %d messages...\n", seed)
	for i := range seed {
		n := names[i%len(names)]
		mb := []string{"INBOX", "INBOX", "Archive", "Sent"}[gen.rng.IntN(4)]
		if err := demoAppend(addr.String(), n, mb, gen.message(n, gen.date(i, seed))); err != nil {
			return fmt.Errorf("demo IMAP server: %w", err)
		}
	}

	users, err := web.OpenUsers(data)
	if err != nil {
		return err
	}
	for _, u := range []web.User{{Name: demoAdmin, Role: web.RoleAdmin}, {Name: "alice", Role: web.RoleUser, Accounts: []string{"alice"}}} {
		if err := users.Add(ctx, u, demoPassword); err != nil {
			users.Close()
			return err
		}
	}
	users.Close()

	var accounts []harvest.Account
	for _, n := range names {
		accounts = append(accounts, harvest.Account{Name: n, Host: "127.0.0.1", Port: addr.Port, TLS: "none",
			Username: n, Password: "demo-" + n, Idle: []string{"INBOX"}, PollInterval: 10 * time.Second, MaxConnections: 1})
	}
	if every > 0 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(every):
				}
				n := names[gen.rng.IntN(len(names))]
				if err := demoAppend(addr.String(), n, "INBOX", gen.message(n, time.Now())); err == nil {
					fmt.Fprintf(e.stderr, "demo: delivered a new message to %s's INBOX; it is searchable within a second\n", n)
				}
			}
		}()
	}
	cfg := &config{DataDir: data, WebListen: listen}
	return serveArchive(ctx, data, cfg, accounts, log, func(webAddr string) {
		fmt.Fprintf(e.stdout, "\nmailvault demo: http://%s/\n  log in as %s / %s (admin: every account)\n  or as alice / %s (a user: only account alice)\n"+
			"  IMAP server (in process): 127.0.0.1:%d, users alice, bob, carol\n  a new message arrives every %v; Ctrl-C stops (data in %s)\n\n",
			webAddr, demoAdmin, demoPassword, demoPassword, addr.Port, every, data)
	})
}

// freshDemoDir empties dir when it is a demo directory from an earlier run,
// and refuses to touch a directory that is not the demo's.
func freshDemoDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, demoMarker)); err != nil {
			return fmt.Errorf("demo: %s exists and is not a demo directory; give another with --data", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, demoMarker), []byte("made by mailvault demo; the next demo run wipes this directory\n"), 0o640)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func demoAppend(addr, user, mailbox string, raw []byte) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, "demo-"+user).Wait(); err != nil {
		return err
	}
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	cmd.Write(raw)
	cmd.Close()
	_, err = cmd.Wait()
	return err
}

// demoMail writes plausible business mail, deterministically.
type demoMail struct {
	rng  *rand.Rand
	n    int
	sent []string // Message-IDs, for replies
}

func newDemoMail(seed uint64) *demoMail {
	return &demoMail{rng: rand.New(rand.NewPCG(seed, 7))}
}

var (
	demoPeople = []string{"Alice Martin <alice@example.com>", "Bob Chen <bob@example.com>", "Carol Díaz <carol@example.com>",
		"Dmitri Volkov <dmitri@partner.example>", "Emma Schulz <emma@supplier.example>", "Farid Haddad <farid@example.org>",
		"Grace Kim <grace@lawfirm.example>", "Hugo Lefèvre <hugo@example.fr>", "Ines Costa <ines@example.pt>", "Jun Tanaka <jun@example.jp>"}
	demoTopics = []string{"Quarterly report Q%d", "Invoice #%d", "Project Falcon: status week %d", "Contract renewal %d",
		"Board meeting agenda (item %d)", "Travel booking ref %d", "Security review finding %d", "Budget 20%d draft",
		"Customer escalation case %d", "Offsite planning, day %d"}
	demoSentences = []string{"Please find the figures attached and let me know if anything looks off.",
		"The supplier confirmed delivery for next Tuesday, pending the signed purchase order.",
		"Legal asked us to keep all correspondence on this matter until further notice.",
		"I moved the meeting to Thursday at 10:00; the conference room is booked.",
		"Revenue is up 4% on last quarter, mostly from the new subscription tier.",
		"Can you review the draft contract before Friday? Clause 7 needs your attention.",
		"The audit team will need read access to the archive for the period under review.",
		"Thanks for the quick turnaround, the customer was happy with the resolution.",
		"Reminder: expense reports for March are due by the end of the week.",
		"We found two servers with outdated certificates; renewal is scheduled."}
)

func (g *demoMail) date(i, n int) time.Time {
	start := time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC)
	return start.Add(time.Duration(i) * 700 * 24 * time.Hour / time.Duration(max(n, 1))).Add(time.Duration(g.rng.IntN(8*3600)) * time.Second)
}

func (g *demoMail) message(owner string, date time.Time) []byte {
	g.n++
	r := g.rng
	from := demoPeople[r.IntN(len(demoPeople))]
	to := fmt.Sprintf("%s <%s@example.com>", strings.ToUpper(owner[:1])+owner[1:], owner)
	subject := fmt.Sprintf(demoTopics[r.IntN(len(demoTopics))], 1+r.IntN(40))
	id := fmt.Sprintf("<demo.%d.%d@example.com>", g.n, r.IntN(1e6))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", from, to)
	if len(g.sent) > 0 && r.IntN(4) == 0 {
		parent := g.sent[r.IntN(len(g.sent))]
		subject = "Re: " + subject
		fmt.Fprintf(&b, "In-Reply-To: %s\r\nReferences: %s\r\n", parent, parent)
	}
	g.sent = append(g.sent, id)
	fmt.Fprintf(&b, "Subject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n", subject, date.Format(time.RFC1123Z), id)
	var text strings.Builder
	fmt.Fprintf(&text, "Hello %s,\r\n\r\n", strings.ToUpper(owner[:1])+owner[1:])
	for range 2 + r.IntN(4) {
		text.WriteString(demoSentences[r.IntN(len(demoSentences))] + "\r\n")
	}
	text.WriteString("\r\nBest regards,\r\n" + strings.Split(from, " <")[0] + "\r\n")
	if r.IntN(5) == 0 {
		csv := fmt.Sprintf("item,amount\r\nlicences,%d\r\nservices,%d\r\n", 1000+r.IntN(9000), 500+r.IntN(5000))
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"+
			"--b%d\r\nContent-Type: text/csv; name=\"figures-%d.csv\"\r\nContent-Disposition: attachment; filename=\"figures-%d.csv\"\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b%d--\r\n", g.n, g.n, text.String(), g.n, g.n, g.n,
			base64.StdEncoding.EncodeToString([]byte(csv)), g.n)
		return b.Bytes()
	}
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s", text.String())
	return b.Bytes()
}
