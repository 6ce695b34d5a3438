package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"html"
	"log/slog"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"mailvault/harvest"
	"mailvault/harvest/memtest"
	"mailvault/ledger"
	"mailvault/service"
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

	users, err := service.OpenUsers(data)
	if err != nil {
		return err
	}
	for _, u := range []service.User{{Name: demoAdmin, Role: service.RoleAdmin}, {Name: "alice", Role: service.RoleUser, Accounts: []string{"alice"}}} {
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
	// The archive over IMAP too, read-only, on a free loopback port (plain
	// IMAP: loopback only, as serve allows it).
	imapAddr, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	cfg.IMAP.Listen = imapAddr
	// The demo signs its ledger's checkpoints with a key of its own, beside
	// (not in) its data directory, made the first time.
	cfg.Ledger.KeyFile = filepath.Clean(data) + ".ledger.key"
	if _, err := os.Stat(cfg.Ledger.KeyFile); err != nil {
		skey, vkey, err := ledger.GenerateKey("mailvault/demo")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.Ledger.KeyFile, []byte(skey+"\n"), 0o600); err != nil {
			return err
		}
		os.WriteFile(cfg.Ledger.KeyFile+".pub", []byte(vkey+"\n"), 0o644)
	}
	return serveArchive(ctx, cfg, accounts, log, func(webAddr string) {
		fmt.Fprintf(e.stdout, "\nmailvault demo: http://%s/\n  log in as %s / %s (admin: every account)\n  or as alice / %s (a user: only account alice)\n"+
			"  IMAP server (in process): 127.0.0.1:%d, users alice, bob, carol\n"+
			"  the archive over IMAP, read-only: %s, the same users (mbsync, Thunderbird; docs/imap.md)\n"+
			"  a new message arrives every %v; Ctrl-C stops (data in %s)\n"+
			"  the other way in, while this runs: mailvault import --data %s --account NAME ~/Maildir\n\n",
			webAddr, demoAdmin, demoPassword, demoPassword, addr.Port, imapAddr, every, data, data)
	})
}

// freeLoopbackPort returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
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

// demoMail writes plausible business mail, deterministically from its seed:
// plain text, multipart/alternative (text and HTML) and HTML-only messages,
// some with a CSV attachment, and replies in threads.
type demoMail struct {
	rng  *rand.Rand
	n    int
	sent []demoSent // every message written, for replies
}

// demoSent is what a reply needs of a message written earlier.
type demoSent struct {
	owner      string // whose mailbox it went to
	id         string // Message-ID, with the angle brackets
	subject    string
	references string // its References, for a reply's
}

func newDemoMail(seed uint64) *demoMail {
	return &demoMail{rng: rand.New(rand.NewPCG(seed, 7))}
}

// demoPerson is a correspondent, in their own time zone.
type demoPerson struct {
	name, addr string
	zone       *time.Location
}

var (
	demoPeople = []demoPerson{
		{"Alice Martin", "alice@example.com", time.FixedZone("CET", 1*3600)},
		{"Bob Chen", "bob@example.com", time.FixedZone("EST", -5*3600)},
		{"Carol Díaz", "carol@example.com", time.FixedZone("CET", 1*3600)},
		{"Dmitri Volkov", "dmitri@partner.example", time.FixedZone("MSK", 3*3600)},
		{"Emma Schulz", "emma@supplier.example", time.FixedZone("CET", 1*3600)},
		{"Farid Haddad", "farid@example.org", time.FixedZone("GST", 4*3600)},
		{"Grace Kim", "grace@lawfirm.example", time.FixedZone("PST", -8*3600)},
		{"Hugo Lefèvre", "hugo@example.fr", time.FixedZone("CET", 1*3600)},
		{"Ines Costa", "ines@example.pt", time.UTC},
		{"Jun Tanaka", "jun@example.jp", time.FixedZone("JST", 9*3600)},
	}
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
	demoReplies = []string{"Thanks, that works for me.", "Agreed. I will update the document and circulate it.",
		"Could we discuss this on our call tomorrow?", "I checked with finance: the numbers match.",
		"Noted, I have forwarded this to the team.", "One question before I sign off: is the deadline firm?"}
)

// The seeded mail is spread over demoSpan from demoStart.
var (
	demoStart = time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC)
	demoSpan  = 700 * 24 * time.Hour
)

// date is the date of the i-th of n seeded messages: evenly spread over
// [demoStart, demoStart+demoSpan), each a random time within its share of
// the span (at most 8 hours in), so the dates increase with i.
func (g *demoMail) date(i, n int) time.Time {
	n = max(n, 1)
	i = min(max(i, 0), n-1)
	step := demoSpan / time.Duration(n) // no overflow: i*step < demoSpan
	jitter := min(8*time.Hour, step)
	t := demoStart.Add(time.Duration(i) * step)
	if jitter >= time.Second {
		t = t.Add(time.Duration(g.rng.Int64N(int64(jitter/time.Second))) * time.Second)
	}
	return t
}

// message writes one message for owner's mailbox, dated date: a new subject
// or, one time in three once there is mail, a reply to an earlier message
// (Re: its subject, In-Reply-To and References).
func (g *demoMail) message(owner string, date time.Time) []byte {
	g.n++
	r := g.rng
	ownerName := strings.ToUpper(owner[:1]) + owner[1:]
	from := demoPeople[r.IntN(len(demoPeople))]
	to := mail.Address{Name: ownerName, Address: owner + "@example.com"}
	subject := fmt.Sprintf(demoTopics[r.IntN(len(demoTopics))], 1+r.IntN(40))
	id := fmt.Sprintf("<demo.%d.%d@example.com>", g.n, r.IntN(1e6))
	var parent *demoSent
	if len(g.sent) > 0 && r.IntN(3) == 0 {
		parent = g.replyParent(owner)
	}

	var h bytes.Buffer
	fmt.Fprintf(&h, "From: %s\r\nTo: %s\r\n", (&mail.Address{Name: from.name, Address: from.addr}).String(), to.String())
	refs := ""
	if parent != nil {
		// One "Re: " however deep the thread, as mail clients do.
		subject = "Re: " + strings.TrimPrefix(parent.subject, "Re: ")
		refs = strings.TrimSpace(parent.references + " " + parent.id)
		fmt.Fprintf(&h, "In-Reply-To: %s\r\nReferences: %s\r\n", parent.id, refs)
	}
	g.sent = append(g.sent, demoSent{owner: owner, id: id, subject: subject, references: refs})
	fmt.Fprintf(&h, "Subject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n",
		mime.QEncoding.Encode("utf-8", subject), date.In(from.zone).Format(time.RFC1123Z), id)

	// The body, as paragraphs.
	paras := []string{"Hello " + ownerName + ","}
	if parent != nil {
		paras = append(paras, demoReplies[r.IntN(len(demoReplies))])
	}
	var body []string
	for range 2 + r.IntN(4) {
		body = append(body, demoSentences[r.IntN(len(demoSentences))])
	}
	paras = append(paras, strings.Join(body, " "), "Best regards,\n"+from.name)

	// 60% plain text, 30% text and HTML, 10% HTML only; one in five of
	// them with an attachment.
	var part []byte
	switch k := r.IntN(10); {
	case k < 6:
		part = demoTextPart(paras)
	case k < 9:
		part = demoAlternative(fmt.Sprintf("alt%d", g.n), demoTextPart(paras), demoHTMLPart(subject, paras))
	default:
		part = demoHTMLPart(subject, paras)
	}
	if r.IntN(5) == 0 {
		csv := fmt.Sprintf("item,amount\r\nlicences,%d\r\nservices,%d\r\n", 1000+r.IntN(9000), 500+r.IntN(5000))
		boundary := fmt.Sprintf("mix%d", g.n)
		var m bytes.Buffer
		fmt.Fprintf(&m, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary)
		m.Write(part)
		fmt.Fprintf(&m, "\r\n--%s\r\nContent-Type: text/csv; name=\"figures-%d.csv\"\r\nContent-Disposition: attachment; filename=\"figures-%d.csv\"\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--%s--\r\n", boundary, g.n, g.n, base64.StdEncoding.EncodeToString([]byte(csv)), boundary)
		part = m.Bytes()
	}
	h.Write(part)
	return h.Bytes()
}

// replyParent picks the message a reply answers: a recent one in owner's
// mailbox when there is one, else any recent one.
func (g *demoMail) replyParent(owner string) *demoSent {
	var mine []int
	for i := len(g.sent) - 1; i >= 0 && len(mine) < 20; i-- {
		if g.sent[i].owner == owner {
			mine = append(mine, i)
		}
	}
	if len(mine) == 0 {
		return &g.sent[max(0, len(g.sent)-1-g.rng.IntN(min(20, len(g.sent))))]
	}
	return &g.sent[mine[g.rng.IntN(len(mine))]]
}

// demoTextPart is a text/plain part (headers and body) of paragraphs, in
// quoted-printable (the names have accents).
func demoTextPart(paras []string) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(strings.ReplaceAll(strings.Join(paras, "\n\n"), "\n", "\r\n") + "\r\n"))
	w.Close()
	return b.Bytes()
}

// demoHTMLPart is a text/html part of the same paragraphs, as a mail
// client writes it.
func demoHTMLPart(title string, paras []string) []byte {
	var doc strings.Builder
	fmt.Fprintf(&doc, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n<body style=\"font-family: Arial, sans-serif\">\n", html.EscapeString(title))
	for _, p := range paras {
		fmt.Fprintf(&doc, "<p>%s</p>\n", strings.ReplaceAll(html.EscapeString(p), "\n", "<br>"))
	}
	doc.WriteString("</body></html>\n")
	var b bytes.Buffer
	b.WriteString("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(strings.ReplaceAll(doc.String(), "\n", "\r\n")))
	w.Close()
	return b.Bytes()
}

// demoAlternative is a multipart/alternative part of a text and an HTML part.
func demoAlternative(boundary string, text, html []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary)
	b.Write(text)
	fmt.Fprintf(&b, "\r\n--%s\r\n", boundary)
	b.Write(html)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}
