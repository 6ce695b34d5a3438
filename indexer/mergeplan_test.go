package indexer

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/blevesearch/bleve/v2/index/scorch/mergeplan"
)

// planSegment is a segment as the merge planner sees it.
type planSegment struct {
	id   uint64
	docs int64
}

func (s planSegment) Id() uint64          { return s.id }
func (s planSegment) FullSize() int64     { return s.docs }
func (s planSegment) LiveSize() int64     { return s.docs }
func (s planSegment) HasVector() bool     { return false }
func (s planSegment) FileSize() int64     { return s.docs * 4200 }
func (s planSegment) LiveFileSize() int64 { return s.docs * 4200 }

// forceMerge runs the planner the way scorch's ForceMerge does: plan, merge
// every task, again until nothing is left to merge; it returns the segment
// sizes and the largest merge (documents written by one task).
func forceMerge(t *testing.T, segs []int64, o *mergeplan.MergePlanOptions) ([]int64, int64) {
	t.Helper()
	var cur []mergeplan.Segment
	id := uint64(0)
	for _, d := range segs {
		id++
		cur = append(cur, planSegment{id, d})
	}
	var largest int64
	for round := 0; ; round++ {
		if round > 100 {
			t.Fatal("force merge does not converge")
		}
		plan, err := mergeplan.Plan(cur, o)
		if err != nil {
			t.Fatal(err)
		}
		if plan == nil || len(plan.Tasks) == 0 {
			break
		}
		merged := map[uint64]bool{}
		for _, task := range plan.Tasks {
			var sum int64
			for _, s := range task.Segments {
				merged[s.Id()] = true
				sum += s.LiveSize()
			}
			largest = max(largest, sum)
			id++
			cur = append(cur, planSegment{id, sum})
		}
		var keep []mergeplan.Segment
		for _, s := range cur {
			if !merged[s.Id()] {
				keep = append(keep, s)
			}
		}
		cur = keep
	}
	var out []int64
	for _, s := range cur {
		out = append(out, s.LiveSize())
	}
	return out, largest
}

// TestMergePlanCap: Compact and the background merger never write a segment
// over maxSegmentDocs, whatever the archive's size (issue 14: a merge maps
// what it reads, so an uncapped one grows with the archive), and an archive
// below the cap still compacts into one segment. Bleve reads the merger's
// options back through JSON: they must survive it and validate.
func TestMergePlanCap(t *testing.T) {
	for _, tc := range []struct {
		name string
		segs int   // flushed segments of 1,000 documents (one import batch each)
		want int64 // max segments after Compact
	}{
		{"6k", 6, 1},
		{"20k", 20, 1},
		{"60k", 60, 1},
		{"200k", 200, 7},
		{"1M", 1000, 31},
	} {
		t.Run(tc.name, func(t *testing.T) {
			segs := make([]int64, tc.segs)
			for i := range segs {
				segs[i] = 1000
			}
			out, largest := forceMerge(t, segs, compactPlan())
			var total int64
			for _, d := range out {
				total += d
				if d > maxSegmentDocs {
					t.Errorf("segment of %d documents, over the cap %d", d, maxSegmentDocs)
				}
			}
			if total != int64(tc.segs)*1000 {
				t.Fatalf("documents after merging: %d, want %d", total, tc.segs*1000)
			}
			if largest > maxSegmentDocs {
				t.Errorf("a merge wrote %d documents, over the cap %d", largest, maxSegmentDocs)
			}
			if int64(len(out)) > tc.want {
				t.Errorf("Compact left %d segments (%v), want at most %d", len(out), out, tc.want)
			}
			// The uncapped single-segment plan (what Compact used before)
			// writes the whole archive in one merge.
			if _, all := forceMerge(t, segs, &mergeplan.SingleSegmentMergePlanOptions); tc.segs > 100 && all <= maxSegmentDocs {
				t.Errorf("the single-segment plan's largest merge is %d: the test does not tell the plans apart", all)
			}
		})
	}

	b, err := json.Marshal(mergePlan())
	if err != nil {
		t.Fatal(err)
	}
	o := mergeplan.DefaultMergePlanOptions
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if err := mergeplan.ValidateMergePlannerOptions(&o); err != nil {
		t.Fatal(err)
	}
	if o.MaxSegmentSize != maxSegmentDocs {
		t.Fatalf("background merger's MaxSegmentSize after JSON: %d, want %d", o.MaxSegmentSize, maxSegmentDocs)
	}
	// The background merger on a growing archive: segments of 1,000
	// documents arrive one by one and are merged as the planner says.
	var segs []int64
	var largest int64
	for range 300 {
		segs = append(segs, 1000)
		var l int64
		segs, l = forceMerge(t, segs, &o)
		largest = max(largest, l)
	}
	if largest > maxSegmentDocs {
		t.Errorf("background merge wrote %d documents, over the cap %d", largest, maxSegmentDocs)
	}
	t.Logf("background merging of 300,000 documents: %d segments %v, largest merge %s documents", len(segs), segs, fmt.Sprint(largest))
}
