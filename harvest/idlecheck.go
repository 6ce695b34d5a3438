package harvest

import (
	"log/slog"
	"time"
)

// An IDLE that only polls. RFC 2177 lets a server announce new mail "as it
// arrives", and most do: Dovecot (inotify) within a second, Cyrus with
// idled at once. Some only look now and then: Courier-IMAP built without
// FAM/Gamin checks the Maildir every IMAP_IDLE_TIMEOUT (60 s by default),
// Cyrus without idled every imapidlepoll (60 s). Nothing in the protocol
// tells the two kinds apart, so the harvester finds out, per connection,
// from the mail itself:
//
//   - Until it knows, it ends IDLE every idleLearn (15 s) and looks (the
//     EXAMINE and catch-up that follow every IDLE).
//   - New mail found by such a look, after an IDLE of at least
//     idleMinJudged that announced nothing, is a strike; IDLE then ends
//     every idleCheck (2 s). Two strikes in a row: the server's IDLE polls,
//     and the connection keeps the 2 s check for its life (logged once).
//   - New mail announced by the server (EXISTS during IDLE) means its IDLE
//     is live: no extra checks from then on.
//
// One strike alone does not decide, since on a live server mail can arrive
// in the moment between the last announcement and our DONE (Dovecot waits
// 0.5 s before it announces). The cost on a live server is an EXAMINE
// every 15 s per IDLE connection until the first new mail, then nothing;
// on a polling server an EXAMINE every 2 s, against minutes of delay.
const (
	idleLearn     = 15 * time.Second
	idleCheck     = 2 * time.Second
	idleMinJudged = time.Second
)

// idleVerdict is what a connection has learned of its server's IDLE.
type idleVerdict int

const (
	idleUnknown idleVerdict = iota
	idleSuspect             // one unannounced find
	idlePolled              // two in a row: check every idleCheck
	idleLive                // the server announced new mail
)

// idleProbe is one connection's judgement; only its watch loop uses it.
type idleProbe struct {
	verdict idleVerdict
}

// limit caps an IDLE's wait by the probe's check interval.
func (p *idleProbe) limit(wait time.Duration) time.Duration {
	switch p.verdict {
	case idleUnknown:
		return min(wait, idleLearn)
	case idleSuspect, idlePolled:
		return min(wait, idleCheck)
	}
	return wait
}

// saw records the end of one IDLE: whether the server announced something,
// whether the sync after it archived new mail, and how long the IDLE ran.
func (p *idleProbe) saw(log *slog.Logger, mailbox string, announced, newMail bool, idled time.Duration) {
	if !newMail || p.verdict == idlePolled || p.verdict == idleLive {
		return
	}
	if announced {
		if p.verdict != idleLive {
			log.Debug("IDLE announces new mail: no extra checks", "mailbox", mailbox)
		}
		p.verdict = idleLive
		return
	}
	if idled < idleMinJudged {
		return
	}
	if p.verdict == idleUnknown {
		p.verdict = idleSuspect
		return
	}
	p.verdict = idlePolled
	log.Info("the server's IDLE does not announce new mail: checking every few seconds while idle",
		"mailbox", mailbox, "check", idleCheck)
}
