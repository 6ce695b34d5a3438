package indexer

import (
	"fmt"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/blevesearch/bleve/v2/search"

	"mailvault/query"
)

// Sort keys as keyword doc values, one term a message (mapping 8).
//
// Bleve keeps a numeric field's doc values as every precision term of the
// value (16 for a float64), and zap decodes doc values a chunk of 1,024
// documents at a time. A search sorted by a numeric field decoded nearly
// every chunk of the field (any query matching more than a few thousand
// messages touches them all): about 150 KB of snappy a chunk, two thirds of
// a 200,000-message archive's search time for "razor" (8,043 hits, 24 ms,
// profile in docs/benchmarks.md), and five times that at a million. The
// keys below are short fixed-width strings that sort as their values do,
// so a chunk is about 12 KB.
const (
	fieldSortTime = "sort_time" // the Date: header's Unix seconds, sortTimeKey
	fieldSortSize = "sort_size" // the raw message's size, sortSizeKey
	fieldDayKey   = "day_key"   // the sent day as query.IndexDay has it, YYYYMMDD
)

// sortKeyOffset makes a Unix time non-negative for the hex key: 2^40
// seconds is about 34,800 years either side of 1970.
const sortKeyOffset = 1 << 40

// sortTimeKey is t's key: Unix seconds + 2^40 as 11 hex digits, clamped to
// what 11 digits hold, so that keys sort as times do.
func sortTimeKey(t time.Time) string {
	u := max(t.Unix()+sortKeyOffset, 0)
	return fmt.Sprintf("%011x", min(u, 1<<44-1))
}

// sortSizeKey is a size's key: 11 hex digits (up to 16 TiB).
func sortSizeKey(n int64) string { return fmt.Sprintf("%011x", min(max(n, 0), 1<<44-1)) }

// dayKey is the sent day's key: query.DayValue as 8 digits.
func dayKey(t time.Time) string { return fmt.Sprintf("%08d", query.DayValue(t)) }

// sortOrder is Bleve's sort for the field names sortKeys gives: a leading
// "-" for descending, "_id" for the document id, every other field read as
// a string (the keys are strings; Bleve's automatic type would take some of
// them for numbers).
func sortOrder(keys []string) search.SortOrder {
	out := make(search.SortOrder, 0, len(keys))
	for _, k := range keys {
		desc := len(k) > 0 && k[0] == '-'
		if desc {
			k = k[1:]
		}
		if k == "_id" {
			out = append(out, &search.SortDocID{Desc: desc})
			continue
		}
		out = append(out, &search.SortField{Field: k, Desc: desc, Type: search.SortFieldAsString})
	}
	return out
}

// sortBy sets req's order to the field names sortKeys gives. An index of
// an older mapping (a read-only open found one: oldMapping; only a writer
// rebuilds it) has no sort keys: sorted on them, every hit would be
// "missing" and the order the ids'. It is sorted on the numeric fields
// instead, whose doc values mappings 5 to 7 kept, as they sorted then.
func (a *Archive) sortBy(req *bleve.SearchRequest, keys []string) {
	if a.oldMapping == "" {
		req.SortByCustom(sortOrder(keys))
		return
	}
	old := make([]string, len(keys))
	for i, k := range keys {
		desc := strings.HasPrefix(k, "-")
		switch strings.TrimPrefix(k, "-") {
		case fieldSortTime:
			k = fieldTime
		case fieldSortSize:
			k = query.IndexSize
		default:
			old[i] = k
			continue
		}
		if desc {
			k = "-" + k
		}
		old[i] = k
	}
	req.SortBy(old)
}

// oldMonthFacet is the timeline of an older mapping's index (no day_key):
// a numeric range on the day field for every month, as before mapping 8.
func oldMonthFacet() *bleve.FacetRequest {
	months := bleve.NewFacetRequest(query.IndexDay, (facetLastYear-facetFirstYear+1)*12)
	for y := facetFirstYear; y <= facetLastYear; y++ {
		for m := 1; m <= 12; m++ {
			lo := float64(y*10000 + m*100)
			hi := lo + 100
			months.AddNumericRange(fmt.Sprintf("%04d-%02d", y, m), &lo, &hi)
		}
	}
	return months
}
