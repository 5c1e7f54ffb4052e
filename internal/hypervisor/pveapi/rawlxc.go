package pveapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// rawEditScript edits the raw lxc.* lines of a container's config file on
// its node. The API has no parameter for them (GET config shows them as
// "lxc": [[key, value], ...], PUT refuses them), so this does what the
// Proxmox docs tell administrators to do: edit /etc/pve/lxc/<id>.conf.
//
// Arguments: $1 the CTID, $2 the config folder, $3 the lock folder.
// stdin: one line per change, "key: value" to set (a key listed twice gets
// two lines, as lxc.mount.entry needs) or a bare "key" to drop the key.
// Every line of each key named is dropped from the main section (never
// from the [snapshot] sections), the new lines are added at its end.
//
// It holds the flock pct itself takes for the container's config, refuses
// a container Proxmox has locked (exit 3: "CT is locked (...)", which the
// caller retries), and replaces the file through a temp file and rename,
// as Proxmox writes its configs.
const rawEditScript = `set -eu
conf="$2/$1.conf"
lock="$3/pve-config-$1.lock"
if [ ! -f "$conf" ]; then echo "Configuration file '$conf' does not exist" >&2; exit 2; fi
req=$(mktemp)
tmp="$conf.phoenix.$$"
trap 'rm -f "$req" "$tmp"' EXIT
cat > "$req"
mkdir -p "$3"
exec 9>"$lock"
if ! flock -w 10 9; then echo "can't lock file '$lock' - got timeout" >&2; exit 75; fi
awk -v req="$req" '
BEGIN {
	while ((getline line < req) > 0) {
		k = line; sub(/:.*/, "", k); drop[k] = 1
		if (index(line, ":")) add[++n] = line
	}
}
!done && /^[ \t]*$/ { blank++; next }
!done && /^\[/ { for (i = 1; i <= n; i++) print add[i]; done = 1 }
!done {
	k = $0; sub(/:.*/, "", k)
	if (k == "lock") { v = $0; sub(/^lock:[ \t]*/, "", v); print "CT is locked (" v ")" > "/dev/stderr"; locked = 1; exit 3 }
	if (k in drop) next
}
{ while (blank > 0) { print ""; blank-- } print }
END {
	if (locked) exit 3
	if (!done) for (i = 1; i <= n; i++) print add[i]
	while (blank > 0) { print ""; blank-- }
}' "$conf" > "$tmp"
mv "$tmp" "$conf"
`

// Where Proxmox keeps container configs and their locks on a node.
const (
	lxcConfDir = "/etc/pve/lxc"
	lxcLockDir = "/run/lock/lxc"
)

// rawKeyRE is a raw LXC key phoenix writes.
var rawKeyRE = regexp.MustCompile(`^lxc\.[A-Za-z0-9_.-]+$`)

// rawInput renders changes for rawEditScript. A value holding newlines
// becomes one line per value under its key; no value can start a line of
// its own, so none can inject another key.
func rawInput(values map[string]string) (string, error) {
	var b strings.Builder
	for _, k := range sortedKeys(values) {
		if !rawKeyRE.MatchString(k) {
			return "", fmt.Errorf("raw LXC key %q: want lxc. followed by letters, digits, '.', '_' or '-'", k)
		}
		v := strings.ReplaceAll(values[k], "\r", "")
		wrote := false
		for _, line := range strings.Split(v, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				fmt.Fprintf(&b, "%s: %s\n", k, line)
				wrote = true
			}
		}
		if !wrote {
			b.WriteString(k + "\n")
		}
	}
	return b.String(), nil
}

// setRaw writes raw lxc.* keys of container id on node over SSH, retrying
// while the container is locked.
func (h *Host) setRaw(ctx context.Context, node string, id api.ID, values map[string]string) error {
	if h.ssh == nil {
		return h.needSSH("raw LXC keys", id)
	}
	in, err := rawInput(values)
	if err != nil {
		return err
	}
	argv := []string{"sh", "-c", rawEditScript, "phoenix-lxc-raw", id.String(), lxcConfDir, lxcLockDir}
	err = h.c.retry(ctx, true, func() error {
		_, err := h.ssh.run(ctx, node, argv, []byte(in))
		var re *RemoteError
		if errors.As(err, &re) && (re.ExitCode == 3 || re.ExitCode == 75) {
			return &lockedError{err}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("raw LXC keys in %s/%s.conf: %w", lxcConfDir, id, err)
	}
	return nil
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
