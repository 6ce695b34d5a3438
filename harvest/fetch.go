package harvest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Fetch failures before a chunk is fetched one message at a time, and before
// a single message is skipped (and recorded).
const (
	strikesToSplit = 2
	strikesToSkip  = 3
)

// catchUp fetches and stores every message of the selected mailbox with a
// UID at or above next. It first asks for the UIDs and sizes of those
// messages (UID FETCH next:* (RFC822.SIZE)), then fetches their bodies in
// chunks of at most FetchChunk messages and FetchBytes bytes, each chunk
// stored while the next is fetched (storer): a process harvesting many
// accounts holds at most two chunks per connection in memory, however
// large the messages. A message over MaxMessageBytes is recorded as skipped without
// being downloaded.
func (h *Harvester) catchUp(ctx context.Context, cn *conn, mb string, uidvalidity, next uint32, uidNext imap.UID) error {
	log := h.log.With("mailbox", mb)
	todo, err := h.pending(cn, mb, next, uidNext)
	if err != nil {
		return err
	}
	if len(todo) == 0 {
		return nil
	}
	log.Info("catching up", "uidvalidity", uidvalidity, "from_uid", next, "messages", len(todo))
	return h.fetchPending(ctx, cn, mb, uidvalidity, todo)
}

// fetchPending fetches and stores the messages of todo (in UID order), in
// chunks, as catchUp describes; gap checks (gaps.go) use it too.
func (h *Harvester) fetchPending(ctx context.Context, cn *conn, mb string, uidvalidity uint32, todo []pendingMessage) (err error) {
	h.progress(mb, len(todo), 0)
	epoch := fmt.Sprintf("%s/%d", mb, uidvalidity)
	// One chunk is stored while the next is fetched (storer). Whatever
	// ends the loop, the store in flight is waited for before this
	// returns: the caller's next step (a sync, a checkpoint read, a
	// reconnect) must see it durable, or failed.
	st := &storer{h: h, cn: cn}
	defer func() {
		if werr := st.wait(); err == nil {
			err = werr
		}
	}()
	// On Gmail, messages the archive knows by X-GM-MSGID are not
	// downloaded again (gmail.go). The side connection costs a login, so
	// a catch-up of a few messages (new mail, while watching) goes
	// without it.
	var gm *gmailConn
	if len(todo) >= gmailMinBatch {
		gm = h.gmailSide(ctx, cn, mb, uidvalidity)
		defer func() { gm.close() }()
	}
	for i := 0; i < len(todo); {
		if err := ctx.Err(); err != nil {
			return err
		}
		if size := todo[i].size; size > h.opts.MaxMessageBytes {
			if err := h.skip(ctx, cn, st, mb, uidvalidity, todo[i].uid, fmt.Sprintf(
				"message is %d bytes, over the limit of %d (max_message_bytes)", size, h.opts.MaxMessageBytes)); err != nil {
				return err
			}
			i++
			continue
		}
		h.mu.Lock()
		split := h.splitUntil[epoch]
		h.mu.Unlock()
		end := i + 1
		if uint32(todo[i].uid) > split {
			bytes := todo[i].size
			for end < len(todo) && end-i < h.opts.FetchChunk && todo[end].size <= h.opts.MaxMessageBytes &&
				bytes+todo[end].size <= int64(h.opts.FetchBytes) {
				bytes += todo[end].size
				end++
			}
		} // else a chunk here failed before: go one message at a time through
		// its range to find the message that breaks the connection.
		chunk := make([]imap.UID, 0, end-i)
		for _, p := range todo[i:end] {
			chunk = append(chunk, p.uid)
		}
		strike := fmt.Sprintf("%s/%d/%d", epoch, len(chunk), chunk[0])
		if n := h.strike(strike, 0); len(chunk) == 1 && n >= strikesToSkip {
			if err := h.skip(ctx, cn, st, mb, uidvalidity, chunk[0], fmt.Sprintf("fetch failed %d times", n)); err != nil {
				return err
			}
			h.strike(strike, -1)
			i = end
			continue
		}
		var chunkBytes int64
		for _, p := range todo[i:end] {
			chunkBytes += p.size
		}
		release, err := h.opts.Budget.acquire(ctx, chunkBytes)
		if err != nil {
			return err
		}
		// The chunk's bytes stay taken until its store is done.
		var once sync.Once
		done := func() { once.Do(release) }
		err = h.storeChunk(ctx, cn, st, &gm, mb, uidvalidity, chunk, strike, epoch, chunkBytes, done)
		if err != nil {
			// What came whole before a failure may be storing with
			// these bytes: they are given back when it is done.
			st.wait()
			done()
			return err
		}
		i = end
		h.progress(mb, len(todo), i)
	}
	return nil
}

// storeChunk fetches the messages of chunk and stores them. reserved is
// the bytes taken from the Budget for them (their RFC822.SIZEs).
func (h *Harvester) storeChunk(ctx context.Context, cn *conn, st *storer, gm **gmailConn, mb string, uidvalidity uint32, chunk []imap.UID, strike, epoch string, reserved int64, release func()) error {
	log := h.log.With("mailbox", mb)
	known, download, info := h.gmailSplit(ctx, gm, mb, uidvalidity, chunk)
	var msgs []Message
	var oversize []imap.UID
	var err error
	if len(download) > 0 {
		msgs, oversize, err = h.fetch(cn, mb, uidvalidity, download, reserved)
		withGmail(msgs, info)
	}
	msgs = append(msgs, known...)
	if err != nil {
		// A fetch that stopped reading (a body over a limit) dropped the
		// connection: keep what came whole before it, in UID order, so
		// that the next connection goes on from there.
		msgs, oversize = completePrefix(chunk, msgs, oversize)
		if len(msgs)+len(oversize) > 0 {
			h.strike(strike, -1)
			if serr := h.storeFetched(ctx, cn, st, mb, uidvalidity, msgs, oversize, release); serr != nil {
				return serr
			}
		} else if _, slowDown := throttle(h.withBye(err)); slowDown {
			// The server throttles the account, not this chunk: no strike,
			// or a provider that throttles often would get a message
			// skipped (Run waits ThrottleBackoff before the next try).
		} else if n := h.strike(strike, 1); len(chunk) > 1 && n >= strikesToSplit {
			h.mu.Lock()
			h.splitUntil[epoch] = uint32(chunk[len(chunk)-1])
			h.mu.Unlock()
		}
		return fmt.Errorf("fetch UID %s of %q: %w", imap.UIDSetNum(chunk...), mb, err)
	}
	h.strike(strike, -1)
	// A server that sends UID after the body literal gets its response
	// routed to the unilateral handler: ask once more for what is
	// missing. What is still missing was expunged meanwhile.
	if missing := missingUIDs(chunk, msgs, oversize); len(missing) > 0 {
		again, over, err := h.fetch(cn, mb, uidvalidity, missing, reserved)
		if err != nil {
			return fmt.Errorf("fetch UID %s of %q: %w", imap.UIDSetNum(missing...), mb, err)
		}
		withGmail(again, info)
		msgs, oversize = append(msgs, again...), append(oversize, over...)
		if gone := missingUIDs(missing, again, over); len(gone) > 0 {
			log.Info("messages vanished before they could be fetched", "uids", imap.UIDSetNum(gone...).String())
		}
	}
	return h.storeFetched(ctx, cn, st, mb, uidvalidity, msgs, oversize, release)
}

// storeFetched hands msgs to the storer (stored while the next chunk is
// fetched; release is called when that store is done) and records the
// oversize UIDs as skipped.
func (h *Harvester) storeFetched(ctx context.Context, cn *conn, st *storer, mb string, uidvalidity uint32, msgs []Message, oversize []imap.UID, release func()) error {
	if len(msgs) > 0 {
		if err := st.start(ctx, mb, msgs, release); err != nil {
			return err
		}
	} else {
		release()
	}
	h.count(func(c *Counters) {
		c.Messages += int64(len(msgs))
		for _, m := range msgs {
			c.Bytes += int64(len(m.Raw))
			if m.Raw == nil {
				c.GmailKnown++
			}
		}
	})
	for _, uid := range oversize {
		// RFC822.SIZE said less than the body the server then sent.
		if err := h.skip(ctx, cn, st, mb, uidvalidity, uid, fmt.Sprintf(
			"message body is over the limit of %d bytes (max_message_bytes)", h.opts.MaxMessageBytes)); err != nil {
			return err
		}
	}
	return nil
}

// storer stores one chunk at a time in the background, so that the
// connection fetches the next chunk meanwhile: the archive's work
// (hashing, compressing, parsing, the catalog's commit) and the server's
// overlap instead of taking turns. Stores stay in UID order, one at a
// time: start waits for the one before, and every other step that moves
// the checkpoint (skip) or ends the catch-up waits too, so the checkpoint
// never passes a message not yet durable (invariant 1). A connection thus
// holds at most two chunks' bodies: the one storing, the one arriving;
// the Budget counts both until each is stored.
type storer struct {
	h    *Harvester
	cn   *conn
	done chan error // the store in flight, nil when none
}

// wait waits for the store in flight and returns its error. The server
// owes the connection nothing meanwhile (no read timeout).
func (s *storer) wait() error {
	if s.done == nil {
		return nil
	}
	s.cn.tc.pause()
	err := <-s.done
	s.cn.tc.resume()
	s.done = nil
	return err
}

// start waits for the store in flight, then stores msgs in the
// background; release is called when that store is done.
func (s *storer) start(ctx context.Context, mb string, msgs []Message, release func()) error {
	if err := s.wait(); err != nil {
		release()
		return err
	}
	done := make(chan error, 1)
	s.done = done
	go func() {
		defer release()
		if err := s.h.sink.Store(ctx, msgs); err != nil {
			done <- fmt.Errorf("store %d messages of %q: %w", len(msgs), mb, err)
			return
		}
		done <- nil
	}()
	return nil
}

// completePrefix returns the messages and oversize UIDs of the longest run
// of chunk, from its lowest UID, that the server delivered whole: storing
// more would move the checkpoint past a UID not yet archived.
func completePrefix(chunk []imap.UID, msgs []Message, oversize []imap.UID) ([]Message, []imap.UID) {
	byUID := map[imap.UID]Message{}
	for _, m := range msgs {
		byUID[imap.UID(m.UID)] = m
	}
	var keep []Message
	var over []imap.UID
	for _, u := range slices.Sorted(slices.Values(chunk)) {
		if m, ok := byUID[u]; ok {
			keep = append(keep, m)
		} else if slices.Contains(oversize, u) {
			over = append(over, u)
		} else {
			break
		}
	}
	return keep, over
}

// fetchEach runs a FETCH without body sections and calls fn with each
// message's data, in the order the server sends them. Body sections the
// server sends anyway are read and dropped, never held. A server answering
// with more messages than the mailbox has (by EXISTS) is cut off: the
// connection is closed and the error says so.
func fetchEach(cn *conn, set imap.NumSet, opts *imap.FetchOptions, fn func(*imapclient.FetchMessageBuffer)) error {
	c := cn.c
	cmd := c.Fetch(set, opts)
	n := 0
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		n++
		if limit := exists(c) + extraFetchResponses; n > limit {
			cn.tc.Conn.Close() // not c.Close: the client's reader waits for us
			cmd.Close()
			return fmt.Errorf("%w: more than %d FETCH responses for a mailbox of %d messages", ErrHostile, limit, exists(c))
		}
		buf := &imapclient.FetchMessageBuffer{SeqNum: md.SeqNum}
		for item := md.Next(); item != nil; item = md.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				buf.UID = it.UID
			case imapclient.FetchItemDataFlags:
				buf.Flags = it.Flags
			case imapclient.FetchItemDataRFC822Size:
				buf.RFC822Size = it.Size
			}
		}
		fn(buf)
	}
	return cmd.Close()
}

// exists is the number of messages of the selected mailbox, by the
// server's last EXISTS.
func exists(c *imapclient.Client) int {
	if mb := c.Mailbox(); mb != nil {
		return int(mb.NumMessages)
	}
	return 0
}

// pendingMessage is a message to fetch and the size the server gives it.
type pendingMessage struct {
	uid  imap.UID
	size int64
}

// pending returns the UIDs at or above next and below uidNext (when the
// server gave one), in order and each once, with their sizes.
func (h *Harvester) pending(cn *conn, mb string, next uint32, uidNext imap.UID) ([]pendingMessage, error) {
	var out []pendingMessage
	seen := map[imap.UID]bool{}
	err := fetchEach(cn, imap.UIDSet{imap.UIDRange{Start: imap.UID(next), Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true},
		func(buf *imapclient.FetchMessageBuffer) {
			// "n:*" includes the highest UID even when it is below n: skip
			// it, or the newest message is fetched again on every pass. A
			// UID at or above UIDNEXT cannot exist: archived, it would move
			// the checkpoint past every message still to come.
			if uint32(buf.UID) >= next && (uidNext == 0 || buf.UID < uidNext) && !seen[buf.UID] {
				seen[buf.UID] = true
				out = append(out, pendingMessage{uid: buf.UID, size: buf.RFC822Size})
			}
		})
	if err != nil {
		return nil, fmt.Errorf("list new messages of %q: %w", mb, err)
	}
	slices.SortFunc(out, func(a, b pendingMessage) int { return cmp.Compare(a.uid, b.uid) })
	return out, nil
}

// skip records that the message uid will not be archived, and why, and
// moves the mailbox's checkpoint past it, once the store in flight (of
// lower UIDs) is done.
func (h *Harvester) skip(ctx context.Context, cn *conn, st *storer, mb string, uidvalidity uint32, uid imap.UID, reason string) error {
	if err := st.wait(); err != nil {
		return err
	}
	h.log.Error("message not archived; recorded as skipped", "mailbox", mb, "uidvalidity", uidvalidity, "uid", uid, "reason", reason)
	cn.tc.pause()
	defer cn.tc.resume()
	if err := h.sink.Skip(ctx, h.acct.Name, mb, uidvalidity, uint32(uid), reason); err != nil {
		return err
	}
	h.count(func(c *Counters) { c.Skipped++ })
	return nil
}

// strike adds d to the strikes of key (d < 0 clears them) and returns the count.
func (h *Harvester) strike(key string, d int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d < 0 {
		delete(h.strikes, key)
		return 0
	}
	h.strikes[key] += d
	return h.strikes[key]
}

// missingUIDs returns the UIDs of asked that are neither in got nor in also.
func missingUIDs(asked []imap.UID, got []Message, also []imap.UID) []imap.UID {
	have := make(map[uint32]bool, len(got)+len(also))
	for _, m := range got {
		have[m.UID] = true
	}
	for _, u := range also {
		have[uint32(u)] = true
	}
	var missing []imap.UID
	for _, u := range asked {
		if !have[uint32(u)] {
			missing = append(missing, u)
		}
	}
	return missing
}

// fetch reads the given UIDs' bodies, flags, internal dates and sizes. A
// literal is copied out at once; nothing else happens while the connection
// is blocked on it. Memory follows the bytes that arrive, not the sizes
// announced. A body over MaxMessageBytes, or one that would make the
// bodies held more than twice max(reserved, FetchBytes), is not read: the
// connection is dropped and the error returned with what came whole
// before it (an oversize body's UID in oversize).
func (h *Harvester) fetch(cn *conn, mb string, uidvalidity uint32, uids []imap.UID, reserved int64) (msgs []Message, oversize []imap.UID, err error) {
	c := cn.c
	asked := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		asked[uint32(u)] = true
	}
	allowance := 2 * max(reserved, int64(h.opts.FetchBytes))
	var held int64
	cmd := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	defer cmd.Close()
	// stop drops the connection in the middle of lit: the client's reader
	// waits until lit is read, so it is read to its (now early) end.
	stop := func(lit io.Reader, err error) ([]Message, []imap.UID, error) {
		cn.tc.Conn.Close()
		io.Copy(io.Discard, lit)
		cmd.Close()
		return msgs, oversize, err
	}
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		m := Message{Account: h.acct.Name, Mailbox: mb, UIDValidity: uidvalidity}
		for {
			item := md.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				m.UID = uint32(it.UID)
			case imapclient.FetchItemDataFlags:
				m.Flags = flagStrings(it.Flags)
			case imapclient.FetchItemDataInternalDate:
				m.InternalDate = it.Time
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				size := it.Literal.Size()
				switch {
				case size > h.opts.MaxMessageBytes:
					if asked[m.UID] {
						oversize = append(oversize, imap.UID(m.UID))
					}
					return stop(it.Literal, fmt.Errorf("UID %d: the server announced a %d-byte body, over the limit of %d (max_message_bytes): not read",
						m.UID, size, h.opts.MaxMessageBytes))
				case len(msgs) > 0 && held+size > allowance:
					return stop(it.Literal, fmt.Errorf("%w: UID %d: a %d-byte body after %d bytes in one FETCH, more than twice what RFC822.SIZE announced (%d)",
						ErrHostile, m.UID, size, held, reserved))
				}
				raw, err := readLiteral(it.Literal, size)
				if err != nil {
					return nil, nil, fmt.Errorf("connection lost in the middle of a %d-byte message body: %w", size, err)
				}
				m.Raw = raw
				held += size
			}
		}
		switch {
		case !asked[m.UID]:
			// Not asked for, or already received: go-imap routes those
			// to the unilateral handler; never archive one here.
		case m.Raw != nil:
			msgs = append(msgs, m)
			delete(asked, m.UID)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, nil, err
	}
	return msgs, oversize, nil
}

// readLiteral reads a literal of size bytes, growing its buffer with what
// arrives: a server announcing much and sending little costs little.
func readLiteral(r io.Reader, size int64) ([]byte, error) {
	raw := make([]byte, 0, min(size, 1<<20))
	for int64(len(raw)) < size {
		if len(raw) == cap(raw) {
			raw = slices.Grow(raw, int(min(size-int64(len(raw)), int64(len(raw)))))
		}
		n, err := r.Read(raw[len(raw):min(int64(cap(raw)), size)])
		raw = raw[:len(raw)+n]
		if err != nil && int64(len(raw)) < size {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return raw, nil
}
