package query

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	bleveq "github.com/blevesearch/bleve/v2/search/query"
)

// ErrSubstring is returned by Bleve for a MatchSubstring node: a token index
// cannot answer substring matches without a verification step.
var ErrSubstring = errors.New("substring matching not supported yet")

// now is the clock of newer_than: and older_than: (tests set it). It is the
// one thing translation reads besides its argument.
var now = time.Now

// Bleve translates n into a Bleve query over the fields of schema.go. It
// builds the query programmatically; every text query relies on the
// analyser QueryAnalyzer (the index analyses its fields with TextAnalyzer).
//
// Keys that Bleve cannot answer are errors: MatchSubstring (ErrSubstring)
// and internal dates, which are facts of occurrences held by the catalog.
func Bleve(n Node) (bleveq.Query, error) {
	return translate(n, 0)
}

func translate(n Node, depth int) (bleveq.Query, error) {
	if depth > 2*maxDepth {
		return nil, fmt.Errorf("query nested too deeply (more than %d levels)", 2*maxDepth)
	}
	switch n := n.(type) {
	case And:
		return translateAnd(n, depth)
	case Or:
		if len(n.Nodes) == 0 {
			return bleveq.NewMatchNoneQuery(), nil
		}
		qs := make([]bleveq.Query, len(n.Nodes))
		for i, c := range n.Nodes {
			q, err := translate(c, depth+1)
			if err != nil {
				return nil, err
			}
			qs[i] = q
		}
		return disjunction(qs), nil
	case Not:
		q, err := translate(n.Node, depth+1)
		if err != nil {
			return nil, err
		}
		return exclude(nil, []bleveq.Query{q}), nil
	case All:
		return bleveq.NewMatchAllQuery(), nil
	case Text:
		return translateText(n)
	case Date:
		return translateDate(n)
	case Size:
		b := float64(n.Bytes)
		excl := false
		var q *bleveq.NumericRangeQuery
		if n.Larger {
			q = bleveq.NewNumericRangeInclusiveQuery(&b, nil, &excl, nil)
		} else {
			q = bleveq.NewNumericRangeInclusiveQuery(nil, &b, nil, &excl)
		}
		q.SetField(IndexSize)
		return q, nil
	case HasAttachment:
		q := bleveq.NewBoolFieldQuery(true)
		q.SetField(IndexHasAttachment)
		return q, nil
	case Account:
		if n.Name == "" {
			return nil, errors.New("account: empty name")
		}
		q := bleveq.NewTermQuery(n.Name)
		q.SetField(IndexAccount)
		return q, nil
	case Mailbox:
		if n.Name == "" {
			return nil, errors.New("mailbox: empty name")
		}
		q := bleveq.NewTermQuery(CanonicalMailbox(n.Name))
		q.SetField(IndexMailbox)
		return q, nil
	case Place:
		q := bleveq.NewTermQuery(PlaceKey(n.Account, n.Mailbox))
		q.SetField(IndexPlace)
		return q, nil
	case EnvelopeIn:
		if strings.TrimSpace(n.Addr) == "" || len(n.Accounts) == 0 {
			return bleveq.NewMatchNoneQuery(), nil
		}
		qs := make([]bleveq.Query, len(n.Accounts))
		for i, a := range n.Accounts {
			k := EnvelopeKey(a, n.Addr)
			if n.Blind {
				k = EnvelopeBlindKey(a, n.Addr)
			}
			t := bleveq.NewTermQuery(k)
			t.SetField(IndexEnvelope)
			qs[i] = t
		}
		return disjunction(qs), nil
	case Flag:
		// Any occurrence of the message; the indexer writes a scoped
		// search's flags as FlagIn before translating.
		if n.Name == "" {
			return nil, errors.New("flag: empty name")
		}
		q := bleveq.NewTermQuery(FlagKey(n.Name))
		q.SetField(IndexFlag)
		return q, nil
	case FlagIn:
		if n.Flag == "" {
			return nil, errors.New("flag: empty name")
		}
		if len(n.Places) == 0 {
			return bleveq.NewMatchNoneQuery(), nil
		}
		qs := make([]bleveq.Query, len(n.Places))
		for i, p := range n.Places {
			t := bleveq.NewTermQuery(FlagPlaceKey(p.Account, p.Mailbox, n.Flag))
			t.SetField(IndexFlag)
			qs[i] = t
		}
		return disjunction(qs), nil
	case Age:
		if n.Count < 1 || n.Count > maxAge || !strings.ContainsRune("dwmy", rune(n.Unit)) {
			return nil, fmt.Errorf("bad age %s", n)
		}
		t := float64(n.Cutoff(now()).Unix())
		yes, no := true, false
		var q *bleveq.NumericRangeQuery
		if n.Newer {
			q = bleveq.NewNumericRangeInclusiveQuery(&t, nil, &yes, nil)
		} else {
			q = bleveq.NewNumericRangeInclusiveQuery(nil, &t, nil, &no)
		}
		q.SetField(IndexTime)
		return q, nil
	case nil:
		return nil, errors.New("translate: nil node")
	}
	return nil, fmt.Errorf("translate: unknown node %T", n)
}

// translateAnd gathers the negated conjuncts into one MustNot, so that
// "a -b -c" is a single boolean query and "-b -c" is all documents except
// b or c.
func translateAnd(n And, depth int) (bleveq.Query, error) {
	var must, mustNot []bleveq.Query
	for _, c := range n.Nodes {
		neg := false
		if x, ok := c.(Not); ok {
			neg, c = true, x.Node
		}
		q, err := translate(c, depth+1)
		if err != nil {
			return nil, err
		}
		if neg {
			mustNot = append(mustNot, q)
		} else {
			must = append(must, q)
		}
	}
	if len(mustNot) == 0 {
		switch len(must) {
		case 0:
			return bleveq.NewMatchAllQuery(), nil
		case 1:
			return must[0], nil
		}
		return bleveq.NewConjunctionQuery(must), nil
	}
	return exclude(must, mustNot), nil
}

// exclude returns the documents that match all of must (every document if
// must is empty) and none of mustNot. It keeps the shape Bleve's JSON form
// requires: a conjunction for Must and a disjunction for MustNot.
func exclude(must, mustNot []bleveq.Query) bleveq.Query {
	if len(must) == 0 {
		must = []bleveq.Query{bleveq.NewMatchAllQuery()}
	}
	q := bleveq.NewBooleanQuery(must, nil, mustNot)
	q.MustNot.(*bleveq.DisjunctionQuery).SetMin(1)
	return q
}

func disjunction(qs []bleveq.Query) bleveq.Query {
	if len(qs) == 1 {
		return qs[0]
	}
	q := bleveq.NewDisjunctionQuery(qs)
	q.SetMin(1)
	return q
}

// fields returns the index fields that f searches.
func fields(f Field) ([]string, error) {
	switch f {
	case FieldText:
		return TextFields(), nil
	case FieldFrom:
		return []string{IndexFrom}, nil
	case FieldTo:
		return []string{IndexTo}, nil
	case FieldCc:
		return []string{IndexCc}, nil
	case FieldBcc:
		// The header and the blind envelope recipients of journaled copies.
		return []string{IndexBcc, IndexBccEnvelope}, nil
	case FieldBccHeader:
		return []string{IndexBcc}, nil
	case FieldRcptHeader:
		return []string{IndexTo, IndexCc, IndexBcc}, nil
	case FieldSubject:
		return []string{IndexSubject}, nil
	case FieldBody:
		return []string{IndexBody}, nil
	case FieldAttachment:
		return []string{IndexAttachment, IndexAttachmentText}, nil
	case FieldFilename:
		return []string{IndexAttachment}, nil
	case FieldList:
		return []string{IndexList}, nil
	case FieldRcpt:
		// Every recipient: the headers, and the envelope of journaled
		// copies (IndexRcpt holds all of the envelope's).
		return []string{IndexTo, IndexCc, IndexBcc, IndexRcpt}, nil
	}
	return nil, fmt.Errorf("translate: unknown field %d", int(f))
}

func translateText(n Text) (bleveq.Query, error) {
	fs, err := fields(n.Field)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(n.Value) == "" {
		return nil, fmt.Errorf("%s: empty value", n.Field)
	}
	// perField builds one query per field and ORs them.
	perField := func(mk func(field string) bleveq.Query) bleveq.Query {
		qs := make([]bleveq.Query, len(fs))
		for i, f := range fs {
			qs[i] = mk(f)
		}
		return disjunction(qs)
	}
	switch n.Match {
	case MatchWords:
		words := strings.Fields(n.Value)
		qs := make([]bleveq.Query, len(words))
		for i, w := range words {
			qs[i] = perField(func(field string) bleveq.Query { return wordQuery(w, field) })
		}
		if len(qs) == 1 {
			return qs[0], nil
		}
		return bleveq.NewConjunctionQuery(qs), nil
	case MatchPhrase:
		return perField(func(field string) bleveq.Query {
			q := bleveq.NewMatchPhraseQuery(n.Value)
			q.SetField(field)
			q.Analyzer = QueryAnalyzer
			return q
		}), nil
	case MatchPrefix:
		if err := checkPrefix(n.Value); err != nil {
			return nil, err
		}
		pre := strings.Map(unicode.ToLower, n.Value)
		return perField(func(field string) bleveq.Query { return prefixQuery(pre, field) }), nil
	case MatchSubstring:
		return nil, fmt.Errorf("%s: %w", n.Field, ErrSubstring)
	}
	return nil, fmt.Errorf("translate: unknown match %d", int(n.Match))
}

// prefixQuery matches the lower-case prefix pre in field. The index holds
// the parts of a token with punctuation (lists.sourceforge.net: lists,
// sourceforge, net), so a prefix with punctuation, lists.sourcef, is the
// phrase of its leading parts and a prefix of its last part, both in the
// field: not necessarily adjacent, which a prefix's expansion over the term
// dictionary cannot ask for.
func prefixQuery(pre, field string) bleveq.Query {
	parts := strings.FieldsFunc(pre, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
	if len(parts) == 0 {
		parts = []string{pre}
	}
	last := bleveq.NewPrefixQuery(parts[len(parts)-1])
	last.SetField(field)
	if len(parts) == 1 {
		return last
	}
	lead := bleveq.NewMatchPhraseQuery(strings.Join(parts[:len(parts)-1], " "))
	lead.SetField(field)
	lead.Analyzer = QueryAnalyzer
	return bleveq.NewConjunctionQuery([]bleveq.Query{lead, last})
}

// wordQuery matches one white-space-free word in field. A word of ASCII
// letters and digits is one token; any other word may analyse into several
// tokens (alice@example.org, e-mail, ideographs), which must then be
// adjacent: a phrase.
func wordQuery(w, field string) bleveq.Query {
	simple := true
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			simple = false
			break
		}
	}
	if simple {
		q := bleveq.NewMatchQuery(w)
		q.SetOperator(bleveq.MatchQueryOperatorAnd)
		q.SetField(field)
		q.Analyzer = QueryAnalyzer
		return q
	}
	q := bleveq.NewMatchPhraseQuery(w)
	q.SetField(field)
	q.Analyzer = QueryAnalyzer
	return q
}

func translateDate(n Date) (bleveq.Query, error) {
	if n.Internal {
		return nil, errors.New("internal dates (BEFORE, ON, SINCE) are occurrence keys, not in the index")
	}
	y, m, d, ok := parseDay(fmt.Sprintf("%04d-%02d-%02d", n.Year, int(n.Month), n.Day))
	if !ok || n.Year > 9999 {
		return nil, fmt.Errorf("bad date %s", n)
	}
	day := float64(dayNumber(y, m, d))
	yes, no := true, false
	var q *bleveq.NumericRangeQuery
	switch n.Op {
	case DateBefore:
		q = bleveq.NewNumericRangeInclusiveQuery(nil, &day, nil, &no)
	case DateOn:
		q = bleveq.NewNumericRangeInclusiveQuery(&day, &day, &yes, &yes)
	case DateSince:
		q = bleveq.NewNumericRangeInclusiveQuery(&day, nil, &yes, nil)
	default:
		return nil, fmt.Errorf("translate: unknown date op %d", int(n.Op))
	}
	q.SetField(IndexDay)
	return q, nil
}
