package imapview

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailvault/query"
)

// Search answers SEARCH and UID SEARCH. go-imap has parsed the criteria;
// they are written back as IMAP SEARCH text (every string a literal, so
// any byte survives) and parsed by query.ParseIMAP, so that the view and
// `mailvault search --imap` answer through one parser and one executor.
// Two things are the session's own and resolved here first: sequence
// numbers (this session's, turned into UIDs) and the keyword $Expunged
// (the copies the server has expunged, as a UID set).
func (ss *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := ss.sel
	text, err := sel.criteriaText(criteria)
	if errors.Is(err, errSearchTooLarge) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: err.Error()}
	}
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: err.Error()}
	}
	n, err := query.ParseIMAP(text)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: clip(err.Error(), 300)}
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if err := ss.recheck(ctx); err != nil {
		return nil, err
	}
	uids, err := ss.s.opts.Archive.ViewSearch(ctx, *ss.caller, sel.f, n, readable(text))
	if err != nil {
		return nil, ss.serviceError("search", err)
	}
	ss.s.metrics.searches.Inc()
	// The answer names the session's messages only, by UID as by sequence
	// number: the criteria name the session's sequence numbers as ranges
	// of its UIDs (seqKey), and a UID the session does not have (archived
	// since its last poll, or below the highest UID it has: a gap filled
	// later) may fall in one.
	data := &imap.SearchData{}
	var nums []uint32
	var uidSet imap.UIDSet
	var seqSet imap.SeqSet
	for _, u := range uids {
		i := sort.Search(len(sel.msgs), func(i int) bool { return sel.msgs[i].UID >= u })
		if i == len(sel.msgs) || sel.msgs[i].UID != u {
			continue
		}
		if kind == imapserver.NumKindUID {
			uidSet.AddNum(imap.UID(u))
			nums = append(nums, u)
		} else {
			seqSet.AddNum(uint32(i + 1))
			nums = append(nums, uint32(i+1))
		}
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if len(nums) > 0 {
		data.Min, data.Max = nums[0], nums[len(nums)-1]
	}
	data.Count = uint32(len(nums))
	return data, nil
}

// maxCriteriaDepth bounds the nesting of NOT and OR that criteriaText
// writes out: each level copies the text below it, so the cost grows with
// the square of the depth (12,000 NOTs, what 50 KiB of command holds, took
// 0.6 s of CPU). query.ParseIMAP refuses deeper trees than this anyway.
const maxCriteriaDepth = 100

// maxCriteriaText bounds the size of the criteria text. The command is
// at most 50 KiB, but two keys stand for UIDs of the session's messages:
// a sequence set, and the keyword $Expunged. Written UID by UID, SEARCH
// 1:* repeated 1,000 times in a folder of 2,000 messages made 268 MB of
// text (5.7 s; a folder of 100,000 would need 13 GB). A sequence set is
// now written as ranges of UIDs (seqKey), so its text grows with the
// command, not with the folder; $Expunged, which can only be written as
// the expunged copies' UIDs, is written once per search (criteria.flagKey)
// and may be used once (criteria.budget): repeated, it is refused by this
// bound.
const maxCriteriaText = 256 << 10

var errSearchTooLarge = errors.New("the search is too large once its sequence numbers and $Expunged are written as UIDs: send fewer keys")

// criteria is one SEARCH being written as text.
type criteria struct {
	sel      *selected
	expunged [2]string // the keys for $Expunged and its negation, once written
}

// budget is the most text the criteria may make: maxCriteriaText, plus
// one use of each $Expunged key, however many copies there are.
func (w *criteria) budget() int {
	return maxCriteriaText + len(w.expunged[0]) + len(w.expunged[1])
}

// criteriaText writes criteria as IMAP SEARCH text for query.ParseIMAP.
func (sel *selected) criteriaText(c *imap.SearchCriteria) (string, error) {
	return (&criteria{sel: sel}).text(c, 0)
}

func (w *criteria) text(c *imap.SearchCriteria, depth int) (string, error) {
	if depth > maxCriteriaDepth {
		return "", fmt.Errorf("search criteria nested more than %d deep", maxCriteriaDepth)
	}
	sel := w.sel
	var keys []string
	size := 0
	add := func(k ...string) {
		key := strings.Join(k, " ") // one k: no copy (the $Expunged keys are shared)
		size += len(key) + 1
		keys = append(keys, key)
	}
	for _, set := range c.SeqNum {
		add(sel.seqKey(set))
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			return "", fmt.Errorf("SEARCHRES ($) is not offered by this server")
		}
		add("UID", set.String())
	}
	if !c.Since.IsZero() {
		add("SINCE", imapDate(c.Since))
	}
	if !c.Before.IsZero() {
		add("BEFORE", imapDate(c.Before))
	}
	if !c.SentSince.IsZero() {
		add("SENTSINCE", imapDate(c.SentSince))
	}
	if !c.SentBefore.IsZero() {
		add("SENTBEFORE", imapDate(c.SentBefore))
	}
	for _, h := range c.Header {
		// go-imap parses FROM x as the header field "From"; written back
		// as the key, it means what it means to `search --imap`.
		switch h.Key {
		case "From", "To", "Cc", "Bcc", "Subject":
			add(strings.ToUpper(h.Key), literal(h.Value))
		default:
			add("HEADER", literal(h.Key), literal(h.Value))
		}
	}
	for _, v := range c.Body {
		add("BODY", literal(v))
	}
	for _, v := range c.Text {
		add("TEXT", literal(v))
	}
	for _, f := range c.Flag {
		add(w.flagKey(f, false))
	}
	for _, f := range c.NotFlag {
		add(w.flagKey(f, true))
	}
	if c.Larger > 0 {
		add("LARGER", strconv.FormatInt(c.Larger, 10))
	}
	if c.Smaller > 0 {
		add("SMALLER", strconv.FormatInt(c.Smaller, 10))
	}
	if size > w.budget() {
		return "", errSearchTooLarge
	}
	for i := range c.Not {
		sub, err := w.text(&c.Not[i], depth+1)
		if err != nil {
			return "", err
		}
		add("NOT", "("+sub+")")
	}
	for i := range c.Or {
		a, err := w.text(&c.Or[i][0], depth+1)
		if err != nil {
			return "", err
		}
		b, err := w.text(&c.Or[i][1], depth+1)
		if err != nil {
			return "", err
		}
		add("OR", "("+a+")", "("+b+")")
	}
	if c.ModSeq != nil {
		return "", fmt.Errorf("MODSEQ needs CONDSTORE, which this server does not offer")
	}
	if size > w.budget() {
		return "", errSearchTooLarge
	}
	if len(keys) == 0 {
		return "ALL", nil
	}
	return strings.Join(keys, " "), nil
}

// seqKey is the key for a set of the session's sequence numbers: each
// range i:j as the UID range msgs[i].UID:msgs[j].UID, one step per range
// whatever the folder's size. Among the session's messages, which are in
// UID order, that UID range holds exactly messages i to j; a UID in it
// that the session does not have is left out of the answer by Search.
func (sel *selected) seqKey(set imap.SeqSet) string {
	var uids imap.UIDSet
	n := uint32(len(sel.msgs))
	if n == 0 || imap.IsSearchRes(set) {
		return uidKey(uids) // "$" (SEARCHRES) is not offered
	}
	for _, r := range set {
		lo, hi := orderRange(r.Start, r.Stop, n)
		if lo > n {
			continue // numbers beyond the highest name nothing
		}
		uids.AddRange(imap.UID(sel.msgs[lo-1].UID), imap.UID(sel.msgs[min(hi, n)-1].UID))
	}
	return uidKey(uids)
}

// flagKey is the key for a flag (not: its negation). $Expunged is not a
// stored flag: it is the set of copies the server has expunged, written
// as UID ranges of runs of them (as seqKey), once per search.
func (w *criteria) flagKey(f imap.Flag, not bool) string {
	if strings.EqualFold(string(f), ExpungedKeyword) {
		if w.expunged[0] == "" {
			var uids imap.UIDSet
			msgs := w.sel.msgs
			for i := 0; i < len(msgs); i++ {
				if msgs[i].Expunged == "" {
					continue
				}
				j := i
				for j+1 < len(msgs) && msgs[j+1].Expunged != "" {
					j++
				}
				uids.AddRange(imap.UID(msgs[i].UID), imap.UID(msgs[j].UID))
				i = j
			}
			w.expunged = [2]string{uidKey(uids), "NOT (" + uidKey(uids) + ")"}
		}
		if not {
			return w.expunged[1]
		}
		return w.expunged[0]
	}
	system := map[string]string{`\seen`: "SEEN", `\answered`: "ANSWERED", `\flagged`: "FLAGGED",
		`\deleted`: "DELETED", `\draft`: "DRAFT", `\recent`: "RECENT"}
	if k, ok := system[strings.ToLower(string(f))]; ok {
		if not {
			if k == "RECENT" {
				return "NOT RECENT"
			}
			return "UN" + k
		}
		return k
	}
	if not {
		return "UNKEYWORD " + string(f)
	}
	return "KEYWORD " + string(f)
}

// uidKey is "UID set", or a key that matches nothing for an empty set.
func uidKey(uids imap.UIDSet) string {
	if len(uids) == 0 {
		return "NOT ALL"
	}
	return "UID " + uids.String()
}

func imapDate(t time.Time) string { return t.Format("2-Jan-2006") }

// readable is criteria text as the audit trail shows it: each literal
// (only literal writes them; no atom of the text holds "{") as a quoted
// Go string.
func readable(text string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, "{")
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		j := strings.Index(text[i:], "}\r\n")
		n, err := strconv.Atoi(text[i+1 : i+max(j, 1)])
		if j < 0 || err != nil || i+j+3+n > len(text) {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		b.WriteString(strconv.Quote(text[i+j+3 : i+j+3+n]))
		text = text[i+j+3+n:]
	}
}

// literal is s as an IMAP literal, which carries any bytes.
func literal(s string) string { return "{" + strconv.Itoa(len(s)) + "}\r\n" + s }
