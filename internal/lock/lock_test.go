package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestKeyed_excludesOneKeyOnly(t *testing.T) {
	var k Keyed[int]
	ctx := context.Background()
	unlock, err := k.Lock(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Another key is free while 1 is held.
	u2, err := k.Lock(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	u2()

	got := make(chan struct{})
	go func() {
		u, err := k.Lock(ctx, 1)
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second Lock of a held key returned before the holder released it")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	<-got
	k.mu.Lock()
	n := len(k.locks)
	k.mu.Unlock()
	if n != 0 {
		t.Errorf("%d entries left after every holder released", n)
	}
}

func TestKeyed_waitEndsWithContext(t *testing.T) {
	var k Keyed[string]
	unlock, _ := k.Lock(context.Background(), "a")
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := k.Lock(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestKeyed_mutualExclusion(t *testing.T) {
	var k Keyed[int]
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := k.Lock(context.Background(), 7)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			if inside > maxInside {
				maxInside = inside
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			u()
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Errorf("%d holders of one key at once, want 1", maxInside)
	}
}

func openTwice(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.lock")
	a, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.OpenFile(p, os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestFlock_waitsForTheHolder(t *testing.T) {
	a, b := openTwice(t)
	if ok, err := TryFlock(a, syscall.LOCK_EX); !ok || err != nil {
		t.Fatalf("TryFlock on a free file = %v, %v", ok, err)
	}
	if ok, _ := TryFlock(b, syscall.LOCK_SH); ok {
		t.Fatal("a shared flock was granted while another file holds it exclusively")
	}
	done := make(chan error, 1)
	go func() { done <- Flock(context.Background(), b, syscall.LOCK_EX, time.Millisecond, time.Time{}) }()
	select {
	case err := <-done:
		t.Fatalf("Flock returned (%v) while the lock was held", err)
	case <-time.After(50 * time.Millisecond):
	}
	Unflock(a)
	if err := <-done; err != nil {
		t.Fatalf("Flock after release = %v", err)
	}
}

func TestFlock_deadlineAndContext(t *testing.T) {
	a, b := openTwice(t)
	if ok, _ := TryFlock(a, syscall.LOCK_EX); !ok {
		t.Fatal("could not take a free lock")
	}
	if err := Flock(context.Background(), b, syscall.LOCK_EX, time.Millisecond, time.Now()); !errors.Is(err, ErrTimeout) {
		t.Errorf("Flock past its deadline = %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Flock(ctx, b, syscall.LOCK_EX, time.Millisecond, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Flock with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestDir_locksPerKeyAcrossOpenFiles(t *testing.T) {
	d, err := NewDir(filepath.Join(t.TempDir(), "locks"))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := d.Lock(context.Background(), "941")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := d.Lock(ctx, "941"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock of a held key = %v, want it to wait until the context ends", err)
	}
	other, err := d.Lock(context.Background(), "953")
	if err != nil {
		t.Fatalf("another key is blocked: %v", err)
	}
	other()
	unlock()
	again, err := d.Lock(context.Background(), "941")
	if err != nil {
		t.Fatalf("Lock after release = %v", err)
	}
	again()
}

func TestDir_refusesSymlinkedLockFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	locks := filepath.Join(dir, "locks")
	d, err := NewDir(locks)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(locks, "941.lock")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lock(context.Background(), "941"); err == nil {
		t.Fatal("Lock followed a symlink planted as the lock file")
	}
}
