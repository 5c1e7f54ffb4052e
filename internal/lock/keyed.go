package lock

import (
	"context"
	"sync"
)

// Keyed is one mutex per key. An entry lives only while someone holds or
// waits for it, so a keyed lock over 10,000 guests leaves no residue. The
// zero value is ready to use.
type Keyed[K comparable] struct {
	mu    sync.Mutex
	locks map[K]*keyEntry
}

type keyEntry struct {
	ch   chan struct{}
	refs int
}

// Lock takes key's lock, or gives up with ctx's error when ctx ends first.
// The returned func releases it.
func (k *Keyed[K]) Lock(ctx context.Context, key K) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[K]*keyEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyEntry{ch: make(chan struct{}, 1)}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() {
			<-e.ch
			k.put(key, e)
		}, nil
	case <-ctx.Done():
		k.put(key, e)
		return nil, ctx.Err()
	}
}

func (k *Keyed[K]) put(key K, e *keyEntry) {
	k.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(k.locks, key)
	}
	k.mu.Unlock()
}
