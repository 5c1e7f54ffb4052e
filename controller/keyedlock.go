package controller

import (
	"context"
	"sync"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// keyedLock is one mutex per guest ID, taken around every action the
// controller runs on a guest. The workqueue already keeps one key from two
// workers, but a key's plan reaches other guests too (the missing
// dependencies of a chain): two guests sharing a missing dependency must
// not both create it. Waiting honours the context; an entry lives only
// while someone holds or waits for it, so 10,000 guests leave no residue.
type keyedLock struct {
	mu    sync.Mutex
	locks map[api.ID]*keyEntry
}

type keyEntry struct {
	ch   chan struct{}
	refs int
}

func newKeyedLock() *keyedLock { return &keyedLock{locks: map[api.ID]*keyEntry{}} }

// lock takes id's lock, or gives up when ctx ends. The returned func
// releases it.
func (k *keyedLock) lock(ctx context.Context, id api.ID) (func(), error) {
	k.mu.Lock()
	e := k.locks[id]
	if e == nil {
		e = &keyEntry{ch: make(chan struct{}, 1)}
		k.locks[id] = e
	}
	e.refs++
	k.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() {
			<-e.ch
			k.put(id, e)
		}, nil
	case <-ctx.Done():
		k.put(id, e)
		return nil, ctx.Err()
	}
}

func (k *keyedLock) put(id api.ID, e *keyEntry) {
	k.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(k.locks, id)
	}
	k.mu.Unlock()
}
