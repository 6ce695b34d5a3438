package harvest

import (
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// login authenticates as the account's Auth says.
func (h *Harvester) login(c *imapclient.Client) error {
	switch h.acct.Auth {
	case "login":
		return c.Login(h.acct.Username, h.acct.Password).Wait()
	case "xoauth2":
		token := h.acct.Password
		if h.acct.TokenFile != "" {
			b, err := os.ReadFile(h.acct.TokenFile)
			if err != nil {
				return fmt.Errorf("%w: token_file: %v", ErrAuth, err)
			}
			token = strings.TrimSpace(string(b))
		}
		if !c.Caps().Has(imap.AuthCap("XOAUTH2")) {
			return fmt.Errorf("%w: the server does not offer AUTH=XOAUTH2", ErrAuth)
		}
		return c.Authenticate(&xoauth2{user: h.acct.Username, token: token})
	default:
		if c.Caps().Has(imap.AuthCap(sasl.Plain)) {
			return c.Authenticate(sasl.NewPlainClient("", h.acct.Username, h.acct.Password))
		}
		return c.Login(h.acct.Username, h.acct.Password).Wait()
	}
}

// xoauth2 is the SASL XOAUTH2 mechanism of Google and Microsoft: one
// message, "user=U^Aauth=Bearer T^A^A". A refusal comes as a challenge with
// a JSON status, which the client must answer with an empty response; the
// exchange is instead ended here with that status as the error, and the
// connection is dropped.
type xoauth2 struct{ user, token string }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: the server refused the token: %s", ErrAuth, challenge)
}
