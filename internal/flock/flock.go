// Package flock gives phoenix processes that share a state dir a lock per
// guest, so that two CLIs never run a workflow on one guest at once.
package flock

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// Dir hands out per-key locks as files in one folder.
type Dir struct{ dir string }

// New returns the locks kept in dir, creating it (0700).
func New(dir string) (*Dir, error) {
	if err := fsutil.MkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("lock folder: %w", err)
	}
	return &Dir{dir: dir}, nil
}

// Lock takes the lock named key, waiting until it is free or ctx ends. The
// kernel releases it if the process dies.
func (d *Dir) Lock(ctx context.Context, key string) (func(), error) {
	f, err := fsutil.OpenNoFollow(filepath.Join(d.dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
