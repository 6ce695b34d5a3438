package harvest

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"time"
)

// Account is one IMAP account to harvest.
type Account struct {
	Name string // unique; used in URLs and output
	Host string
	Port int
	// TLS is "implicit" (default, port 993), "starttls" or "none" (only for
	// loopback test servers: credentials travel in clear text).
	TLS                string
	TLSCAFile          string // extra CA for the server certificate; certificates are always verified unless
	InsecureSkipVerify bool   // this is set
	Username           string
	Password           string
	// Auth is how to log in: "plain" (default: AUTHENTICATE PLAIN, with
	// SASL-IR when offered, or the LOGIN command on servers without
	// AUTH=PLAIN), "login" (the LOGIN command) or "xoauth2" (AUTHENTICATE
	// XOAUTH2 with an OAuth 2 access token).
	Auth string
	// TokenFile holds the XOAUTH2 access token. It is read at every
	// connection, so that whatever refreshes the token can rewrite it;
	// without it the token is Password.
	TokenFile string
	// Mailboxes are include patterns (path.Match syntax on the decoded name,
	// "*" for all); Exclude patterns remove from them.
	Mailboxes []string
	Exclude   []string
	// Idle names the mailbox watched with IDLE (a name or a special-use
	// attribute such as `\Sent`); the first one that exists is used. The
	// others are polled every PollInterval.
	Idle         []string
	PollInterval time.Duration
	// MaxConnections caps the connections to the account (default 1): one
	// per IDLE mailbox. Servers limit connections per user and IP (Dovecot
	// 10, Gmail 15, Exchange 16).
	MaxConnections int
}

// URL is the account's RFC 5092 base, imap://user@host[:port].
func (a *Account) URL() string {
	host := a.Host
	if a.Port != 0 && !(a.Port == 993 && a.tlsMode() == "implicit") && !(a.Port == 143 && a.tlsMode() != "implicit") {
		host = net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	}
	return (&url.URL{Scheme: "imap", User: url.User(a.Username), Host: host}).String()
}

func (a *Account) tlsMode() string {
	if a.TLS == "" {
		return "implicit"
	}
	return a.TLS
}

// Message is one message fetched from a server, with where it lives.
type Message struct {
	Account      string
	Mailbox      string
	UIDValidity  uint32
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Raw          []byte // BODY[] exactly as the server sent it
	// Gmail, on a server with X-GM-EXT-1 (gmail.go), is what it said of
	// the message. With Raw nil, the message was not downloaded: the
	// GmailSink holds it already under this X-GM-MSGID.
	Gmail *Gmail
}

// Sink is where harvested mail goes (implemented over indexer.Archive).
type Sink interface {
	// Checkpoint returns the first UID of mailbox not yet archived in the
	// epoch uidvalidity; a UIDVALIDITY the Sink has not seen starts a new
	// epoch at 1.
	Checkpoint(ctx context.Context, account, accountURL, mailbox string, uidvalidity uint32) (uint32, error)
	// Store archives msgs durably before it returns; it advances the
	// checkpoint past them. Storing a message twice changes nothing.
	Store(ctx context.Context, msgs []Message) error
	// Reconcile gives the server's current UIDs of an epoch with their
	// flags: archived copies whose UID is gone are marked expunged (never
	// removed), changed flags are updated.
	Reconcile(ctx context.Context, account, mailbox string, uidvalidity uint32, flags map[uint32][]string) error
	// Skip records that a message could not be fetched after repeated tries
	// and moves the checkpoint past it, so that one bad message never stalls
	// its mailbox. The record says what failed; nothing is silently lost.
	Skip(ctx context.Context, account, mailbox string, uidvalidity, uid uint32, reason string) error
	// MailboxesGone is told every mailbox the server LISTs (harvested or
	// not): what was archived from any other mailbox of the account is
	// gone from the server (deleted, or renamed) and is marked expunged,
	// never removed. It returns those mailboxes, with how many messages.
	MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error)
}
