package pve

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
	"github.com/phoenix-hypervisor/phoenix/internal/pveschema"
	"github.com/phoenix-hypervisor/phoenix/internal/pvestorage"
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
	// PVEEtc is Proxmox's cluster file system, /etc/pve on a host: guest
	// configs are read from its lxc/ and qemu-server/ folders, storage
	// types from its storage.cfg.
	PVEEtc string
	// LXCConfDir holds the container configs, <id>.conf; default
	// <PVEEtc>/lxc. Raw lxc.* keys are written there (see the package doc).
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
	// ListTTL is how long one `pct list`/`qm list` answers for the running
	// state of every guest: one pass of a run or of the controller. A
	// guest phoenix changed is asked for again with `status`. Default 2s;
	// negative lists on every Get.
	ListTTL time.Duration
	// AgentWait is how long a VM script waits for the VM's guest agent to
	// answer a ping after a start; default 5m.
	AgentWait time.Duration
	// TimeoutPerGiB raises the timeout of commands that copy disks (clone,
	// disk import, resize) and the lock wait of a clone's source: at least
	// this long per GiB of the disks involved; default 20s.
	TimeoutPerGiB time.Duration
	// Log, when set, is called with the argv of every command before it
	// runs (each retry too), possibly from several goroutines at once.
	Log func(argv []string)
	// Intents, when set, keeps a record of every create and clone while it
	// runs, so that a lock left by a phoenix killed mid-command is known
	// to be phoenix's own and is cleared (see clearLeftover). Nil for
	// read-only runs, which never clear anything.
	Intents *lock.Intents
	// Notice, when set, is told of every lock phoenix clears.
	Notice func(msg string)
}

// Defaults for the zero Options.
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultPVEEtc      = "/etc/pve"
	DefaultListTTL     = 2 * time.Second
	DefaultAgentWait   = 5 * time.Minute
	DefaultPerGiB      = 20 * time.Second
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
	opts  Options
	lists map[api.Kind]*listCache
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
	if opts.PVEEtc == "" {
		opts.PVEEtc = DefaultPVEEtc
		// Callers that only name the container folder, <etc>/lxc, keep
		// finding the VM configs next to it.
		if opts.LXCConfDir != "" && filepath.Base(opts.LXCConfDir) == "lxc" {
			opts.PVEEtc = filepath.Dir(opts.LXCConfDir)
		}
	}
	if opts.LXCConfDir == "" {
		opts.LXCConfDir = filepath.Join(opts.PVEEtc, "lxc")
	}
	if opts.ListTTL == 0 {
		opts.ListTTL = DefaultListTTL
	}
	if opts.AgentWait <= 0 {
		opts.AgentWait = DefaultAgentWait
	}
	if opts.TimeoutPerGiB <= 0 {
		opts.TimeoutPerGiB = DefaultPerGiB
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
	return &Host{opts: opts, lists: map[api.Kind]*listCache{api.KindLXC: {}, api.KindVM: {}}}
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
	return h.cmdOpts(ctx, kind, id, op, runOpts{}, args...)
}

func (h *Host) cmdOpts(ctx context.Context, kind api.Kind, id api.ID, op string, o runOpts, args ...string) (*result, error) {
	bin, name, err := h.tool(kind)
	if err != nil {
		return nil, err
	}
	res, err := h.run(ctx, append([]string{bin}, args...), o)
	if err != nil {
		return res, fmt.Errorf("%s %s %s: %w", name, op, id, err)
	}
	return res, nil
}

// mutate is cmd for a command that changes the guest: its cached running
// state is dropped, whatever the outcome.
func (h *Host) mutate(ctx context.Context, kind api.Kind, id api.ID, op string, args ...string) (*result, error) {
	return h.mutateOpts(ctx, kind, id, op, runOpts{}, args...)
}

func (h *Host) mutateOpts(ctx context.Context, kind api.Kind, id api.ID, op string, o runOpts, args ...string) (*result, error) {
	defer h.forget(kind, id)
	return h.cmdOpts(ctx, kind, id, op, o, args...)
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
			if err := pveschema.CheckLXCKey(k); err != nil {
				// pct would refuse the whole config file afterwards.
				return nil, nil, fmt.Errorf("config key %q: %w", k, err)
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
	rec, err := h.intend(api.KindLXC, id, "create", lockCreate)
	if err != nil {
		return err
	}
	_, err = h.mutateOpts(ctx, api.KindLXC, id, "create", runOpts{started: rec.Started}, args...)
	rec.Done()
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := h.setRaw(ctx, id, raw); err != nil {
			return fmt.Errorf("create lxc %s: %w", id, err)
		}
	}
	return nil
}

var (
	// importedRE finds the volume in qm disk import's output before PVE
	// 8.3: "Successfully imported disk as 'unused0:local-zfs:vm-101-disk-0'".
	importedRE = regexp.MustCompile(`imported disk as '(unused\d+):([^'\n]+)'`)
	// importedNewRE is the same line since PVE 8.3, when the import goes
	// through the config API: "unused0: successfully imported disk
	// 'local-zfs:vm-101-disk-0'".
	importedNewRE = regexp.MustCompile(`(?m)^(unused\d+): successfully imported disk '([^'\n]+)'`)
)

// parseImported returns the unused slot and volume qm disk import made.
func parseImported(out []byte) (slot, volume string, ok bool) {
	if m := importedNewRE.FindSubmatch(out); m != nil {
		return string(m[1]), string(m[2]), true
	}
	if m := importedRE.FindSubmatch(out); m != nil {
		return string(m[1]), string(m[2]), true
	}
	return "", "", false
}

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
	rec, err := h.intend(api.KindVM, id, "create", lockCreate)
	if err != nil {
		return err
	}
	_, err = h.mutateOpts(ctx, api.KindVM, id, "create", runOpts{started: rec.Started}, args...)
	rec.Done()
	if err != nil {
		return err
	}
	if spec.Source == "" {
		return nil
	}
	return h.importBootDisk(ctx, id, spec, values)
}

// importBootDisk imports the cloud image as scsi0, with a cloud-init
// drive, and grows it to DiskGB. A VM left without its boot disk by an
// interrupted create is repaired with it too: its unused imported volume
// is attached instead of importing again.
func (h *Host) importBootDisk(ctx context.Context, id api.ID, spec hypervisor.CreateSpec, values map[string]string) error {
	conf, err := h.readConf(api.KindVM, id)
	if err != nil {
		return err
	}
	vol := ""
	for k, v := range conf.Current {
		if strings.HasPrefix(k, "unused") && strings.HasPrefix(v, spec.Storage+":vm-"+id.String()+"-disk-") {
			vol = v
		}
	}
	if vol == "" {
		timeout := h.diskTimeout(0)
		res, err := h.cmdOpts(ctx, api.KindVM, id, "disk import", runOpts{timeout: timeout},
			"disk", "import", id.String(), spec.Source, spec.Storage)
		h.forget(api.KindVM, id)
		if err != nil {
			return err
		}
		var ok bool
		if _, vol, ok = parseImported(res.stdout); !ok {
			return fmt.Errorf("qm disk import %s: cannot find the imported volume in its output: %s", id, guest.Tail(res.stdout))
		}
	}
	attach := []string{"set", id.String(), "--scsi0", vol, "--boot", "order=scsi0"}
	if values["ide2"] == "" && conf.Current["ide2"] == "" {
		// ipconfig0, ciuser and nameserver only reach the guest through a
		// cloud-init drive.
		attach = append(attach, "--ide2", spec.Storage+":cloudinit")
	}
	if _, err := h.mutate(ctx, api.KindVM, id, "set", attach...); err != nil {
		return err
	}
	if spec.DiskGB > 0 {
		return h.Resize(ctx, api.KindVM, id, spec.DiskGB)
	}
	return nil
}

// RepairBootDisk gives a VM that exists without its boot disk (scsi0) the
// cloud image it should have been made from; nothing when it has one.
func (h *Host) RepairBootDisk(ctx context.Context, id api.ID, spec hypervisor.CreateSpec) (bool, error) {
	conf, err := h.readConf(api.KindVM, id)
	if err != nil {
		return false, err
	}
	if conf.Current["scsi0"] != "" || spec.Source == "" || conf.Current["template"] == "1" {
		return false, nil
	}
	values, _, err := splitConfig(api.KindVM, spec.Config)
	if err != nil {
		return false, err
	}
	return true, h.importBootDisk(ctx, id, spec, values)
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

// diskTimeout is the command timeout for copying gib GiB: the configured
// timeout, or TimeoutPerGiB per GiB when that is longer.
func (h *Host) diskTimeout(gib int) time.Duration {
	return max(h.opts.Timeout, time.Duration(gib)*h.opts.TimeoutPerGiB)
}

// Clone makes dst from src with `pct clone` or `qm clone`, after checking
// that the source's storage can do it: a linked clone of a template where
// its storage supports one, else a full copy; a clone from a snapshot only
// where the storage can copy a snapshot. A lock on the source (another
// clone of it running) is retried as long as a clone of its size takes.
func (h *Host) Clone(ctx context.Context, kind api.Kind, src, dst api.ID, spec hypervisor.CloneSpec) error {
	bin, name, err := h.tool(kind)
	if err != nil {
		return err
	}
	conf, err := h.readConf(kind, src)
	if err != nil {
		return fmt.Errorf("%s clone %s from %s: %w", name, dst, src, err)
	}
	if gone, err := h.clearLeftover(ctx, kind, src, conf); err != nil || gone {
		if err == nil {
			err = hypervisor.NotFound(kind, src)
		}
		return fmt.Errorf("%s clone %s from %s: %w", name, dst, src, err)
	}
	from := conf.Current
	if spec.Snapshot != "" {
		snap, ok := conf.Snapshots[spec.Snapshot]
		if !ok {
			return fmt.Errorf("%s clone %s from %s: %s %s has no snapshot %q", name, dst, src, kind, src, spec.Snapshot)
		}
		from = snap
	}
	full := spec.Full || conf.Current["template"] != "1"
	disks := h.disks(kind, from)
	types := h.storageTypes()
	if !full {
		for _, d := range disks {
			if !pvestorage.Supports(types[d.storage], kind, pvestorage.LinkedClone) {
				full = true // the storage cannot share the template's disks
			}
		}
	}
	if full && spec.Snapshot != "" {
		for _, d := range disks {
			if t := types[d.storage]; !pvestorage.Supports(t, kind, pvestorage.CopySnapshot) {
				return fmt.Errorf("%s clone %s from %s: %s of %s %s is on storage %s (%s), which cannot make a full copy from snapshot %q; clone from a template or the current state instead",
					name, dst, src, d.key, kind, src, d.storage, t, spec.Snapshot)
			}
		}
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
	if full {
		args = append(args, "--full")
	}
	gib := 0
	for _, d := range disks {
		gib += d.gib
	}
	wait := h.diskTimeout(gib)
	defer h.forget(kind, dst)
	dstRec, err := h.intend(kind, dst, "clone", cloneLock(kind))
	if err != nil {
		return err
	}
	defer dstRec.Done()
	var srcRec *lock.Pending
	if kind == api.KindLXC {
		if srcRec, err = h.intend(kind, src, "clone", lockDisk); err != nil {
			return err
		}
		defer srcRec.Done()
	}
	started := func(pgid int) error { return errors.Join(dstRec.Started(pgid), srcRec.Started(pgid)) }
	if _, err := h.run(ctx, args, runOpts{timeout: wait, lockWait: wait, started: started}); err != nil {
		return fmt.Errorf("%s clone %s from %s: %w", name, dst, src, err)
	}
	return nil
}

// Set changes config keys with `pct set`/`qm set` (empty values go to
// --delete) and writes raw lxc.* keys into the container's config file.
// A mount point or disk given as "pool:SIZE" that exists already on that
// pool is never set again (that would allocate a new volume and leave the
// old one as unusedN): it is grown in place with resize, and its other
// options are set on the existing volume.
func (h *Host) Set(ctx context.Context, kind api.Kind, id api.ID, values map[string]string) error {
	toolValues, raw, err := splitConfig(kind, values)
	if err != nil {
		return fmt.Errorf("set %s %s: %w", kind, id, err)
	}
	grow, err := h.keepVolumes(kind, id, toolValues)
	if err != nil {
		return err
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
		if _, err := h.mutate(ctx, kind, id, "set", append([]string{"set", id.String()}, args...)...); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(grow)) {
		if err := h.resizeDisk(ctx, kind, id, k, grow[k]); err != nil {
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

// newVolumeRE is a disk to allocate: "pool:SIZE_GiB".
var newVolumeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.-]*):(\d+)$`)

// keepVolumes rewrites, in values, every "pool:SIZE,opts" for a disk key
// that already holds a volume on that pool: to the existing volume with
// the new options when they differ, or out of values when only the size
// does. It returns the sizes (GiB) to grow such disks to.
func (h *Host) keepVolumes(kind api.Kind, id api.ID, values map[string]string) (map[string]int, error) {
	grow := map[string]int{}
	var conf *guestConf
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if !isDiskKey(kind, k) || values[k] == "" {
			continue
		}
		head, opts, _ := strings.Cut(values[k], ",")
		m := newVolumeRE.FindStringSubmatch(head)
		if m == nil {
			continue
		}
		if conf == nil {
			var err error
			if conf, err = h.readConf(kind, id); err != nil {
				return nil, fmt.Errorf("set %s %s: %w", kind, id, err)
			}
		}
		have := conf.Current[k]
		haveVol, haveOpts, _ := strings.Cut(have, ",")
		if have == "" || !strings.HasPrefix(haveVol, m[1]+":") {
			continue // a new disk, or one moving to another pool
		}
		want, _ := strconv.Atoi(m[2])
		if diskGB(have) < want {
			grow[k] = want
		}
		ho := propMap(haveOpts)
		changed := false
		for o, v := range propMap(opts) {
			if ho[o] != v {
				changed = true
			}
		}
		if !changed {
			delete(values, k)
			continue
		}
		rest := []string{haveVol}
		if opts != "" {
			rest = append(rest, opts)
		}
		values[k] = strings.Join(rest, ",")
	}
	return grow, nil
}

func propMap(s string) map[string]string {
	m := map[string]string{}
	for o := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(o, "="); ok {
			m[k] = v
		}
	}
	return m
}

func isDiskKey(kind api.Kind, k string) bool {
	if kind == api.KindLXC {
		return k == "rootfs" || mpKeyRE.MatchString(k)
	}
	return vmDiskKeyRE.MatchString(k)
}

var (
	mpKeyRE     = regexp.MustCompile(`^mp\d+$`)
	vmDiskKeyRE = regexp.MustCompile(`^(?:scsi|virtio|sata|ide)\d+$`)
)

// Resize grows the root disk (rootfs, scsi0) to sizeGB. It reads the
// config file first and does nothing when the disk is already that big:
// the tools refuse to shrink, and a smaller size is not worth an error.
func (h *Host) Resize(ctx context.Context, kind api.Kind, id api.ID, sizeGB int) error {
	disk := "rootfs"
	if kind == api.KindVM {
		disk = "scsi0"
	}
	return h.resizeDisk(ctx, kind, id, disk, sizeGB)
}

// resizeDisk grows one disk in place and reads the size back: pct resize
// and qm resize exit 0 when their task fails, saying so on stderr only.
func (h *Host) resizeDisk(ctx context.Context, kind api.Kind, id api.ID, disk string, sizeGB int) error {
	conf, err := h.readConf(kind, id)
	if err != nil {
		return err
	}
	switch cur := diskGB(conf.Current[disk]); {
	case cur == sizeGB:
		return nil
	case cur > sizeGB:
		return fmt.Errorf("%s %s: resize %s to %dG: shrinking a disk is not supported (it is %dG)", kind, id, disk, sizeGB, cur)
	}
	res, err := h.cmdOpts(ctx, kind, id, "resize", runOpts{timeout: h.diskTimeout(sizeGB)},
		"resize", id.String(), disk, strconv.Itoa(sizeGB)+"G")
	h.forget(kind, id)
	if err != nil {
		return err
	}
	after, err := h.readConf(kind, id)
	if err != nil {
		return err
	}
	if got := diskGB(after.Current[disk]); got < sizeGB {
		_, name, _ := h.tool(kind)
		return fmt.Errorf("%s resize %s %s to %dG: the command exited 0 but %s is still %dG: %s",
			name, id, disk, sizeGB, disk, got, orNothing(guest.Tail(res.output)))
	}
	return nil
}

func orNothing(s string) string {
	if s == "" {
		return "(nothing on stderr)"
	}
	return s
}

// Start starts the guest; starting a running guest fails, as with pct.
func (h *Host) Start(ctx context.Context, kind api.Kind, id api.ID) error {
	_, err := h.mutate(ctx, kind, id, "start", "start", id.String())
	return err
}

// shutdownTimeout is how long a guest gets to shut down cleanly before it
// is stopped hard.
const shutdownTimeout = "60"

// Stop shuts the guest down cleanly (`shutdown --forceStop 1`): services
// inside get to stop, and a guest that does not react within a minute is
// stopped hard, so Stop always ends with a stopped guest.
func (h *Host) Stop(ctx context.Context, kind api.Kind, id api.ID) error {
	_, err := h.mutate(ctx, kind, id, "shutdown", "shutdown", id.String(), "--forceStop", "1", "--timeout", shutdownTimeout)
	return err
}

// Destroy removes a stopped guest, its disks, and (--purge) its entries in
// backup jobs, replication and HA.
func (h *Host) Destroy(ctx context.Context, kind api.Kind, id api.ID) error {
	_, err := h.mutate(ctx, kind, id, "destroy", "destroy", id.String(), "--purge")
	return err
}

// snapshotNameRE is pve-configid, what Proxmox accepts as a snapshot name:
// a letter, then letters, digits, '_' or '-', in either case.
var snapshotNameRE = regexp.MustCompile(`^(?i:[a-z][a-z0-9_-]+)$`)

// Snapshot takes a snapshot named name, after checking that every disk of
// the guest is on a storage that has snapshots.
func (h *Host) Snapshot(ctx context.Context, kind api.Kind, id api.ID, name string) error {
	if !snapshotNameRE.MatchString(name) || len(name) > 40 || strings.EqualFold(name, "current") {
		return fmt.Errorf("snapshot %s %s: name %q: want a letter, then letters, digits, _ or -, at most 40 in all, not \"current\"", kind, id, name)
	}
	conf, err := h.readConf(kind, id)
	if err != nil {
		return fmt.Errorf("snapshot %s %s: %w", kind, id, err)
	}
	types := h.storageTypes()
	for _, d := range h.disks(kind, conf.Current) {
		if t := types[d.storage]; !pvestorage.Supports(t, kind, pvestorage.Snapshot) {
			return fmt.Errorf("snapshot %s %s %q: %s is on storage %s (%s), which has no snapshots for %s guests; move it to a zfspool or lvmthin storage, or drop the snapshot from the plan",
				kind, id, name, d.key, d.storage, t, kind)
		}
	}
	_, err = h.mutate(ctx, kind, id, "snapshot", "snapshot", id.String(), name)
	return err
}

// ConvertToTemplate turns a stopped guest without snapshots into a
// template, and reads the flag back: qm template exits 0 when its task
// fails.
func (h *Host) ConvertToTemplate(ctx context.Context, kind api.Kind, id api.ID) error {
	res, err := h.mutate(ctx, kind, id, "template", "template", id.String())
	if err != nil {
		return err
	}
	conf, err := h.readConf(kind, id)
	if err != nil {
		return err
	}
	if conf.Current["template"] != "1" {
		_, name, _ := h.tool(kind)
		return fmt.Errorf("%s template %s: the command exited 0 but the guest is not a template: %s", name, id, orNothing(guest.Tail(res.output)))
	}
	return nil
}

// errLockTimeout is a config lock that stayed taken for lockWait.
var errLockTimeout = errors.New("got timeout")
