package indexer

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"mailvault/indexer/mime"
	"mailvault/indexer/store"
	"mailvault/query"
)

// Header columns: what a header key of IMAP SEARCH (FROM, TO, CC, BCC,
// SUBJECT, HEADER name) tests, kept per message of a cached mailbox.
//
// Decision. After the prefilter, a header key still verifies its
// candidates on their decoded views: FROM "jm@" has one trigram, which the
// 128 bits of the From region rule out in only ~80 % of messages, and
// HEADER X-Mailer "Outlook" has 830 real hits out of 6,046 that must be
// looked at whatever the prefilter. Each look is a lookup in the shared
// view cache (its lock, its LRU list) and a walk over a view scattered in
// the heap; Dovecot answers the same keys from its cache file of header
// values. A column is the same idea in memory: for one key of one mailbox
// entry (occEntry), the folded values that key tests, one string per
// occurrence, filled as the views are decoded or found by any search, and
// answered from there the next time, without the view. So:
//   - it is exactly the view's answer: the values a key's loop walks,
//     joined by NUL (a needle holding NUL does not use the column; an IMAP
//     string cannot hold one); a message with none of them is "" and
//     matches nothing, not even "", as in the loop;
//   - it lives and dies with the occEntry, which is replaced after any
//     write to the catalog (a.gen), disposals included: a disposed
//     message's values are gone with it;
//   - it is bounded: one entry's columns hold at most columnBytes (the
//     pointers included), at most columnKeys keys; past that, values are
//     not kept and the view answers; four entries are cached (32 MiB);
//   - NoPrefilter (the differential tests' reference) does not use it;
//   - a key whose column knows every message needs no signature pass
//     (e.needle); so that this happens, a search that used an incomplete
//     column has the rest filled in the background (columnCompleter: the
//     top-level header of each remaining message, one mailbox at a time
//     per archive, stopped when the entry goes stale or the bytes run
//     out). Dovecot's cache file fills the same way, after a header is
//     first searched.
const (
	columnBytes = 8 << 20
	columnKeys  = 16
)

// columns are an occEntry's header columns.
type columns struct {
	mu    sync.Mutex
	byKey map[string]*column
	bytes atomic.Int64 // held by all of the entry's columns
}

// column holds, per occurrence index, the key's joined values (nil: not
// known yet).
type column struct {
	key   string
	vals  []atomic.Pointer[string]
	known atomic.Int64 // values kept
	of    *columns
	// packed is the complete column in one string, made by the keep that
	// completes it: a search over it reads memory in order instead of
	// chasing a pointer and a string per message.
	packed atomic.Pointer[packedColumn]
}

// packedColumn: occurrence i's joined values are data[off[i]:off[i+1]].
type packedColumn struct {
	data string
	off  []uint32
}

// complete reports whether the column knows every occurrence.
func (c *column) complete() bool {
	return c != nil && c.known.Load() == int64(len(c.vals))
}

// column returns the column of key for this search, or nil when there is
// none to use (the limits, NoPrefilter, a needle with NUL).
func (e *imapEval) column(key, needle string) *column {
	if e.opts.NoPrefilter || e.cols == nil || strings.IndexByte(needle, 0) >= 0 {
		return nil
	}
	cs := e.cols
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.byKey[key]; ok {
		if !e.forked {
			e.shared.columns = append(e.shared.columns, c)
		}
		return c
	}
	cost := int64(len(e.occs)) * 8
	if len(cs.byKey) >= columnKeys || cs.bytes.Load()+cost > columnBytes {
		return nil
	}
	if cs.byKey == nil {
		cs.byKey = map[string]*column{}
	}
	c := &column{key: key, vals: make([]atomic.Pointer[string], len(e.occs)), of: cs}
	cs.bytes.Add(cost)
	cs.byKey[key] = c
	if !e.forked {
		e.shared.columns = append(e.shared.columns, c)
	}
	return c
}

// match answers needle for occurrence i from the column, if it knows it.
func (c *column) match(i int, needle string) (match, known bool) {
	if c == nil {
		return false, false
	}
	var v string
	if pc := c.packed.Load(); pc != nil {
		v = pc.data[pc.off[i]:pc.off[i+1]]
	} else if p := c.vals[i].Load(); p != nil {
		v = *p
	} else {
		return false, false
	}
	if needle == "" {
		return v != "", true
	}
	return strings.Contains(v, needle), true
}

// keep records the joined values of occurrence i, within the entry's
// bytes.
func (c *column) keep(i int, joined string) {
	if c == nil || c.vals[i].Load() != nil {
		return
	}
	cost := int64(len(joined)) + 16
	if c.of.bytes.Add(cost) > columnBytes {
		c.of.bytes.Add(-cost)
		return
	}
	if !c.vals[i].CompareAndSwap(nil, &joined) {
		c.of.bytes.Add(-cost)
		return
	}
	if c.known.Add(1) == int64(len(c.vals)) {
		c.pack()
	}
}

// pack makes the packed form of a complete column, within the entry's
// bytes (it is then held twice; without room the column stays unpacked).
func (c *column) pack() {
	var n int
	for i := range c.vals {
		n += len(*c.vals[i].Load())
	}
	cost := int64(n + 4*len(c.vals) + 4)
	if c.of.bytes.Add(cost) > columnBytes || n > 1<<32-1 {
		c.of.bytes.Add(-cost)
		return
	}
	var b strings.Builder
	b.Grow(n)
	off := make([]uint32, len(c.vals)+1)
	for i := range c.vals {
		b.WriteString(*c.vals[i].Load())
		off[i+1] = uint32(b.Len())
	}
	c.packed.Store(&packedColumn{data: b.String(), off: off})
}

// columnKey names the column of a string key: the address field or
// "subject" (a HEADER key's column is "h:" and its name as given: the
// loop compares names with EqualFold, so the column of another spelling
// is another column, never a wrong one).
func columnKey(f query.Field) (string, bool) {
	switch f {
	case query.FieldFrom:
		return "From", true
	case query.FieldTo:
		return "To", true
	case query.FieldCc:
		return "Cc", true
	case query.FieldBcc:
		return "Bcc", true
	case query.FieldSubject:
		return "subject", true
	}
	return "", false
}

// joinedValues returns what the key of column key tests in v, each value
// after a NUL ("" when there is none): textMatch's and the HEADER loop's
// values, in their order.
func joinedValues(v *mime.View, key string) string {
	var b strings.Builder
	switch {
	case key == "subject":
		for _, s := range v.Subjects {
			b.WriteByte(0)
			b.WriteString(s)
		}
	case strings.HasPrefix(key, "h:"):
		name := key[2:]
		for _, h := range v.Headers {
			if strings.EqualFold(h.Key, name) {
				b.WriteByte(0)
				b.WriteString(h.Value)
			}
		}
	default:
		for _, h := range v.Addresses {
			if strings.EqualFold(h.Key, key) {
				b.WriteByte(0)
				b.WriteString(h.Value)
			}
		}
	}
	return b.String()
}

// columnCompleter fills the incomplete columns of one entry at a time.
type columnCompleter struct {
	mu     sync.Mutex
	busy   bool
	closed bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// completeColumns fills, in the background, what cols do not know of
// entry's occurrences, unless a fill is running already.
func (a *Archive) completeColumns(entry *occEntry, cols []*column) {
	var todo []*column
	for _, c := range cols {
		if !c.complete() && !slices.Contains(todo, c) {
			todo = append(todo, c)
		}
	}
	if len(todo) == 0 {
		return
	}
	cc := &a.completer
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.busy || cc.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cc.busy, cc.cancel = true, cancel
	cc.wg.Add(1)
	go func() {
		defer cc.wg.Done()
		defer func() {
			cc.mu.Lock()
			cc.busy = false
			cc.mu.Unlock()
			cancel()
		}()
		a.fillColumns(ctx, entry, todo)
	}()
}

// fillColumns reads the top-level header of every occurrence some column
// of todo does not know, until the entry is stale, the bytes run out or
// ctx ends. Only the fields todo's keys test are decoded
// (mime.NewHeaderFieldsView: decoding every field was 70 % of a fill), and
// fillWorkers goroutines share the occurrences: a fill is bounded work
// (one mailbox, once per key), and the sooner it ends, the sooner the
// next searches of the key skip the signature pass (a 6,046-message fill
// took 0.5–0.9 s on one core, longer than a user's next few searches).
func (a *Archive) fillColumns(ctx context.Context, entry *occEntry, todo []*column) {
	want := func(field string) bool {
		for _, c := range todo {
			// A key is a field's name ("from", "subject") or "h:" and
			// the name (HEADER).
			if strings.EqualFold(field, strings.TrimPrefix(c.key, "h:")) {
				return true
			}
		}
		return false
	}
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range min(fillWorkers, max(1, runtime.GOMAXPROCS(0))) {
		wg.Go(func() {
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(entry.occs) {
					return
				}
				if ctx.Err() != nil || a.gen.Load() != entry.gen || entry.dropped.Load() {
					stop.Store(true)
					return
				}
				var need []*column
				for _, c := range todo {
					if c.vals[i].Load() == nil {
						need = append(need, c)
					}
				}
				if len(need) == 0 {
					continue
				}
				oc := &entry.occs[i]
				raw, err := a.readBlob(ctx, store.Key(oc.SHA256))
				if errors.Is(err, ErrDisposed) {
					raw, err = nil, nil // matches nothing, as in imapEval.view
				}
				if err != nil {
					a.log.Debug("IMAP SEARCH header column: stopped", "err", err)
					stop.Store(true)
					return
				}
				v := mime.NewHeaderFieldsView(raw, want)
				for _, c := range need {
					c.keep(i, joinedValues(v, c.key))
					if c.vals[i].Load() == nil {
						stop.Store(true) // out of bytes
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// fillWorkers is the most goroutines one column fill uses.
const fillWorkers = 4

// stop ends a running fill and waits for it (Archive.Close).
func (cc *columnCompleter) stop() {
	cc.mu.Lock()
	cc.closed = true
	if cc.cancel != nil {
		cc.cancel()
	}
	cc.mu.Unlock()
	cc.wg.Wait()
}
