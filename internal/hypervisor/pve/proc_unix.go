//go:build unix

package pve

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// killProcessGroup makes cmd the leader of its own process group and, on
// cancellation, sends SIGTERM to the whole group; exec's WaitDelay then
// SIGKILLs the leader if it is still there.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
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
