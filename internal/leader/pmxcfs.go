package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/utils/clock"
)

// PmxcfsLifetime is pmxcfs' fixed lock lifetime: a lock not renewed for
// this long is dropped on the next unlock request.
const PmxcfsLifetime = 120 * time.Second

// FS is what the pmxcfs lock needs of the file system under /etc/pve. OSFS
// is the real one; internal/fake/pmxcfs models pmxcfs' lock rules.
type FS interface {
	// Mkdir creates one directory (mode 0755); it fails when it exists.
	Mkdir(path string) error
	// Utime sets a path's access and modification times, in Unix seconds.
	Utime(path string, atime, mtime int64) error
	// Rmdir removes an empty directory.
	Rmdir(path string) error
	// IsDir reports whether path is a directory.
	IsDir(path string) bool
}

// OSFS is the real file system.
type OSFS struct{}

// Mkdir implements FS.
func (OSFS) Mkdir(path string) error { return os.Mkdir(path, 0o755) }

// Utime implements FS with utimes(2), as Perl's utime does.
func (OSFS) Utime(path string, atime, mtime int64) error {
	tv := []syscall.Timeval{{Sec: atime}, {Sec: mtime}}
	if err := syscall.Utimes(path, tv); err != nil {
		return &os.PathError{Op: "utime", Path: path, Err: err}
	}
	return nil
}

// Rmdir implements FS.
func (OSFS) Rmdir(path string) error { return syscall.Rmdir(path) }

// IsDir implements FS.
func (OSFS) IsDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// Pmxcfs is a cluster-wide lock in pmxcfs, taken and kept the way
// pve-ha-manager keeps its manager lock:
//
//   - take: mkdir <pve-etc>/priv/lock/<name>, which succeeds on one node
//     only; when it fails, utime(0, 0) asks pmxcfs to drop the lock if it
//     expired, and when that dropped it, mkdir is tried once more;
//   - renew: utime(0, now), which pmxcfs allows only to the node that
//     wrote the lock last. pmxcfs would also accept a renewal after the
//     lifetime if nobody dropped the lock yet; like pve-ha-manager this
//     lock never tries, because another node may already hold it;
//   - release: rmdir.
//
// pmxcfs knows nodes, not processes: two processes on one node are the
// same writer. What keeps a second process on the holder's node out is
// that it only renews what it took itself (held).
type Pmxcfs struct {
	fs      FS
	lockDir string
	path    string
	clock   clock.PassiveClock

	held     bool
	lastLock time.Time
}

// NewPmxcfs returns the lock name under pveEtc (normally /etc/pve). A nil
// clk is the real clock.
func NewPmxcfs(fs FS, pveEtc, name string, clk clock.PassiveClock) *Pmxcfs {
	if clk == nil {
		clk = clock.RealClock{}
	}
	dir := filepath.Join(pveEtc, "priv", "lock")
	return &Pmxcfs{fs: fs, lockDir: dir, path: filepath.Join(dir, name), clock: clk}
}

// String implements Lock.
func (l *Pmxcfs) String() string { return "pmxcfs lock " + l.path }

// Lifetime implements Lock.
func (l *Pmxcfs) Lifetime() time.Duration { return PmxcfsLifetime }

// TryAcquire implements Lock.
func (l *Pmxcfs) TryAcquire(ctx context.Context) (bool, error) {
	if l.held {
		return true, l.Renew(ctx)
	}
	// The lock folder exists on every cluster node; creating it is what
	// pve-ha-manager does too, and tells an unmounted /etc/pve apart.
	_ = l.fs.Mkdir(l.lockDir)
	if !l.fs.IsDir(l.lockDir) {
		return false, fmt.Errorf("%s: not a directory (pmxcfs not mounted?)", l.lockDir)
	}
	now := l.clock.Now()
	err := l.fs.Mkdir(l.path)
	if err == nil {
		l.held, l.lastLock = true, now
		return true, nil
	}
	// Ask pmxcfs to drop the lock if its holder stopped renewing it; it
	// answers with an error either way, ENOENT once the lock is gone, and
	// then the lock is free to take now rather than at the next try.
	if errors.Is(err, os.ErrExist) {
		if uerr := l.fs.Utime(l.path, 0, 0); !errors.Is(uerr, os.ErrNotExist) {
			return false, nil
		}
		if err = l.fs.Mkdir(l.path); err == nil {
			l.held, l.lastLock = true, now
			return true, nil
		}
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
	}
	return false, fmt.Errorf("take %s: %w", l.path, err)
}

// Renew implements Lock.
func (l *Pmxcfs) Renew(context.Context) error {
	if !l.held {
		return fmt.Errorf("renew %s: not held: %w", l.path, ErrLost)
	}
	now := l.clock.Now()
	if now.Sub(l.lastLock) >= PmxcfsLifetime {
		l.held = false
		return fmt.Errorf("renew %s: last renewed %s ago, beyond pmxcfs' %s lifetime: %w",
			l.path, now.Sub(l.lastLock).Round(time.Second), PmxcfsLifetime, ErrLost)
	}
	if err := l.fs.Utime(l.path, 0, now.Unix()); err != nil {
		l.held = false
		return fmt.Errorf("renew %s: %w: %w", l.path, err, ErrLost)
	}
	l.lastLock = now
	return nil
}

// Release implements Lock.
func (l *Pmxcfs) Release() error {
	if !l.held {
		return nil
	}
	l.held = false
	if err := l.fs.Rmdir(l.path); err != nil {
		return fmt.Errorf("release %s: %w", l.path, err)
	}
	return nil
}
