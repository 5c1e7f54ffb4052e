package pve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
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
	if lock := parseConf(data).Current["lock"]; lock != "" {
		// pct set would refuse too: a clone, backup or snapshot is using
		// the container.
		return &lockError{msg: fmt.Sprintf("CT is locked (%s)", lock)}
	}
	out := editRaw(data, values)
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

// editRaw sets the given raw keys in the current-config part of a
// container config file (before the first [section]). Each key's old lines
// go; its new lines (one per line of the value) take the place of the first
// old one, or are added at the end of the current config. Other lines stay
// as they are.
func editRaw(data []byte, values map[string]string) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	end := len(lines) // end of the current config
	for i, l := range lines {
		if strings.HasPrefix(l, "[") {
			end = i
			break
		}
	}
	// Added lines go before the blank line(s) that part the sections.
	insert := end
	for insert > 0 && strings.TrimSpace(lines[insert-1]) == "" {
		insert--
	}
	main, rest := lines[:insert], lines[insert:]
	if len(main) > 0 && !strings.HasSuffix(main[len(main)-1], "\n") {
		main[len(main)-1] += "\n"
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		var newLines []string
		if values[k] != "" {
			for v := range strings.SplitSeq(values[k], "\n") {
				newLines = append(newLines, k+": "+v+"\n")
			}
		}
		var kept []string
		at := -1
		for _, l := range main {
			if key, _, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(key) == k {
				if at < 0 {
					at = len(kept)
				}
				continue
			}
			kept = append(kept, l)
		}
		if at < 0 {
			at = len(kept)
		}
		main = slices.Concat(kept[:at], newLines, kept[at:])
	}
	return []byte(strings.Join(slices.Concat(main, rest), ""))
}
