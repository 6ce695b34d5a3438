package indexer

import (
	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/index/scorch/mergeplan"
	"github.com/blevesearch/bleve/v2/mapping"

	"mailvault/query"
)

// The analyser and field names are the query package's (query/schema.go), so
// that translated queries and indexed documents agree. The analyser
// (analysis.go) splits on Unicode word boundaries, lowercases, splits dotted
// names and addresses into parts and adds diacritic-free forms; it keeps stop
// words (a phrase like "to be or not to be" must stay findable) and does not
// stem: an archive is searched for what was written.
const textAnalyzer = query.TextAnalyzer

// fieldTime is the Date: header as Unix seconds, for newer_than: and
// older_than: (range queries on its terms; no doc values since mapping 8:
// the date sorts read fieldSortTime).
const fieldTime = query.IndexTime

// fieldPlace holds account + "\x00" + mailbox for each place of a message, so
// that an account and a mailbox filter together match that mailbox of that
// account, not the mailbox name in any account (query.Place).
const fieldPlace = query.IndexPlace

func placeKey(account, mailbox string) string { return query.PlaceKey(account, mailbox) }

// newMapping returns the index mapping: one document per unique message, no
// stored fields (the catalog and the blob hold everything shown to a user), and
// term vectors on text fields because phrase queries need positions.
// mappingVersion names the index mapping. An index made with another is
// rebuilt when the archive is opened for writing (the index is a cache).
// 2: doc values on day, place and has_attachment, for facets.
// 3: sender (facet) and refs (replies).
// 5: list (List-Id, list:), flag (flags per place, is:), doc values on
// size (sort by size). (4 was never used.)
// 6: the mv_parts chain (analysis.go): dotted names, URLs, addresses and
// hyphenated words split into their parts, possessives dropped, diacritics
// folded beside the exact form; addresses and file names no longer indexed
// a second time with punctuation split.
// 7: Hangul and katakana runs cut into their characters, like ideographs
// (a word inside a Korean sentence or a katakana compound is findable).
// 8: sorting and the timeline read keyword doc values of one term a
// message (fieldSortTime, fieldSortSize, fieldDayKey) instead of the
// numeric fields' (sortfields.go says why); the numeric fields keep their
// terms for range queries, without doc values.
// 9: rcpt (envelope recipients of journaled copies, rcpt:), and bcc
// holding the blind envelope recipients too (issue 16).
// 10: the blind envelope recipients in bcc_envelope instead of bcc, and
// envelope (per-account envelope terms, for scoped callers).
const mappingVersion = "10"

// fieldSender is the first From: address, lower-cased (keyword, doc values:
// the sender facet). fieldRefs holds the Message-IDs a message refers to
// (References, In-Reply-To; keyword), to find the replies to a message.
const (
	fieldSender = "sender"
	fieldRefs   = "refs"
)

// mappingKey is the index-internal key that holds the mapping version.
var mappingKey = []byte("mailvault.mapping")

func newMapping() (mapping.IndexMapping, error) {
	m := bleve.NewIndexMapping()
	if err := addAnalyzers(m); err != nil {
		return nil, err
	}
	m.DefaultAnalyzer = textAnalyzer
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false

	text := func() *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = textAnalyzer
		f.Store = false
		f.IncludeInAll = false
		f.IncludeTermVectors = true
		f.DocValues = false
		return f
	}
	num := func(docValues bool) *mapping.FieldMapping {
		f := bleve.NewNumericFieldMapping()
		f.Store = false
		f.IncludeInAll = false
		f.DocValues = docValues
		return f
	}
	kw := func() *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer = keyword.Name
		f.Store = false
		f.IncludeInAll = false
		f.IncludeTermVectors = false
		f.DocValues = false
		return f
	}
	doc := bleve.NewDocumentStaticMapping()
	for _, name := range query.TextFields() {
		doc.AddFieldMappingsAt(name, text())
	}
	// The numeric fields answer range queries; sorting and the timeline
	// read the one-term keyword fields below instead (sortfields.go).
	doc.AddFieldMappingsAt(query.IndexDay, num(false))
	doc.AddFieldMappingsAt(fieldTime, num(false))
	doc.AddFieldMappingsAt(query.IndexSize, num(false))
	for _, name := range []string{fieldSortTime, fieldSortSize, fieldDayKey} {
		f := kw() // indexed too: Bleve writes doc values only for indexed fields
		f.DocValues = true
		doc.AddFieldMappingsAt(name, f)
	}
	b := bleve.NewBooleanFieldMapping()
	b.Store, b.IncludeInAll, b.DocValues = false, false, true // doc values: the attachment facet
	doc.AddFieldMappingsAt(query.IndexHasAttachment, b)
	doc.AddFieldMappingsAt(query.IndexAccount, kw())
	doc.AddFieldMappingsAt(query.IndexMailbox, kw())
	place := kw()
	place.DocValues = true // the account and mailbox facets
	doc.AddFieldMappingsAt(fieldPlace, place)
	sender := kw()
	sender.DocValues = true
	doc.AddFieldMappingsAt(fieldSender, sender)
	doc.AddFieldMappingsAt(fieldRefs, kw())
	doc.AddFieldMappingsAt(query.IndexList, text())        // list: (List-Id)
	doc.AddFieldMappingsAt(query.IndexRcpt, text())        // rcpt: (envelope recipients)
	doc.AddFieldMappingsAt(query.IndexBccEnvelope, text()) // bcc: (blind envelope recipients)
	doc.AddFieldMappingsAt(query.IndexEnvelope, kw())      // scoped bcc: and rcpt: (EnvelopeIn)
	doc.AddFieldMappingsAt(query.IndexFlag, kw())          // is: (flags per place)
	// No "_all" composite field: queries name their fields, and building it
	// cost a tenth of all allocations during import.
	doc.AddSubDocumentMapping("_all", bleve.NewDocumentDisabledMapping())
	m.DefaultMapping = doc
	m.DefaultType = "message"
	return m, nil
}

// maxSegmentDocs caps the documents in one index segment, for the
// background merger and for Compact alike (issue 14). Bleve's default lets
// merges grow segments to 5 million documents and Compact merged everything
// into one; a merge maps every segment it reads, so its resident memory grew
// with the archive: a 200,000-message import peaked at 1,053 MB RSS in the
// final one-segment merge of an 834 MB index. With the cap, no merge reads
// or writes more than about maxSegmentDocs documents (segments of 4.2 KB a
// message at the scale set: ~270 MB), whatever the archive's size, and the
// cost of a merge per message stays flat. The price is more segments for a
// search to visit at large sizes: 1,000,000 messages are 16-32 segments of
// 32k-64k documents instead of a few (docs/benchmarks.md, "Scale (issue
// 14)", measures the search latency that results). An archive below the cap
// still compacts into one segment.
const maxSegmentDocs = 1 << 16

// mergePlan is the background merger's policy: Bleve's tiered default with
// segments capped at maxSegmentDocs. It goes in the index config
// (scorchMergePlanOptions, which Bleve reads back through JSON: hence the
// map, since MergePlanOptions has func fields), so it applies to every index
// opened for writing.
func mergePlan() map[string]any {
	o := mergeplan.DefaultMergePlanOptions
	return map[string]any{
		"MaxSegmentsPerTier":   o.MaxSegmentsPerTier,
		"MaxSegmentSize":       int64(maxSegmentDocs),
		"MaxSegmentFileSize":   o.MaxSegmentFileSize,
		"TierGrowth":           o.TierGrowth,
		"SegmentsPerMergeTask": o.SegmentsPerMergeTask,
		"FloorSegmentSize":     o.FloorSegmentSize,
		"ReclaimDeletesWeight": o.ReclaimDeletesWeight,
	}
}

// compactPlan is Compact's: as few segments as the cap allows (Bleve's
// single-segment plan, capped). A segment is merged while it holds fewer
// than maxSegmentDocs/2 documents, so Compact leaves segments of
// maxSegmentDocs/2 to maxSegmentDocs documents, and the rest.
func compactPlan() *mergeplan.MergePlanOptions {
	o := mergeplan.SingleSegmentMergePlanOptions
	o.MaxSegmentSize = maxSegmentDocs
	o.FloorSegmentSize = maxSegmentDocs
	return &o
}
