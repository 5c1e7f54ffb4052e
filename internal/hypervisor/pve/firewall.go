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
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

var _ hypervisor.Firewaller = (*Host)(nil)

// maxFirewallSize bounds the .fw file read: a guest's rules are a few kB.
const maxFirewallSize = 1 << 20

func (h *Host) firewallDir() string { return filepath.Join(h.opts.PVEEtc, "firewall") }

func (h *Host) firewallPath(id api.ID) string {
	return filepath.Join(h.firewallDir(), id.String()+".fw")
}

// unreadableFirewall stands for a .fw file phoenix cannot read: it equals
// no pvefirewall.Format, so an enabled firewall in the desired state
// replaces the file, and a disabled one leaves it alone.
const unreadableFirewall = "# unreadable\n"

// readFirewall reads the guest's .fw file in pvefirewall.Format's form;
// "" when there is none.
func (h *Host) readFirewall(id api.ID) (text string, owned bool, err error) {
	data, err := fsutil.ReadFileNoFollow(h.firewallPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if errors.Is(err, fsutil.ErrUnsafe) || errors.Is(err, fsutil.ErrNotRegular) {
		return unreadableFirewall, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("firewall of %s: %w", id, err)
	}
	if len(data) > maxFirewallSize {
		return unreadableFirewall, false, nil
	}
	fw, owned, err := pvefirewall.Parse(data)
	if err != nil {
		return unreadableFirewall, owned, nil
	}
	return pvefirewall.Format(fw), owned, nil
}

// Firewall reads the guest's .fw file alone (hypervisor.Firewaller).
func (h *Host) Firewall(ctx context.Context, kind api.Kind, id api.ID) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	return h.readFirewall(id)
}

// SetFirewall writes <pve-etc>/firewall/<id>.fw, as pve-firewall's
// save_vmfw_conf lays it out, when its content differs: a temp file in the
// same folder, then a rename, which replaces a symlink rather than
// writing through it. The folder itself must be a real folder.
func (h *Host) SetFirewall(ctx context.Context, kind api.Kind, id api.ID, fw api.Firewall) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, r := range fw.Rules {
		if errs := pvefirewall.Validate(r); len(errs) > 0 {
			return fmt.Errorf("firewall of %s %s: rule %d: %v", kind, id, i, errs[0])
		}
	}
	if _, err := h.readConf(kind, id); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	dir := h.firewallDir()
	st, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("firewall of %s %s: %w", kind, id, err)
		}
	case err != nil:
		return fmt.Errorf("firewall of %s %s: %w", kind, id, err)
	case !st.IsDir():
		return fmt.Errorf("firewall of %s %s: %s is not a folder (a symlink?); refusing to write there", kind, id, dir)
	}
	path := h.firewallPath(id)
	want := pvefirewall.File(fw)
	if have, err := fsutil.ReadFileNoFollow(path); err == nil && string(have) == string(want) {
		return nil
	}
	if err := fsutil.WriteFile(path, want, 0o640); err != nil {
		return fmt.Errorf("firewall of %s %s: write %s: %w", kind, id, path, err)
	}
	return nil
}
