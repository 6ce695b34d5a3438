package harvest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

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
// stored before the next is fetched: a process harvesting many accounts
// holds at most one chunk per connection in memory, however large the
// messages. A message over MaxMessageBytes is recorded as skipped without
// being downloaded.
func (h *Harvester) catchUp(ctx context.Context, cn *conn, mb string, uidvalidity, next uint32) error {
	c := cn.c
	log := h.log.With("mailbox", mb)
	todo, err := h.pending(c, mb, next)
	if err != nil {
		return err
	}
	if len(todo) == 0 {
		return nil
	}
	log.Info("catching up", "uidvalidity", uidvalidity, "from_uid", next, "messages", len(todo))
	h.progress(mb, len(todo), 0)
	epoch := fmt.Sprintf("%s/%d", mb, uidvalidity)
	for i := 0; i < len(todo); {
		if err := ctx.Err(); err != nil {
			return err
		}
		if size := todo[i].size; size > h.opts.MaxMessageBytes {
			if err := h.skip(ctx, cn, mb, uidvalidity, todo[i].uid, fmt.Sprintf(
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
			if err := h.skip(ctx, cn, mb, uidvalidity, chunk[0], fmt.Sprintf("fetch failed %d times", n)); err != nil {
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
		err = h.storeChunk(ctx, cn, mb, uidvalidity, chunk, strike, epoch)
		release()
		if err != nil {
			return err
		}
		i = end
		h.progress(mb, len(todo), i)
	}
	return nil
}

// storeChunk fetches the messages of chunk and stores them.
func (h *Harvester) storeChunk(ctx context.Context, cn *conn, mb string, uidvalidity uint32, chunk []imap.UID, strike, epoch string) error {
	c, log := cn.c, h.log.With("mailbox", mb)
	msgs, oversize, err := h.fetch(c, mb, uidvalidity, chunk)
	if err != nil {
		if n := h.strike(strike, 1); len(chunk) > 1 && n >= strikesToSplit {
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
		again, over, err := h.fetch(c, mb, uidvalidity, missing)
		if err != nil {
			return fmt.Errorf("fetch UID %s of %q: %w", imap.UIDSetNum(missing...), mb, err)
		}
		msgs, oversize = append(msgs, again...), append(oversize, over...)
		if gone := missingUIDs(missing, again, over); len(gone) > 0 {
			log.Info("messages vanished before they could be fetched", "uids", imap.UIDSetNum(gone...).String())
		}
	}
	cn.tc.pause() // the server owes us nothing while the archive works
	err = h.sink.Store(ctx, msgs)
	cn.tc.resume()
	if err != nil {
		return fmt.Errorf("store %d messages of %q: %w", len(msgs), mb, err)
	}
	h.count(func(c *Counters) {
		c.Messages += int64(len(msgs))
		for _, m := range msgs {
			c.Bytes += int64(len(m.Raw))
		}
	})
	for _, uid := range oversize {
		// RFC822.SIZE said less than the body the server then sent.
		if err := h.skip(ctx, cn, mb, uidvalidity, uid, fmt.Sprintf(
			"message body is over the limit of %d bytes (max_message_bytes)", h.opts.MaxMessageBytes)); err != nil {
			return err
		}
	}
	return nil
}

// fetchEach runs a FETCH without body sections and calls fn with each
// message's data, in the order the server sends them.
func fetchEach(c *imapclient.Client, set imap.NumSet, opts *imap.FetchOptions, fn func(*imapclient.FetchMessageBuffer)) error {
	cmd := c.Fetch(set, opts)
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		buf, err := md.Collect()
		if err != nil {
			cmd.Close()
			return err
		}
		fn(buf)
	}
	return cmd.Close()
}

// pendingMessage is a message to fetch and the size the server gives it.
type pendingMessage struct {
	uid  imap.UID
	size int64
}

// pending returns the UIDs at or above next, in order, with their sizes.
func (h *Harvester) pending(c *imapclient.Client, mb string, next uint32) ([]pendingMessage, error) {
	var out []pendingMessage
	err := fetchEach(c, imap.UIDSet{imap.UIDRange{Start: imap.UID(next), Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true},
		func(buf *imapclient.FetchMessageBuffer) {
			// "n:*" includes the highest UID even when it is below n: skip
			// it, or the newest message is fetched again on every pass.
			if uint32(buf.UID) >= next {
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
// moves the mailbox's checkpoint past it.
func (h *Harvester) skip(ctx context.Context, cn *conn, mb string, uidvalidity uint32, uid imap.UID, reason string) error {
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
// is blocked on it. A body over MaxMessageBytes is read and dropped; its
// UID is returned in oversize.
func (h *Harvester) fetch(c *imapclient.Client, mb string, uidvalidity uint32, uids []imap.UID) (msgs []Message, oversize []imap.UID, err error) {
	cmd := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	defer cmd.Close()
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		m := Message{Account: h.acct.Name, Mailbox: mb, UIDValidity: uidvalidity}
		over := false
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
				size := it.Literal.Size()
				if size > h.opts.MaxMessageBytes {
					over = true
					if _, err := io.Copy(io.Discard, it.Literal); err != nil {
						return nil, nil, fmt.Errorf("connection lost in the middle of a message body: %w", err)
					}
					continue
				}
				m.Raw = make([]byte, size)
				if _, err := io.ReadFull(it.Literal, m.Raw); err != nil {
					return nil, nil, fmt.Errorf("connection lost in the middle of a %d-byte message body: %w", size, err)
				}
			}
		}
		switch {
		case m.UID == 0:
		case over:
			oversize = append(oversize, imap.UID(m.UID))
		case m.Raw != nil:
			msgs = append(msgs, m)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, nil, err
	}
	return msgs, oversize, nil
}
