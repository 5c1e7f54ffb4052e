//go:build unix

package pve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockWait is how long pct and qm wait for a lock held by someone else.
const lockWait = 10 * time.Second

// flock takes an exclusive flock on path, waiting at most lockWait, and
// fails like Proxmox when it cannot: "can't lock file '...' - got timeout".
// Closing the file releases it.
func flock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fail("can't lock file '%s' - got timeout", filepath.Clean(path))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
