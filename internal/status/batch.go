package status

import (
	"context"
	"errors"
	"sync"
)

// Batch collects the queued status writes of one unit of work (the
// controller: one reconcile), so that its caller can go on and report the
// work only once all of them are on disk.
type Batch struct {
	mu      sync.Mutex
	pending []*Pending
}

// Add records a queued write.
func (b *Batch) Add(p *Pending) {
	b.mu.Lock()
	b.pending = append(b.pending, p)
	b.mu.Unlock()
}

// Len is the number of writes recorded.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Wait returns once every recorded write is on disk or failed, with the
// failures joined.
func (b *Batch) Wait() error {
	b.mu.Lock()
	pending := b.pending
	b.mu.Unlock()
	var errs []error
	for _, p := range pending {
		if err := p.Wait(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type batchKey struct{}

// WithBatch returns a context whose status writers may queue their writes
// in b rather than wait for the disk (see Store.UpdateAsync).
func WithBatch(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// BatchFrom returns the batch WithBatch put in ctx, or nil: then writes
// must wait for the disk.
func BatchFrom(ctx context.Context) *Batch {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	return b
}
