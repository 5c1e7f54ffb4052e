package leader

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

const lease = 30 * time.Second

type files struct {
	t     *testing.T
	dir   string
	clock *clocktesting.FakeClock
}

func newFiles(t *testing.T) *files {
	return &files{t: t, dir: t.TempDir(), clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
}

// lock is one controller process on the state dir.
func (f *files) lock() *File {
	f.t.Helper()
	l, err := NewFile(f.dir, LockName, lease, f.clock)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { l.lose() })
	return l
}

func (f *files) try(l *File) bool {
	f.t.Helper()
	ok, err := l.TryAcquire(context.Background())
	if err != nil {
		f.t.Fatalf("TryAcquire: %v", err)
	}
	return ok
}

// die is what the kernel does to a killed holder's flock.
func die(l *File) { l.dropAlive() }

func TestFile_oneHolder(t *testing.T) {
	f := newFiles(t)
	a, b := f.lock(), f.lock()
	if !f.try(a) {
		t.Fatal("a could not take a free lock")
	}
	for range 20 {
		f.clock.Step(10 * time.Second)
		if err := a.Renew(context.Background()); err != nil {
			t.Fatalf("renewal by the holder: %v", err)
		}
		if f.try(b) {
			t.Fatal("b took a lock a renews")
		}
	}
}

func TestFile_takeover(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(f *files, a *File)
		// step is how long b waits after the stop before it tries.
		step      time.Duration
		wantTaken bool
	}{
		{name: "holder killed: taken at the next try", stop: func(_ *files, a *File) { die(a) }, wantTaken: true},
		{name: "holder released: taken at the next try", stop: func(f *files, a *File) {
			if err := a.Release(); err != nil {
				f.t.Fatal(err)
			}
		}, wantTaken: true},
		{name: "holder stuck: kept within the lease", stop: func(*files, *File) {}, step: lease - time.Second},
		{name: "holder stuck: taken once the lease ran out", stop: func(*files, *File) {}, step: lease, wantTaken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFiles(t)
			a, b := f.lock(), f.lock()
			if !f.try(a) {
				t.Fatal("a could not take a free lock")
			}
			tc.stop(f, a)
			f.clock.Step(tc.step)
			if got := f.try(b); got != tc.wantTaken {
				t.Fatalf("b took it: %v, want %v", got, tc.wantTaken)
			}
			if !tc.wantTaken {
				return
			}
			if err := a.Renew(context.Background()); !errors.Is(err, ErrLost) {
				t.Errorf("a's renewal after b took over: %v, want ErrLost", err)
			}
			if err := b.Renew(context.Background()); err != nil {
				t.Errorf("b's renewal: %v", err)
			}
		})
	}
}

func TestFile_stuckHolderDiesAfterTakeover(t *testing.T) {
	// b takes over from a stuck a, which still holds the liveness flock.
	// When a then dies, c must not read the free flock as b's death.
	f := newFiles(t)
	a, b, c := f.lock(), f.lock(), f.lock()
	if !f.try(a) {
		t.Fatal("a could not take a free lock")
	}
	f.clock.Step(lease)
	if !f.try(b) {
		t.Fatal("b could not take an expired lock")
	}
	die(a)
	if f.try(c) {
		t.Fatal("c took the lock b holds, after the stuck a died")
	}
	// b's next renewal claims the liveness flock; b's death then frees
	// the lock at once.
	f.clock.Step(time.Second)
	if err := b.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	die(b)
	if !f.try(c) {
		t.Fatal("c did not take the lock after b died")
	}
}

func TestFile_noRenewalBeyondLease(t *testing.T) {
	f := newFiles(t)
	a := f.lock()
	if !f.try(a) {
		t.Fatal("a could not take a free lock")
	}
	f.clock.Step(lease)
	if err := a.Renew(context.Background()); !errors.Is(err, ErrLost) {
		t.Fatalf("renewal a lease after the last one: %v, want ErrLost", err)
	}
}

func TestFile_tornRecordIsFree(t *testing.T) {
	// What a machine crash can leave of a record written without fsync.
	for _, content := range []string{"", `{"holder":"ab`, "\x00\x00\x00"} {
		f := newFiles(t)
		if err := os.WriteFile(filepath.Join(f.dir, LockName+".lease"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if !f.try(f.lock()) {
			t.Errorf("record %q: the lock could not be taken", content)
		}
	}
}

func TestFile_holdersLeaseDecides(t *testing.T) {
	f := newFiles(t)
	long, err := NewFile(f.dir, LockName, 10*lease, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(long.lose)
	short := f.lock()
	if !f.try(long) {
		t.Fatal("could not take a free lock")
	}
	// The standby's own lease ran out, the holder's did not.
	f.clock.Step(2 * lease)
	if f.try(short) {
		t.Error("a standby with a shorter lease took the lock before the holder's lease ran out")
	}
	f.clock.Step(8 * lease)
	if !f.try(short) {
		t.Error("the lock was not free once the holder's lease ran out")
	}
}
