package statelock

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAcquireController_secondRefuses(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireController(context.Background(), dir, "/etc/phoenix", nil)
	if err != nil {
		t.Fatal(err)
	}
	h, running, err := Running(dir)
	if err != nil || !running || h.PID != os.Getpid() || h.ConfigDir != "/etc/phoenix" {
		t.Fatalf("Running = %+v, %v, %v", h, running, err)
	}
	_, err = AcquireController(context.Background(), dir, "/etc/phoenix", nil)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() {
		t.Fatalf("second AcquireController: %v", err)
	}
	if !strings.Contains(err.Error(), "pid ") || !strings.Contains(err.Error(), Path(dir)) {
		t.Errorf("message %q names neither pid nor lock file", err)
	}
	if _, err := AcquireShared(context.Background(), dir, 0); !errors.As(err, &held) {
		t.Fatalf("AcquireShared beside a controller: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, running, _ := Running(dir); running {
		t.Error("still running after Release")
	}
	if data, _ := os.ReadFile(Path(dir)); len(data) != 0 {
		t.Errorf("pid left in the lock file: %q", data)
	}
}

func TestAcquireShared_manyAtOnceButNoController(t *testing.T) {
	dir := t.TempDir()
	a, err := AcquireShared(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := AcquireShared(context.Background(), dir, 0)
	if err != nil {
		t.Fatalf("second shared holder: %v", err)
	}
	if _, running, _ := Running(dir); running {
		t.Error("shared holders look like a controller")
	}
	// A controller waits for them instead of refusing.
	waited := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		l, err := AcquireController(context.Background(), dir, "", func() { close(waited) })
		if err == nil {
			defer l.Release()
		}
		got <- err
	}()
	<-waited
	a.Release()
	select {
	case err := <-got:
		t.Fatalf("controller did not wait for the second holder: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	b.Release()
	if err := <-got; err != nil {
		t.Fatalf("controller after the holders left: %v", err)
	}
}

// TestAcquireShared_waitsForTheController: a verb given --wait-lock gets
// its lock only once the controller let go, and then holds it: a
// controller starting now has to wait.
func TestAcquireShared_waitsForTheController(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireController(context.Background(), dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	type result struct {
		lock         *Lock
		err          error
		afterRelease bool
	}
	got := make(chan result, 1)
	go func() {
		s, err := AcquireShared(context.Background(), dir, time.Minute)
		got <- result{s, err, released.Load()}
	}()
	// Give a shared lock that does not wait the time to come back before
	// the controller lets go; a correct one blocks through this.
	select {
	case r := <-got:
		t.Fatalf("AcquireShared returned (%v) while the controller holds the lock", r.err)
	case <-time.After(100 * time.Millisecond):
	}
	released.Store(true)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || !r.afterRelease {
		t.Fatalf("AcquireShared with a wait: %v, returned after the release: %v", r.err, r.afterRelease)
	}
	defer r.lock.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := AcquireController(ctx, dir, "", nil); !errors.Is(err, context.Canceled) {
		c.Release()
		t.Fatalf("a controller beside the shared holder: %v, want it to wait (context.Canceled)", err)
	}
}

// TestAcquireShared_givesUpAfterItsWait: the wait is bounded; then the
// verb is refused with the controller named.
func TestAcquireShared_givesUpAfterItsWait(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireController(context.Background(), dir, "/etc/phoenix", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	start := time.Now()
	_, err = AcquireShared(context.Background(), dir, 200*time.Millisecond)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() || held.ConfigDir != "/etc/phoenix" {
		t.Fatalf("AcquireShared beside a controller that stays: %v, want a HeldError naming it", err)
	}
	// It did wait: the refusal comes no sooner than the wait it was given.
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("refused after %v, before its 200ms wait ran out", waited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := AcquireShared(ctx, dir, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: %v, want context.Canceled", err)
	}
}

func TestAcquireController_stalePid(t *testing.T) {
	dir := t.TempDir()
	// A crashed controller's pid, and no lock held: not a reason to refuse.
	if err := os.WriteFile(Path(dir), []byte("999999999\n/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := AcquireController(context.Background(), dir, "/y", nil)
	if err != nil {
		t.Fatalf("stale pid: %v", err)
	}
	defer l.Release()
	if h, _, _ := Running(dir); h.PID != os.Getpid() || h.ConfigDir != "/y" {
		t.Errorf("holder %+v", h)
	}
}

func TestAcquireController_cancelledWhileWaiting(t *testing.T) {
	dir := t.TempDir()
	s, err := AcquireShared(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := AcquireController(ctx, dir, "", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
