package statelock

import (
	"context"
	"errors"
	"os"
	"strings"
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

func TestAcquireShared_waitsForTheController(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireController(context.Background(), dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.Release()
	}()
	s, err := AcquireShared(context.Background(), dir, time.Minute)
	if err != nil {
		t.Fatalf("AcquireShared with a wait: %v", err)
	}
	s.Release()
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
