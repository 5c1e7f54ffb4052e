package reconcilers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// Lifecycle snapshot names, taken when enable_lifecycle_snapshots is set.
const (
	SnapshotPreconfigured = "phoenix-preconfigured"
	SnapshotFinal         = "phoenix-final"
)

// lxcSteps is the LXC create workflow (docs/design.md, "Workflows").
var lxcSteps = []step{
	{"define", lxcDefine},
	{"configure", lxcConfigure},
	{"volumes", lxcVolumes},
	{"disk", growDisk},
	{"firewall", applyFirewall},
	{"start", func(ctx context.Context, r *run) (outcome, error) { return r.start(ctx) }},
	{"snapshot-preconfigured", func(ctx context.Context, r *run) (outcome, error) {
		return r.snapshot(ctx, lifecycle(r.g, SnapshotPreconfigured))
	}},
	{"features", func(ctx context.Context, r *run) (outcome, error) { return r.features(ctx) }},
	{"app-script", lxcAppScript},
	{"health-check", lxcHealthCheck},
	{"template-snapshot", func(ctx context.Context, r *run) (outcome, error) {
		return r.snapshot(ctx, r.g.Spec.TemplateSnapshotName)
	}},
	{"snapshot-final", func(ctx context.Context, r *run) (outcome, error) {
		return r.snapshot(ctx, lifecycle(r.g, SnapshotFinal))
	}},
	{"stop-unless-boot", stopUnlessBoot},
}

func lifecycle(g *api.Guest, name string) string {
	if !g.Spec.EnableLifecycleSnapshots {
		return ""
	}
	return name
}

func lxcDefine(ctx context.Context, r *run) (outcome, error) {
	return r.define(ctx, func(ctx context.Context) error {
		s := &r.g.Spec
		cfg := LXCConfig(r.g)
		unpriv := "1"
		if s.Unprivileged != nil && !*s.Unprivileged {
			unpriv = "0"
		}
		cfg["unprivileged"] = unpriv
		return r.w.host.Create(ctx, api.KindLXC, r.g.ID, hypervisor.CreateSpec{
			Source: s.Template, Storage: s.StoragePool, DiskGB: s.StorageSizeGB, Config: cfg,
		})
	})
}

func lxcConfigure(ctx context.Context, r *run) (outcome, error) {
	return r.applyConfig(ctx, LXCConfig(r.g), ownedDev)
}

// HostDirs is implemented by backends that can create a folder on the
// Proxmox host for a bind mount (pve, and the sim, which records it).
type HostDirs interface {
	// EnsureDir creates path when missing, owned by uid:gid; an existing
	// folder is left as it is.
	EnsureDir(ctx context.Context, path string, uid, gid int) error
}

// lxcVolumes sets the mpN keys: storage volumes first, then bind mounts of
// host folders (mount_points), each folder created first when missing and
// owned by owner_uid:owner_gid as the container sees them.
func lxcVolumes(ctx context.Context, r *run) (outcome, error) {
	for _, m := range r.g.Spec.MountPoints {
		if err := r.ensureHostDir(ctx, m); err != nil {
			return "", err
		}
	}
	want := LXCVolumes(r.g)
	if len(want) == 0 {
		cur, err := r.guest(ctx)
		if err != nil {
			return "", err
		}
		if !hasOwned(cur.Config, ownedMP) {
			return skipped, nil
		}
	}
	return r.applyConfig(ctx, want, ownedMP)
}

func (r *run) ensureHostDir(ctx context.Context, m api.MountPoint) error {
	hd, ok := r.w.host.(HostDirs)
	if !ok {
		return fmt.Errorf("mount point %s: this backend cannot create folders on the Proxmox host; use --backend pve on the host", m.HostPath)
	}
	uid, gid := HostID(r.g, "uid", 0), HostID(r.g, "gid", 0)
	if m.OwnerUID != nil {
		uid = HostID(r.g, "uid", *m.OwnerUID)
	}
	if m.OwnerGID != nil {
		gid = HostID(r.g, "gid", *m.OwnerGID)
	}
	if err := hd.EnsureDir(ctx, m.HostPath, uid, gid); err != nil {
		return fmt.Errorf("mount point %s: %w", m.HostPath, err)
	}
	return nil
}

func growDisk(ctx context.Context, r *run) (outcome, error) {
	want := r.g.Spec.StorageSizeGB
	if r.g.Kind == api.KindVM {
		want = r.g.Spec.DiskSizeGB
	}
	if want == 0 {
		return skipped, nil
	}
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	// Never shrink: Proxmox cannot, and a smaller number in the file is not
	// worth losing data over.
	if cur.DiskGB >= want {
		return unchanged, nil
	}
	if err := r.w.host.Resize(ctx, r.g.Kind, r.g.ID, want); err != nil {
		return "", fmt.Errorf("grow disk from %dG to %dG: %w", cur.DiskGB, want, err)
	}
	r.changed()
	return changed, nil
}

func lxcAppScript(ctx context.Context, r *run) (outcome, error) {
	s, err := r.w.scripts.App(r.cfg, r.g)
	if err != nil {
		return "", err
	}
	if s == nil {
		return skipped, nil
	}
	if err := r.runScript(ctx, *s); err != nil {
		return "", err
	}
	return changed, nil
}

// lxcHealthCheck runs the guest's health checks, retrying as configured:
// services started by the application script may take a moment to answer.
func lxcHealthCheck(ctx context.Context, r *run) (outcome, error) {
	checks, err := r.w.scripts.Health(r.g)
	if err != nil {
		return "", err
	}
	if len(checks) == 0 {
		return skipped, nil
	}
	for _, c := range checks {
		if err := r.check(ctx, c); err != nil {
			return "", err
		}
	}
	return changed, nil
}

func (r *run) check(ctx context.Context, c Check) error {
	tries := retry.Policy{Initial: time.Duration(c.Interval) * time.Second, Retries: c.Retries}.Start()
	var err error
	for {
		if err = r.w.host.Run(ctx, r.g.Kind, r.g.ID, c.Script); err == nil {
			return nil
		}
		if werr := tries.Wait(ctx); errors.Is(werr, retry.ErrExhausted) {
			break
		} else if werr != nil {
			return werr
		}
	}
	what := c.Script.Name
	if len(c.Script.Command) > 0 {
		what = c.Script.Command[len(c.Script.Command)-1]
	}
	return fmt.Errorf("health check %q failed after %d tries: %w", what, c.Retries+1, err)
}

// ownedDev and ownedMP are the key families phoenix owns in a container's
// config: what the host has of them and the spec does not is removed.
var ownedDev, ownedMP = ownedKey("dev"), ownedKey("mp")

func ownedKey(prefix string) func(string) bool {
	re := regexp.MustCompile(`^` + prefix + `[0-9]+$`)
	return re.MatchString
}

func hasOwned(cfg map[string]string, owned func(string) bool) bool {
	for k := range cfg {
		if owned(k) {
			return true
		}
	}
	return false
}

// LXCVolumes are the container's mount points phoenix wants, mp0 first:
// zfs_volumes, then volumes, then the bind mounts of mount_points.
func LXCVolumes(g *api.Guest) map[string]string {
	want := map[string]string{}
	vols := append(append([]api.Volume{}, g.Spec.ZFSVolumes...), g.Spec.Volumes...)
	for i, v := range vols {
		want["mp"+strconv.Itoa(i)] = fmt.Sprintf("%s:%d,mp=%s", v.Pool, v.SizeGB, v.MountPoint)
	}
	// Bind mounts of host folders (mount_points) come after.
	for i, m := range g.Spec.MountPoints {
		want["mp"+strconv.Itoa(len(vols)+i)] = m.HostPath + ",mp=" + m.ContainerPath
	}
	return want
}

// LXCConfig is the container config phoenix wants for g, by pct config key.
func LXCConfig(g *api.Guest) map[string]string {
	s := &g.Spec
	c := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			c[k] = v
		}
	}
	put("hostname", s.Name)
	if s.MemoryMB > 0 {
		c["memory"] = strconv.Itoa(s.MemoryMB)
	}
	if s.Cores > 0 {
		c["cores"] = strconv.Itoa(s.Cores)
	}
	if s.SwapMB > 0 {
		c["swap"] = strconv.Itoa(s.SwapMB)
	}
	if n := s.NetworkConfig; n != nil {
		name := n.Name
		if name == "" {
			name = "eth0"
		}
		parts := []string{"name=" + name}
		if n.Bridge != "" {
			parts = append(parts, "bridge="+n.Bridge)
		}
		parts = append(parts, ipOptions(n.IP, n.GW)...)
		if s.MACAddress != "" {
			parts = append(parts, "hwaddr="+strings.ToUpper(s.MACAddress))
		}
		if s.Firewall != nil && s.Firewall.Enabled {
			parts = append(parts, "firewall=1")
		}
		c["net0"] = strings.Join(parts, ",")
		put("nameserver", strings.Join(n.DNS(), " "))
	}
	put("features", strings.Join(s.PctOptions, ","))
	if s.StartAtBoot != nil {
		c["onboot"] = boolStr(*s.StartAtBoot)
	}
	if order := g.BootRank(); (s.BootOrder != nil && order > 0) || s.BootDelay > 0 {
		if s.BootOrder == nil {
			order = 0
		}
		c["startup"] = fmt.Sprintf("order=%d,up=%d", order, s.BootDelay)
	}
	if s.ApparmorProfile != "" {
		c["lxc.apparmor.profile"] = s.ApparmorProfile
	}
	// A key given more than once (lxc.mount.entry, lxc.cgroup2.devices.allow)
	// keeps every value, one per line, as in the container's config file.
	// Entries are "lxc.key=value" or "lxc.key:value" (validated on load);
	// lxc.cap.keep's comma list is one line per capability.
	for _, opt := range s.LXCOptions {
		for _, kv := range desired.LXCOptionLines(opt) {
			k, v := kv[0], kv[1]
			if prev, dup := c[k]; dup && k != "lxc.apparmor.profile" {
				v = prev + "\n" + v
			}
			c[k] = v
		}
	}
	for i, dev := range gpuDevices(s.GPUAssignment) {
		c["dev"+strconv.Itoa(i)] = dev
	}
	if m := idmapLines(s.IDMaps); m != "" {
		c["lxc.idmap"] = m
	}
	return c
}

// Where an unprivileged container's IDs start on the host, and how many
// it has: Proxmox's defaults (root:100000:65536 in /etc/subuid).
const (
	idmapBase = 100000
	idmapSize = 65536
)

// idmapLines turns id_maps into the lxc.idmap lines of the container
// config: the given ranges, and the default shifted mapping around them,
// since LXC wants all 65536 IDs of a type mapped once a type has an entry.
func idmapLines(maps []api.IDMap) string {
	if len(maps) == 0 {
		return ""
	}
	var lines []string
	for _, typ := range []string{"uid", "gid"} {
		var ranges []api.IDMap
		for _, m := range maps {
			if m.Type == typ && m.Size > 0 {
				ranges = append(ranges, m)
			}
		}
		slices.SortFunc(ranges, func(a, b api.IDMap) int { return a.ContainerID - b.ContainerID })
		letter := typ[:1]
		next := 0
		for _, m := range ranges {
			if m.ContainerID < next {
				continue // overlaps the one before; validation names it
			}
			if m.ContainerID > next {
				lines = append(lines, fmt.Sprintf("%s %d %d %d", letter, next, idmapBase+next, m.ContainerID-next))
			}
			lines = append(lines, fmt.Sprintf("%s %d %d %d", letter, m.ContainerID, m.HostID, m.Size))
			next = m.ContainerID + m.Size
		}
		if next < idmapSize {
			lines = append(lines, fmt.Sprintf("%s %d %d %d", letter, next, idmapBase+next, idmapSize-next))
		}
	}
	return strings.Join(lines, "\n")
}

// HostID is the host ID a container ID maps to: by id_maps, else shifted
// into the default range for an unprivileged container, else itself.
func HostID(g *api.Guest, typ string, id int) int {
	for _, m := range g.Spec.IDMaps {
		if m.Type == typ && id >= m.ContainerID && id < m.ContainerID+m.Size {
			return m.HostID + id - m.ContainerID
		}
	}
	if g.Spec.Unprivileged != nil && !*g.Spec.Unprivileged {
		return id
	}
	return idmapBase + id
}

// gpuDevices maps gpu_assignment ("0", "0, 1", "none") to the device nodes
// passed into the container.
func gpuDevices(assign string) []string {
	assign = strings.TrimSpace(assign)
	if assign == "" || assign == "none" {
		return nil
	}
	var devs []string
	for _, part := range strings.Split(assign, ",") {
		if part = strings.TrimSpace(part); part != "" {
			devs = append(devs, "/dev/nvidia"+part)
		}
	}
	return append(devs, "/dev/nvidiactl", "/dev/nvidia-uvm")
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ipOptions are the ip/gw options of a net0 (container) or ipconfig0 (VM):
// Proxmox takes an IPv6 address only as ip6= and its gateway as gw6=.
func ipOptions(ip, gw string) []string {
	var parts []string
	if ip != "" {
		if strings.Contains(ip, ":") {
			parts = append(parts, "ip6="+ip)
		} else {
			parts = append(parts, "ip="+ip)
		}
	}
	if gw != "" {
		if strings.Contains(gw, ":") {
			parts = append(parts, "gw6="+gw)
		} else {
			parts = append(parts, "gw="+gw)
		}
	}
	return parts
}
