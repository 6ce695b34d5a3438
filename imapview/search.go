package imapview

import (
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
	text, err := sel.criteriaText(criteria, 0)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: err.Error()}
	}
	n, err := query.ParseIMAP(text)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: clip(err.Error(), 300)}
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	uids, err := ss.s.opts.Archive.ViewSearch(ctx, *ss.caller, sel.f, n, readable(text))
	if err != nil {
		return nil, ss.serviceError("search", err)
	}
	ss.s.metrics.searches.Inc()
	data := &imap.SearchData{}
	var nums []uint32
	if kind == imapserver.NumKindUID {
		var set imap.UIDSet
		for _, u := range uids {
			set.AddNum(imap.UID(u))
		}
		data.All, nums = set, uids
	} else {
		var set imap.SeqSet
		for _, u := range uids {
			i := sort.Search(len(sel.msgs), func(i int) bool { return sel.msgs[i].UID >= u })
			if i < len(sel.msgs) && sel.msgs[i].UID == u {
				set.AddNum(uint32(i + 1))
				nums = append(nums, uint32(i+1))
			}
		}
		data.All = set
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

// criteriaText writes criteria as IMAP SEARCH text for query.ParseIMAP.
func (sel *selected) criteriaText(c *imap.SearchCriteria, depth int) (string, error) {
	if depth > maxCriteriaDepth {
		return "", fmt.Errorf("search criteria nested more than %d deep", maxCriteriaDepth)
	}
	var keys []string
	add := func(k ...string) { keys = append(keys, strings.Join(k, " ")) }
	for _, set := range c.SeqNum {
		var uids imap.UIDSet
		for _, i := range sel.resolve(set) {
			uids.AddNum(imap.UID(sel.msgs[i].UID))
		}
		add(uidKey(uids))
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
		add(sel.flagKey(f, false))
	}
	for _, f := range c.NotFlag {
		add(sel.flagKey(f, true))
	}
	if c.Larger > 0 {
		add("LARGER", strconv.FormatInt(c.Larger, 10))
	}
	if c.Smaller > 0 {
		add("SMALLER", strconv.FormatInt(c.Smaller, 10))
	}
	for i := range c.Not {
		sub, err := sel.criteriaText(&c.Not[i], depth+1)
		if err != nil {
			return "", err
		}
		add("NOT", "("+sub+")")
	}
	for i := range c.Or {
		a, err := sel.criteriaText(&c.Or[i][0], depth+1)
		if err != nil {
			return "", err
		}
		b, err := sel.criteriaText(&c.Or[i][1], depth+1)
		if err != nil {
			return "", err
		}
		add("OR", "("+a+")", "("+b+")")
	}
	if c.ModSeq != nil {
		return "", fmt.Errorf("MODSEQ needs CONDSTORE, which this server does not offer")
	}
	if len(keys) == 0 {
		return "ALL", nil
	}
	return strings.Join(keys, " "), nil
}

// flagKey is the key for a flag (not: its negation). $Expunged is not a
// stored flag: it is the set of copies the server has expunged.
func (sel *selected) flagKey(f imap.Flag, not bool) string {
	if strings.EqualFold(string(f), ExpungedKeyword) {
		var uids imap.UIDSet
		for _, m := range sel.msgs {
			if m.Expunged != "" {
				uids.AddNum(imap.UID(m.UID))
			}
		}
		if not {
			return "NOT (" + uidKey(uids) + ")"
		}
		return uidKey(uids)
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
