package leader

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// LockName is the name of the controller's lock.
const LockName = "phoenix-controller"

// ErrLost is wrapped by Renew's error when the lock is no longer held:
// it expired, another holder has it, or it could not be renewed.
var ErrLost = errors.New("leader lock lost")

// Lock is one mutual exclusion with a lifetime. A Lock value belongs to one
// process; it is not safe for concurrent use.
type Lock interface {
	// TryAcquire tries once to take the lock: false with a nil error when
	// someone else holds it.
	TryAcquire(ctx context.Context) (bool, error)
	// Renew extends the hold. Any error means the lock is lost and the
	// holder must stop acting as leader.
	Renew(ctx context.Context) error
	// Release gives the lock up so a standby can take it at once.
	Release() error
	// Lifetime is how long a hold lasts without a renewal.
	Lifetime() time.Duration
	// String describes the lock for logs.
	String() string
}

// ForStateDir picks the lock a controller should use: the pmxcfs lock when
// <pveEtc>/priv exists (this machine is a Proxmox cluster node), otherwise
// a File lock in stateDir with the given lease.
func ForStateDir(pveEtc, stateDir string, lease time.Duration) (Lock, error) {
	if pveEtc != "" {
		if fi, err := os.Stat(filepath.Join(pveEtc, "priv")); err == nil && fi.IsDir() {
			return NewPmxcfs(OSFS{}, pveEtc, LockName, nil), nil
		}
	}
	return NewFile(stateDir, LockName, lease, nil)
}
