package pve

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// Options configure the backend. The zero value drives the local host.
type Options struct {
	// Pct and Qm are the tools to run; default "pct" and "qm" (found on PATH).
	Pct, Qm string
	// Timeout bounds each command; default 10m. A script run inside a guest
	// is one command, so long feature scripts need a larger value.
	Timeout time.Duration
	// ScriptsDir is the scripts folder. Run and RunSetupStep refuse scripts
	// outside it; empty refuses every script.
	ScriptsDir string
	// LXCConfDir holds the container configs, <id>.conf; default
	// /etc/pve/lxc. Raw lxc.* keys are written there (see the package doc).
	LXCConfDir string
	// LXCLockDir holds the flock files pct takes while it changes a
	// container's config, pve-config-<id>.lock; default /run/lock/lxc.
	LXCLockDir string
	// LockRetries is how many times a command refused because of a lock is
	// run again; default 6, negative for none.
	LockRetries int
	// LockBackoff is the wait before the first retry, doubling each time
	// (at most 30s, plus up to half of it as jitter); default 2s.
	LockBackoff time.Duration
	// Log, when set, is called with the argv of every command before it
	// runs (each retry too), possibly from several goroutines at once.
	Log func(argv []string)
}

// Defaults for the zero Options.
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultLXCConfDir  = "/etc/pve/lxc"
	DefaultLXCLockDir  = "/run/lock/lxc"
	DefaultLockRetries = 6
	DefaultLockBackoff = 2 * time.Second
)

// lockWait is how long an edit of a container's config file waits for the
// config lock, like pct's own 10s; a variable so tests can shorten it.
var lockWait = 10 * time.Second

// Host runs pct and qm on the local Proxmox node. It is safe for concurrent
// use: every operation is its own set of commands.
type Host struct {
	opts Options
}

var (
	_ hypervisor.Host        = (*Host)(nil)
	_ hypervisor.SetupRunner = (*Host)(nil)
)

// New returns a backend with opts, defaults filled in.
func New(opts Options) *Host {
	if opts.Pct == "" {
		opts.Pct = "pct"
	}
	if opts.Qm == "" {
		opts.Qm = "qm"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LXCConfDir == "" {
		opts.LXCConfDir = DefaultLXCConfDir
	}
	if opts.LXCLockDir == "" {
		opts.LXCLockDir = DefaultLXCLockDir
	}
	switch {
	case opts.LockRetries == 0:
		opts.LockRetries = DefaultLockRetries
	case opts.LockRetries < 0:
		opts.LockRetries = 0
	}
	if opts.LockBackoff <= 0 {
		opts.LockBackoff = DefaultLockBackoff
	}
	return &Host{opts: opts}
}

// tool is the command for kind, and its name for messages.
func (h *Host) tool(kind api.Kind) (string, string, error) {
	switch kind {
	case api.KindLXC:
		return h.opts.Pct, "pct", nil
	case api.KindVM:
		return h.opts.Qm, "qm", nil
	}
	return "", "", fmt.Errorf("unknown guest kind %q", kind)
}

// cmd runs `<tool> <args...>` for kind and wraps a failure as
// "<name> <op> <id>: ...".
func (h *Host) cmd(ctx context.Context, kind api.Kind, id api.ID, op string, args ...string) (*result, error) {
	bin, name, err := h.tool(kind)
	if err != nil {
		return nil, err
	}
	res, err := h.run(ctx, append([]string{bin}, args...), runOpts{})
	if err != nil {
		return res, fmt.Errorf("%s %s %s: %w", name, op, id, err)
	}
	return res, nil
}

// Get reads the guest with `status`, `config` and `listsnapshot`.
func (h *Host) Get(ctx context.Context, kind api.Kind, id api.ID) (*hypervisor.Guest, error) {
	res, err := h.cmd(ctx, kind, id, "status", "status", id.String())
	if err != nil {
		return nil, err
	}
	running, err := parseStatus(res.stdout)
	if err != nil {
		return nil, fmt.Errorf("%s %s status: %w", kind, id, err)
	}
	res, err = h.cmd(ctx, kind, id, "config", "config", id.String())
	if err != nil {
		return nil, err
	}
	cfg := parseConfig(res.stdout)
	res, err = h.cmd(ctx, kind, id, "listsnapshot", "listsnapshot", id.String())
	if err != nil {
		return nil, err
	}
	disk := "rootfs"
	if kind == api.KindVM {
		disk = "scsi0"
	}
	return &hypervisor.Guest{
		ID:        id,
		Kind:      kind,
		Running:   running,
		Template:  cfg["template"] == "1",
		Config:    cfg,
		Snapshots: parseSnapshots(res.stdout),
		DiskGB:    diskGB(cfg[disk]),
	}, nil
}

// Keys written first, in this order, by create: the ones a person reading
// a log looks for. The rest follow sorted.
var leadingKeys = []string{"hostname", "name", "memory", "cores", "swap"}

// configKeyRE is a pct/qm config key; anything else would not be one
// option of the tool.
var configKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// rawKeyRE is a raw LXC key.
var rawKeyRE = regexp.MustCompile(`^lxc\.[A-Za-z0-9_.-]+$`)

// splitConfig separates tool keys from raw lxc.* keys and checks both.
func splitConfig(kind api.Kind, values map[string]string) (tool, raw map[string]string, err error) {
	tool, raw = map[string]string{}, map[string]string{}
	for k, v := range values {
		switch {
		case strings.HasPrefix(k, "lxc."):
			if kind != api.KindLXC {
				return nil, nil, fmt.Errorf("config key %q: raw LXC keys only apply to containers", k)
			}
			if !rawKeyRE.MatchString(k) {
				return nil, nil, fmt.Errorf("config key %q: not a raw LXC key", k)
			}
			if strings.ContainsAny(v, "\r\x00") {
				return nil, nil, fmt.Errorf("config key %q: value holds a carriage return or NUL", k)
			}
			raw[k] = v
		case configKeyRE.MatchString(k):
			tool[k] = v
		default:
			return nil, nil, fmt.Errorf("config key %q: not a %s config key", k, kind)
		}
	}
	return tool, raw, nil
}

// options turns config values into --key value pairs: the leading keys
// first, then the rest sorted, so the same values always give the same argv.
func options(values map[string]string, skip ...string) []string {
	var args []string
	for _, k := range leadingKeys {
		if v, ok := values[k]; ok && v != "" && !slices.Contains(skip, k) {
			args = append(args, "--"+k, v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if v := values[k]; v != "" && !slices.Contains(leadingKeys, k) && !slices.Contains(skip, k) {
			args = append(args, "--"+k, v)
		}
	}
	return args
}

// Create makes a container with `pct create`, or a VM with `qm create`,
// `qm disk import` of the cloud image, `qm set` to attach it with a
// cloud-init drive, and a resize to DiskGB.
func (h *Host) Create(ctx context.Context, kind api.Kind, id api.ID, spec hypervisor.CreateSpec) error {
	values, raw, err := splitConfig(kind, spec.Config)
	if err != nil {
		return fmt.Errorf("create %s %s: %w", kind, id, err)
	}
	if kind == api.KindLXC {
		return h.createLXC(ctx, id, spec, values, raw)
	}
	return h.createVM(ctx, id, spec, values)
}

func (h *Host) createLXC(ctx context.Context, id api.ID, spec hypervisor.CreateSpec, values, raw map[string]string) error {
	if spec.Source == "" {
		return fmt.Errorf("pct create %s: no ostemplate", id)
	}
	args := []string{"create", id.String(), spec.Source}
	args = append(args, options(pick(values, leadingKeys...))...)
	if spec.Storage != "" {
		args = append(args, "--storage", spec.Storage)
		if spec.DiskGB > 0 && values["rootfs"] == "" {
			args = append(args, "--rootfs", spec.Storage+":"+strconv.Itoa(spec.DiskGB))
		}
	}
	args = append(args, options(values, leadingKeys...)...)
	if _, err := h.cmd(ctx, api.KindLXC, id, "create", args...); err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := h.setRaw(ctx, id, raw); err != nil {
			return fmt.Errorf("create lxc %s: %w", id, err)
		}
	}
	return nil
}

// importedRE finds the volume in qm disk import's last line:
// Successfully imported disk as 'unused0:local-zfs:vm-101-disk-0'.
var importedRE = regexp.MustCompile(`imported disk as '(unused\d+):([^'\n]+)'`)

func (h *Host) createVM(ctx context.Context, id api.ID, spec hypervisor.CreateSpec, values map[string]string) error {
	if spec.Storage == "" {
		return fmt.Errorf("qm create %s: no storage for the disk", id)
	}
	args := append([]string{"create", id.String()}, options(values)...)
	if values["scsihw"] == "" {
		args = append(args, "--scsihw", "virtio-scsi-pci")
	}
	if spec.Source == "" && spec.DiskGB > 0 && values["scsi0"] == "" {
		args = append(args, "--scsi0", spec.Storage+":"+strconv.Itoa(spec.DiskGB))
	}
	if _, err := h.cmd(ctx, api.KindVM, id, "create", args...); err != nil {
		return err
	}
	if spec.Source == "" {
		return nil
	}
	res, err := h.cmd(ctx, api.KindVM, id, "disk import", "disk", "import", id.String(), spec.Source, spec.Storage)
	if err != nil {
		return err
	}
	m := importedRE.FindSubmatch(res.stdout)
	if m == nil {
		return fmt.Errorf("qm disk import %s: cannot find the imported volume in its output: %s", id, tail(res.stdout))
	}
	attach := []string{"set", id.String(), "--scsi0", string(m[2]), "--boot", "order=scsi0"}
	if values["ide2"] == "" {
		// ipconfig0, ciuser and nameserver only reach the guest through a
		// cloud-init drive.
		attach = append(attach, "--ide2", spec.Storage+":cloudinit")
	}
	if _, err := h.cmd(ctx, api.KindVM, id, "set", attach...); err != nil {
		return err
	}
	if spec.DiskGB > 0 {
		return h.Resize(ctx, api.KindVM, id, spec.DiskGB)
	}
	return nil
}

// pick returns the entries of m with the given keys.
func pick(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

// Clone makes dst from src with `pct clone` or `qm clone`. A lock on the
// source (another clone of it running) is retried like any lock.
func (h *Host) Clone(ctx context.Context, kind api.Kind, src, dst api.ID, spec hypervisor.CloneSpec) error {
	bin, name, err := h.tool(kind)
	if err != nil {
		return err
	}
	args := []string{bin, "clone", src.String(), dst.String()}
	if spec.Name != "" {
		if kind == api.KindLXC {
			args = append(args, "--hostname", spec.Name)
		} else {
			args = append(args, "--name", spec.Name)
		}
	}
	if spec.Snapshot != "" {
		args = append(args, "--snapname", spec.Snapshot)
	}
	if spec.Full {
		args = append(args, "--full")
	}
	if _, err := h.run(ctx, args, runOpts{}); err != nil {
		return fmt.Errorf("%s clone %s from %s: %w", name, dst, src, err)
	}
	return nil
}

// Set changes config keys with `pct set`/`qm set` (empty values go to
// --delete) and writes raw lxc.* keys into the container's config file.
func (h *Host) Set(ctx context.Context, kind api.Kind, id api.ID, values map[string]string) error {
	toolValues, raw, err := splitConfig(kind, values)
	if err != nil {
		return fmt.Errorf("set %s %s: %w", kind, id, err)
	}
	var del []string
	for _, k := range slices.Sorted(maps.Keys(toolValues)) {
		if toolValues[k] == "" {
			del = append(del, k)
		}
	}
	args := options(toolValues)
	if len(del) > 0 {
		args = append(args, "--delete", strings.Join(del, ","))
	}
	if len(args) > 0 {
		if _, err := h.cmd(ctx, kind, id, "set", append([]string{"set", id.String()}, args...)...); err != nil {
			return err
		}
	}
	if len(raw) > 0 {
		if err := h.setRaw(ctx, id, raw); err != nil {
			return fmt.Errorf("set lxc %s: %w", id, err)
		}
	}
	return nil
}

// Resize grows the root disk (rootfs, scsi0) to sizeGB. It reads the
// config first and does nothing when the disk is already that big: the
// tools refuse to shrink, and a smaller size is not worth an error.
func (h *Host) Resize(ctx context.Context, kind api.Kind, id api.ID, sizeGB int) error {
	disk := "rootfs"
	if kind == api.KindVM {
		disk = "scsi0"
	}
	res, err := h.cmd(ctx, kind, id, "config", "config", id.String())
	if err != nil {
		return err
	}
	switch cur := diskGB(parseConfig(res.stdout)[disk]); {
	case cur == sizeGB:
		return nil
	case cur > sizeGB:
		return fmt.Errorf("%s %s: resize %s to %dG: shrinking a disk is not supported (it is %dG)", kind, id, disk, sizeGB, cur)
	}
	_, err = h.cmd(ctx, kind, id, "resize", "resize", id.String(), disk, strconv.Itoa(sizeGB)+"G")
	return err
}

// Start starts the guest; starting a running guest fails, as with pct.
func (h *Host) Start(ctx context.Context, kind api.Kind, id api.ID) error {
	_, err := h.cmd(ctx, kind, id, "start", "start", id.String())
	return err
}

// shutdownTimeout is how long a guest gets to shut down cleanly before it
// is stopped hard.
const shutdownTimeout = "60"

// Stop shuts the guest down cleanly (`shutdown --forceStop 1`): services
// inside get to stop, and a guest that does not react within a minute is
// stopped hard, so Stop always ends with a stopped guest.
func (h *Host) Stop(ctx context.Context, kind api.Kind, id api.ID) error {
	_, err := h.cmd(ctx, kind, id, "shutdown", "shutdown", id.String(), "--forceStop", "1", "--timeout", shutdownTimeout)
	return err
}

// Destroy removes a stopped guest, its disks, and (--purge) its entries in
// backup jobs, replication and HA.
func (h *Host) Destroy(ctx context.Context, kind api.Kind, id api.ID) error {
	_, err := h.cmd(ctx, kind, id, "destroy", "destroy", id.String(), "--purge")
	return err
}

// snapshotNameRE is what Proxmox accepts as a snapshot name.
var snapshotNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]+$`)

// Snapshot takes a snapshot named name.
func (h *Host) Snapshot(ctx context.Context, kind api.Kind, id api.ID, name string) error {
	if !snapshotNameRE.MatchString(name) || len(name) > 40 {
		return fmt.Errorf("snapshot %s %s: name %q: want a lowercase letter, then letters, digits, _ or -, at most 40 in all", kind, id, name)
	}
	_, err := h.cmd(ctx, kind, id, "snapshot", "snapshot", id.String(), name)
	return err
}

// ConvertToTemplate turns a stopped guest without snapshots into a template.
func (h *Host) ConvertToTemplate(ctx context.Context, kind api.Kind, id api.ID) error {
	_, err := h.cmd(ctx, kind, id, "template", "template", id.String())
	return err
}

// errLockTimeout is a config lock that stayed taken for lockWait.
var errLockTimeout = errors.New("got timeout")
