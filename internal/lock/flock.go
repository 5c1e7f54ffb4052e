package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// ErrTimeout is returned by Flock when its deadline passes first.
var ErrTimeout = errors.New("lock wait timed out")

// PollInterval is how often a waiting caller tries a flock again.
const PollInterval = 10 * time.Millisecond

// TryFlock takes a flock on f without blocking (how is syscall.LOCK_EX or
// LOCK_SH); ok is false when another open file holds it.
func TryFlock(f *os.File, how int) (ok bool, err error) {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		default:
			return false, err
		}
	}
}

// Flock waits for a flock on f, polling every poll (PollInterval when 0),
// until it is taken, ctx ends (ctx's error) or deadline passes (ErrTimeout;
// a zero deadline waits for ever).
func Flock(ctx context.Context, f *os.File, how int, poll time.Duration, deadline time.Time) error {
	if poll <= 0 {
		poll = PollInterval
	}
	for {
		ok, err := TryFlock(f, how)
		if err != nil {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if ok {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return ErrTimeout
		}
		if err := retry.Sleep(ctx, poll); err != nil {
			return err
		}
	}
}

// Unflock releases a flock taken on f, keeping f open.
func Unflock(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// Dir hands out per-key locks as files in one folder, so that processes
// sharing a state dir never work on one guest at once.
type Dir struct{ dir string }

// NewDir returns the locks kept in dir, creating it (0700).
func NewDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock folder: %w", err)
	}
	return &Dir{dir: dir}, nil
}

// Lock takes the lock named key, waiting until it is free or ctx ends. The
// returned func releases it; the kernel releases it if the process dies.
func (d *Dir) Lock(ctx context.Context, key string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(d.dir, key+".lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := Flock(ctx, f, syscall.LOCK_EX, 0, time.Time{}); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
