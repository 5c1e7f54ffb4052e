package pveapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// rawWriteScript replaces a container's config file on its node with its
// stdin, as Proxmox writes its configs (a temp file and a rename), but
// only if the file is still what phoenix read and edited (guest.EditRaw):
// the API has no parameter for raw lxc.* keys (GET config shows them as
// "lxc": [[key, value], ...], PUT refuses them). It holds the flock pct
// itself takes for the container's config while it compares and renames.
//
// Arguments: $1 the CTID, $2 the config folder, $3 the lock folder, $4
// the SHA-256 of the file as read. Exit 75 when the lock timed out or the
// file changed since (the caller reads it again), 2 when it is gone.
const rawWriteScript = `set -eu
conf="$2/$1.conf"
lock="$3/pve-config-$1.lock"
tmp="$conf.phoenix.$$"
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
mkdir -p "$3"
exec 9>"$lock"
if ! flock -w 10 9; then echo "can't lock file '$lock' - got timeout" >&2; exit 75; fi
if [ ! -f "$conf" ]; then echo "Configuration file '$conf' does not exist" >&2; exit 2; fi
sum=$(sha256sum < "$conf")
if [ "${sum%% *}" != "$4" ]; then echo "$conf changed while phoenix edited it" >&2; exit 75; fi
mv "$tmp" "$conf"
`

// Where Proxmox keeps container configs and their locks on a node.
const (
	lxcConfDir = "/etc/pve/lxc"
	lxcLockDir = "/run/lock/lxc"
)

// maxConf is the most of a config file phoenix edits: SSH output is kept
// up to 64 KiB, and a config is a few KiB.
const maxConf = 60 << 10

// setRaw writes raw lxc.* keys of container id on node over SSH: the
// config is read, edited here and written back if unchanged meanwhile;
// retried while the container is locked or the file changed.
func (h *Host) setRaw(ctx context.Context, node string, id api.ID, values map[string]string) error {
	if h.ssh == nil {
		return h.needSSH("raw LXC keys", id)
	}
	if _, err := guest.EditRaw(nil, values); err != nil {
		return err
	}
	conf := lxcConfDir + "/" + id.String() + ".conf"
	err := h.c.retry(ctx, true, func() error { return h.setRawOnce(ctx, node, id, conf, values) })
	if err != nil {
		return fmt.Errorf("raw LXC keys in %s: %w", conf, err)
	}
	return nil
}

func (h *Host) setRawOnce(ctx context.Context, node string, id api.ID, conf string, values map[string]string) error {
	data, err := h.ssh.run(ctx, node, []string{"cat", "--", conf}, nil)
	if err != nil {
		return err
	}
	if len(data) > maxConf {
		return fmt.Errorf("%d bytes; phoenix edits configs up to %d", len(data), maxConf)
	}
	if lock := guest.ConfLock(data); lock != "" {
		// pct set would refuse too: a clone, backup or snapshot is using
		// the container.
		return &lockedError{fmt.Errorf("CT is locked (%s)", lock)}
	}
	out, err := guest.EditRaw(data, values)
	if err != nil || bytes.Equal(out, data) {
		return err
	}
	sum := sha256.Sum256(data)
	argv := []string{"sh", "-c", rawWriteScript, "phoenix-lxc-write", id.String(), lxcConfDir, lxcLockDir, hex.EncodeToString(sum[:])}
	_, err = h.ssh.run(ctx, node, argv, out)
	var re *RemoteError
	if errors.As(err, &re) && re.ExitCode == 75 {
		return &lockedError{err}
	}
	return err
}

// needSSH explains that the API cannot do what was asked.
func (h *Host) needSSH(what string, id api.ID) error {
	return fmt.Errorf("%s for guest %s: the Proxmox API cannot do this (pct exec and raw lxc.* keys exist only on the node's command line); "+
		"give phoenix SSH access to the nodes with --pve-ssh-key and --pve-ssh-known-hosts and it runs them on the guest's node: %w",
		what, id, ErrNeedSSH)
}

// lockedError marks an error as lock contention, for retries and for
// errors.Is(err, hypervisor.ErrLocked).
type lockedError struct{ err error }

func (e *lockedError) Error() string   { return e.err.Error() }
func (e *lockedError) Unwrap() []error { return []error{e.err, hypervisor.ErrLocked} }
