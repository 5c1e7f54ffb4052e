package pveapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// RunSetupStep runs <ScriptsDir>/setup/<step>.sh on every node of the
// cluster over SSH, in node-name order, with the step's settings as a JSON
// file given as its first argument. Every node must be online: host setup
// that reached only some nodes would leave the cluster uneven.
func (h *Host) RunSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	c, err := guest.SetupStep(h.opts.ScriptsDir, step)
	if err == nil && h.ssh == nil {
		err = fmt.Errorf("host setup on the cluster's nodes: the API cannot run commands on a node; "+
			"give phoenix SSH access with --pve-ssh-key and --pve-ssh-known-hosts: %w", ErrNeedSSH)
	}
	if err == nil {
		err = h.setupEveryNode(ctx, "/tmp/phoenix-setup-"+step+".sh", c, settings)
	}
	if err != nil {
		return fmt.Errorf("setup step %q: %w", step, err)
	}
	return nil
}

// setupEveryNode copies the checked script and its settings to dest and
// dest.json on each node and runs it there.
func (h *Host) setupEveryNode(ctx context.Context, dest string, c *guest.Checked, settings json.RawMessage) error {
	script, err := os.ReadFile(c.Real)
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	nodes, err := h.nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range sortedKeys(nodes) {
		if !nodes[n] {
			return fmt.Errorf("node %s is offline; setup must reach every node", n)
		}
	}
	for _, n := range sortedKeys(nodes) {
		for _, f := range []guest.File{{Data: script, Dest: dest, Mode: 0o600}, {Data: settings, Dest: dest + ".json", Mode: 0o600}} {
			if _, err := h.ssh.run(ctx, n, []string{"install", "-m", f.Perms(), "/dev/stdin", f.Dest}, f.Data); err != nil {
				return fmt.Errorf("node %s: copy %s: %w", n, f.Dest, err)
			}
		}
		if _, err := h.ssh.run(ctx, n, slices.Concat(c.Interp, []string{dest, dest + ".json"}), nil); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
	}
	return nil
}
