package harvest

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// Budget is a process-wide bound on the bytes of fetched messages waiting
// to be stored: a harvester takes a chunk's size from it (by the sizes the
// server gives) before fetching the chunk and gives it back once the chunk
// is stored. Many accounts catching up at once then wait for each other
// instead of each holding FetchBytes.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
}

// NewBudget returns a Budget of n bytes.
func NewBudget(n int64) *Budget { return &Budget{sem: semaphore.NewWeighted(n), size: n} }

// acquire takes n bytes (at most the whole budget: one message larger than
// the budget waits for all of it, and then goes alone).
func (b *Budget) acquire(ctx context.Context, n int64) (release func(), err error) {
	if b == nil {
		return func() {}, nil
	}
	n = max(1, min(n, b.size))
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { b.sem.Release(n) }, nil
}
