package lock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// acquired runs lock in a goroutine and returns a channel that yields its
// unlock func once it holds the lock.
func acquired(t *testing.T, lock func(context.Context, int) (func(), error)) <-chan func() {
	t.Helper()
	got := make(chan func(), 1)
	go func() {
		u, err := lock(context.Background(), 1)
		if err != nil {
			close(got)
			return
		}
		got <- u
	}()
	return got
}

func held(ch <-chan func()) (func(), bool) {
	select {
	case u, ok := <-ch:
		return u, ok
	case <-time.After(50 * time.Millisecond):
		return nil, false
	}
}

func TestKeyed_readersShareAWriterWaits(t *testing.T) {
	var k Keyed[int]
	ctx := context.Background()
	r1, err := k.RLock(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, ok := held(acquired(t, k.RLock))
	if !ok {
		t.Fatal("a second reader waited for the first")
	}
	w := acquired(t, k.Lock)
	if _, ok := held(w); ok {
		t.Fatal("a writer took the lock while two readers held it")
	}
	r1()
	if _, ok := held(w); ok {
		t.Fatal("a writer took the lock while a reader still held it")
	}
	r2()
	wu, ok := held(w)
	if !ok {
		t.Fatal("the writer did not get the lock once the readers let go")
	}
	r := acquired(t, k.RLock)
	if _, ok := held(r); ok {
		t.Fatal("a reader took the lock while the writer held it")
	}
	wu()
	ru, ok := held(r)
	if !ok {
		t.Fatal("the reader did not get the lock once the writer let go")
	}
	ru()
	if n := entries(&k); n != 0 {
		t.Errorf("%d entries left after every holder released", n)
	}
}

func TestKeyed_waitingWriterHoldsBackNewReaders(t *testing.T) {
	var k Keyed[int]
	ctx := context.Background()
	r1, _ := k.RLock(ctx, 1)
	w := acquired(t, k.Lock)
	if _, ok := held(w); ok {
		t.Fatal("the writer took a lock a reader holds")
	}
	late := acquired(t, k.RLock)
	if _, ok := held(late); ok {
		t.Fatal("a new reader went ahead of a waiting writer")
	}
	r1()
	wu, ok := held(w)
	if !ok {
		t.Fatal("the writer did not get the lock")
	}
	if _, ok := held(late); ok {
		t.Fatal("the late reader took the lock while the writer held it")
	}
	wu()
	if u, ok := held(late); !ok {
		t.Fatal("the late reader never got the lock")
	} else {
		u()
	}
}

func TestKeyed_writerGivingUpLetsReadersIn(t *testing.T) {
	var k Keyed[int]
	r1, _ := k.RLock(context.Background(), 1)
	defer r1()
	ctx, cancel := context.WithCancel(context.Background())
	w := make(chan error, 1)
	go func() {
		_, err := k.Lock(ctx, 1)
		w <- err
	}()
	// The writer must be waiting before the reader comes.
	deadline := time.Now().Add(5 * time.Second)
	for waitingWriters(&k, 1) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer never queued")
		}
		time.Sleep(time.Millisecond)
	}
	late := acquired(t, k.RLock)
	if _, ok := held(late); ok {
		t.Fatal("a new reader went ahead of a waiting writer")
	}
	cancel()
	if err := <-w; !errors.Is(err, context.Canceled) {
		t.Fatalf("the writer's Lock = %v, want context.Canceled", err)
	}
	u, ok := held(late)
	if !ok {
		t.Fatal("readers held back by a writer that gave up still wait")
	}
	u()
}

func TestKeyed_noWriterAmongReaders(t *testing.T) {
	var k Keyed[int]
	var mu sync.Mutex
	readers, writers, bad := 0, 0, 0
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			lock := k.RLock
			if i%4 == 0 {
				lock = k.Lock
			}
			u, err := lock(context.Background(), 7)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if i%4 == 0 {
				writers++
			} else {
				readers++
			}
			if writers > 1 || (writers == 1 && readers > 0) {
				bad++
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			if i%4 == 0 {
				writers--
			} else {
				readers--
			}
			mu.Unlock()
			u()
		})
	}
	wg.Wait()
	if bad != 0 {
		t.Errorf("%d times a writer held the lock with another holder", bad)
	}
	if n := entries(&k); n != 0 {
		t.Errorf("%d entries left after every holder released", n)
	}
}

func entries(k *Keyed[int]) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.locks)
}

func waitingWriters(k *Keyed[int], key int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := k.locks[key]; e != nil {
		return e.writersWaiting
	}
	return 0
}
