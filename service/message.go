package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mailvault/indexer"
)

// Message returns the message whose sha256 is id if c may see it (some
// occurrence in c's accounts), with those occurrences. It audits a read.
func (s *Service) Message(ctx context.Context, c Caller, id string) (*Hit, error) {
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, s.denied(ctx, c, "read", id, err)
	}
	if err := s.audit(ctx, c, "read", h.SHA256); err != nil {
		return nil, err
	}
	return h, nil
}

// Raw returns the message id byte-exact, if c may see it, and audits a
// download. What reads mail to show it (the web's message page) calls Raw
// with the action "read"; what hands the bytes out, with "download".
func (s *Service) Raw(ctx context.Context, c Caller, id, action string) (*Hit, []byte, error) {
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, nil, s.denied(ctx, c, action, id, err)
	}
	raw, err := s.a.Raw(h.SHA256)
	if err != nil {
		if _, ok := errors.AsType[*indexer.DisposedError](err); ok {
			// Deleted on purpose (retention, erasure): the caller who may
			// see the message learns when and under which rule, as a
			// not-found, never as a store fault. Audited like the read.
			if aerr := s.audit(ctx, c, action, h.SHA256+" (deleted)"); aerr != nil {
				return nil, nil, aerr
			}
			return nil, nil, errorf(ErrNotFound, "%v", err)
		}
		return nil, nil, fmt.Errorf("read message %s from the store (`mailvault verify` checks the store): %w", h.SHA256, err)
	}
	if err := s.audit(ctx, c, action, h.SHA256); err != nil {
		return nil, nil, err
	}
	return h, raw, nil
}

// notFoundFloor is the least time an answer "no such message" takes, so
// that a message that exists in another account (found, then scoped away)
// and one that does not exist (not found) cannot be told apart by timing.
const notFoundFloor = 2 * time.Millisecond

// lookup finds message id within c's scope, unaudited. A message c may not
// see answers exactly like one that does not exist, in content and in time.
func (s *Service) lookup(ctx context.Context, c Caller, id string) (*Hit, error) {
	begin := time.Now()
	notFound := func() error {
		time.Sleep(notFoundFloor - time.Since(begin))
		return errorf(ErrNotFound, "no such message: %s", clipID(id))
	}
	id = strings.ToLower(id)
	h, err := s.a.Message(ctx, id)
	if err != nil {
		if errors.Is(err, indexer.ErrNoMessage) {
			return nil, notFound()
		}
		return nil, err
	}
	hit, ok := scopedHit(c, *h)
	if !ok {
		return nil, notFound()
	}
	return &hit, nil
}

// denied records an access that was refused as not found (a guessed or
// foreign message id, another account) and returns err. The record is the
// evidence of probing; a failure to write it fails the request too.
func (s *Service) denied(ctx context.Context, c Caller, action, what string, err error) error {
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if aerr := s.audit(ctx, c, "denied", action+" "+what); aerr != nil {
		return aerr
	}
	return err
}

func clipID(id string) string {
	if len(id) > 64 {
		return id[:64] + "…"
	}
	return id
}

// ThreadEntry is a message a thread refers to: the message, when the
// archive holds it and c may see it, or only its Message-ID.
type ThreadEntry struct {
	MessageID string `json:"message_id"`
	Hit       *Hit   `json:"hit,omitempty"`
}

// Thread resolves the Message-IDs a message refers to (References, then
// In-Reply-To), in that order, within c's scope.
func (s *Service) Thread(ctx context.Context, c Caller, refs []string) ([]ThreadEntry, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	found, err := s.a.ByMessageID(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make([]ThreadEntry, 0, len(refs))
	for _, r := range refs {
		e := ThreadEntry{MessageID: r}
		for _, sha := range found[r] {
			if h, err := s.lookup(ctx, c, sha); err == nil {
				e.Hit = h
				break
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Replies returns the messages that refer to Message-ID id, within c's
// scope, at most limit.
func (s *Service) Replies(ctx context.Context, c Caller, id string, limit int) ([]Hit, error) {
	if id == "" {
		return nil, nil
	}
	shas, err := s.a.Replies(ctx, id, limit)
	if err != nil {
		return nil, err
	}
	var out []Hit
	for _, sha := range shas {
		if h, err := s.lookup(ctx, c, sha); err == nil {
			out = append(out, *h)
		}
	}
	return out, nil
}

// Accounts returns the accounts in the archive that c may see.
func (s *Service) Accounts(ctx context.Context, c Caller) ([]string, error) {
	all, err := s.a.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(a string) bool { return !c.Sees(a) }), nil
}

// Peek returns the bytes of message id, in c's scope, to show part of it
// beside a search result (a snippet). It is not audited on its own: the
// search that listed it was, and nothing of it leaves but the snippet.
func (s *Service) Peek(ctx context.Context, c Caller, id string) ([]byte, error) {
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return s.a.Raw(h.SHA256)
}
