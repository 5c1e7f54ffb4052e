//go:build unix

package pve

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// killProcessGroup makes cmd the leader of its own process group. On
// cancellation (a timeout) the whole group gets SIGTERM, and SIGKILL after
// killGrace: exec's own WaitDelay would SIGKILL only the leader, leaving
// the workers pct and qm fork (and whatever a host script started) running
// with the guest's lock. The returned function, called once the command
// was waited for, SIGKILLs whatever of a cancelled group is still there.
func killProcessGroup(cmd *exec.Cmd) (reap func()) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var (
		mu        sync.Mutex
		cancelled bool
		timer     *time.Timer
	)
	killGroup := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Cancel = func() error {
		mu.Lock()
		cancelled = true
		timer = time.AfterFunc(killGrace, killGroup)
		mu.Unlock()
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if !cancelled {
			return
		}
		timer.Stop()
		killGroup()
	}
}

// flockTimeout takes an exclusive flock on path, creating it, waiting at
// most wait as Proxmox does for its config locks (then errLockTimeout). The
// returned function releases it.
func flockTimeout(ctx context.Context, path string, wait time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	err = lock.Flock(ctx, f, syscall.LOCK_EX, flockPoll, time.Now().Add(wait))
	if err != nil {
		f.Close()
		if errors.Is(err, lock.ErrTimeout) {
			return nil, errLockTimeout
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

// flockPoll is how often a config lock held by pct is tried again.
const flockPoll = 50 * time.Millisecond
