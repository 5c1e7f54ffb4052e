package lock

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// sharedPair opens one lock file twice: the Shared of this process, and
// the open file another process would hold.
func sharedPair(t *testing.T, maxHold time.Duration) (*Shared, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	return &Shared{F: open(), Poll: time.Millisecond, MaxHold: maxHold}, open()
}

func othersMayTake(t *testing.T, other *os.File) bool {
	t.Helper()
	ok, err := TryFlock(other, syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		Unflock(other)
	}
	return ok
}

// The first holder takes the flock and says so, a second joins it, and
// other processes stay out until the last holder left.
func TestShared_heldUntilTheLastHolderLeaves(t *testing.T) {
	s, other := sharedPair(t, 0)
	for i, wantTaken := range []bool{true, false} {
		taken, err := s.Hold()
		if err != nil || taken != wantTaken {
			t.Fatalf("hold %d: taken %v, %v; want taken %v", i+1, taken, err, wantTaken)
		}
	}
	s.Release()
	if othersMayTake(t, other) {
		t.Error("another process took the flock while one holder was still in")
	}
	s.Release()
	if !othersMayTake(t, other) {
		t.Error("the flock is still held after the last holder left")
	}
	if taken, err := s.Hold(); err != nil || !taken {
		t.Errorf("holding again: taken %v, %v; want the flock taken anew", taken, err)
	}
	s.Release()
}

// A hold older than MaxHold takes no new holder: the holders drain, the
// flock is let go, and the waiting holder takes it anew afterwards.
func TestShared_maxHoldMakesRoom(t *testing.T) {
	s, other := sharedPair(t, time.Millisecond)
	if _, err := s.Hold(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	// Past MaxHold: this holder still joins, and closes the hold to
	// later ones.
	if taken, err := s.Hold(); err != nil || taken {
		t.Fatalf("joining: taken %v, %v", taken, err)
	}
	joined := make(chan bool)
	go func() {
		taken, err := s.Hold()
		if err != nil {
			t.Error(err)
		}
		joined <- taken
	}()
	select {
	case <-joined:
		t.Fatal("a holder joined a hold older than MaxHold")
	case <-time.After(50 * time.Millisecond):
	}
	s.Release()
	s.Release()
	if taken := <-joined; !taken {
		t.Error("the waiting holder joined instead of taking the flock anew")
	}
	s.Release()
	if !othersMayTake(t, other) {
		t.Error("the flock is still held after every holder left")
	}
}
