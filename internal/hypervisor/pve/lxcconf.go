package pve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// setRaw writes raw lxc.* keys into the container's config file; an empty
// value removes the key. pct set refuses these keys, so this is the only
// way short of the API; it is what the Proxmox docs tell administrators to
// do by hand. Retried like a command when the container is locked.
func (h *Host) setRaw(ctx context.Context, id api.ID, values map[string]string) error {
	r := h.lockPolicy(0).Start()
	for {
		err := h.setRawOnce(ctx, id, values)
		var le *lockError
		if !errors.As(err, &le) {
			return err
		}
		le.tries = r.Tries()
		if werr := r.Wait(ctx); werr != nil {
			if errors.Is(werr, retry.ErrExhausted) {
				return err
			}
			return fmt.Errorf("%w; gave up waiting: %w", err, werr)
		}
	}
}

func (h *Host) setRawOnce(ctx context.Context, id api.ID, values map[string]string) error {
	path := filepath.Join(h.opts.LXCConfDir, id.String()+".conf")
	// Hold pct's own config lock so that a pct command running at the same
	// time cannot write the file between our read and our rename.
	lockPath := filepath.Join(h.opts.LXCLockDir, "pve-config-"+id.String()+".lock")
	if err := os.MkdirAll(h.opts.LXCLockDir, 0o755); err != nil {
		return fmt.Errorf("lxc.* keys: %w", err)
	}
	unlock, err := flockTimeout(ctx, lockPath, lockWait)
	if errors.Is(err, errLockTimeout) {
		return &lockError{msg: fmt.Sprintf("can't lock file '%s' - got timeout", lockPath)}
	}
	if err != nil {
		return fmt.Errorf("lxc.* keys: %w", err)
	}
	defer unlock()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lxc.* keys: %s: %w", path, hypervisor.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lxc.* keys: %w", err)
	}
	if lock := guest.ConfLock(data); lock != "" {
		// pct set would refuse too: a clone, backup or snapshot is using
		// the container.
		return &lockError{msg: fmt.Sprintf("CT is locked (%s)", lock)}
	}
	out, err := guest.EditRaw(data, values)
	if err != nil {
		return err
	}
	if string(out) == string(data) {
		return nil
	}
	perm := os.FileMode(0o640)
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	}
	if err := fsutil.WriteFile(path, out, perm); err != nil {
		return fmt.Errorf("lxc.* keys: write %s: %w", path, err)
	}
	return nil
}

// lockError is a locked container met while editing its config file.
type lockError struct {
	msg   string
	tries int
}

func (e *lockError) Error() string {
	s := hypervisor.ErrLocked.Error()
	if e.tries > 1 {
		s += fmt.Sprintf(" (still locked after %d tries)", e.tries)
	}
	return s + ": editing lxc.* keys: " + e.msg
}

func (e *lockError) Unwrap() error { return hypervisor.ErrLocked }
