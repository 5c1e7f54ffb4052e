package pveapi

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// sshNode runs the old tree's host-side scripts on the guest's node over
// SSH: they drive the guest with pct, which works only where the guest
// is. The script runs from the same path under the scripts folder on the
// node, which the operator keeps identical on every node; phoenix checks
// that it is there, executable and not writable by group or others before
// it runs it, with its arguments and no interpreter of its choosing.
type sshNode struct {
	h   *Host
	loc *location
}

func (n sshNode) RunScript(ctx context.Context, id api.ID, c *guest.Checked, args []string) error {
	if n.h.ssh == nil {
		return fmt.Errorf("%s is a host-side script (the old tool's layout): it runs on the Proxmox node that holds guest %s, and the API cannot run commands on a node; "+
			"give phoenix SSH access to the nodes with --pve-ssh-key and --pve-ssh-known-hosts and it runs the script there: %w", c.Rel, id, ErrNeedSSH)
	}
	root, err := filepath.Abs(n.h.opts.ScriptsDir)
	if err != nil {
		return fmt.Errorf("scripts folder: %w", err)
	}
	remote := path.Join(filepath.ToSlash(root), filepath.ToSlash(c.Rel))
	if err := n.checkRemote(ctx, root, remote); err != nil {
		return err
	}
	_, err = n.h.ssh.run(ctx, n.loc.node, append([]string{remote}, args...), nil)
	return err
}

// checkRemote makes sure the script on the node is a regular file root
// may run and only root may change.
func (n sshNode) checkRemote(ctx context.Context, root, remote string) error {
	node := n.loc.node
	out, err := n.h.ssh.run(ctx, node, []string{"stat", "-L", "-c", "%a %F", "--", remote}, nil)
	var re *RemoteError
	if errors.As(err, &re) && strings.Contains(re.Output, "No such file") {
		return fmt.Errorf("script %s does not exist on node %s; keep the scripts folder %s the same on every node: %w", remote, node, root, err)
	}
	if err != nil {
		return fmt.Errorf("script %s on node %s: %w", remote, node, err)
	}
	perm, kind, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	mode, perr := strconv.ParseUint(perm, 8, 32)
	switch {
	case perr != nil:
		return fmt.Errorf("script %s on node %s: cannot read `stat` output %q", remote, node, out)
	case kind != "regular file":
		return fmt.Errorf("script %s on node %s is a %s, not a regular file", remote, node, kind)
	case mode&0o111 == 0:
		return fmt.Errorf("script %s on node %s is not executable (mode %04o); chmod +x it there", remote, node, mode)
	case mode&0o022 != 0:
		return fmt.Errorf("script %s on node %s is writable by group or others (mode %04o); refusing to run it as root (chmod go-w it there)", remote, node, mode)
	}
	return nil
}
