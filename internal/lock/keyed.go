package lock

import (
	"context"
	"sync"
)

// Keyed is one readers-writer lock per key. An entry lives only while
// someone holds or waits for it, so a keyed lock over 10,000 guests leaves
// no residue. The zero value is ready to use.
//
// A waiting writer holds back new readers: a guest that thousands of
// others depend on (a template) is read all the time, and its own
// reconcile must still get its turn.
type Keyed[K comparable] struct {
	mu    sync.Mutex
	locks map[K]*keyEntry
}

type keyEntry struct {
	refs    int // holders and waiters: the entry goes with the last
	readers int
	writer  bool
	// writersWaiting > 0 makes new readers wait.
	writersWaiting int
	// released is closed, and replaced, when the lock changes hands:
	// every waiter then tries again.
	released chan struct{}
}

// Lock takes key's lock alone, or gives up with ctx's error when ctx ends
// first. The returned func releases it.
func (k *Keyed[K]) Lock(ctx context.Context, key K) (func(), error) {
	return k.acquire(ctx, key, false)
}

// RLock takes key's lock shared with other readers: it waits for a writer
// that holds or waits for the lock, not for other readers.
func (k *Keyed[K]) RLock(ctx context.Context, key K) (func(), error) {
	return k.acquire(ctx, key, true)
}

func (k *Keyed[K]) acquire(ctx context.Context, key K, shared bool) (func(), error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.locks == nil {
		k.locks = map[K]*keyEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyEntry{released: make(chan struct{})}
		k.locks[key] = e
	}
	e.refs++
	queued := false
	for !e.take(shared) {
		if !shared && !queued {
			e.writersWaiting++
			queued = true
		}
		ch := e.released
		k.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		k.mu.Lock()
		if err != nil {
			if queued {
				e.writersWaiting--
				// Readers held back by this writer may go now.
				e.wake()
			}
			k.drop(key, e)
			return nil, err
		}
	}
	if queued {
		e.writersWaiting--
	}
	var once sync.Once
	return func() { once.Do(func() { k.release(key, e, shared) }) }, nil
}

// take takes the lock if it is free for this kind of holder.
func (e *keyEntry) take(shared bool) bool {
	switch {
	case e.writer:
		return false
	case shared && e.writersWaiting == 0:
		e.readers++
		return true
	case !shared && e.readers == 0:
		e.writer = true
		return true
	}
	return false
}

func (e *keyEntry) wake() {
	close(e.released)
	e.released = make(chan struct{})
}

func (k *Keyed[K]) release(key K, e *keyEntry, shared bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if shared {
		e.readers--
	} else {
		e.writer = false
	}
	if e.refs > 1 {
		e.wake()
	}
	k.drop(key, e)
}

// drop forgets one holder or waiter of e; k.mu is held.
func (k *Keyed[K]) drop(key K, e *keyEntry) {
	e.refs--
	if e.refs == 0 {
		delete(k.locks, key)
	}
}
