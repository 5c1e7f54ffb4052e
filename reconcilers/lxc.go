package reconcilers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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

func lxcVolumes(ctx context.Context, r *run) (outcome, error) {
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
	if r.g.Spec.ApplicationScript == "" {
		return skipped, nil
	}
	if err := r.runScript(ctx, hypervisor.AppScript, r.g.Spec.ApplicationScript); err != nil {
		return "", err
	}
	return changed, nil
}

// lxcHealthCheck runs the health check command inside the guest, retrying
// as configured: services started by the application script may take a
// moment to answer.
func lxcHealthCheck(ctx context.Context, r *run) (outcome, error) {
	hc := r.g.Spec.HealthCheck
	if hc == nil || hc.Command == "" {
		return skipped, nil
	}
	s := hypervisor.Script{Kind: hypervisor.HealthScript, Name: "health_check",
		Command: []string{"sh", "-c", hc.Command}, Spec: r.g.Raw}
	tries := retry.Policy{Initial: time.Duration(hc.Interval) * time.Second, Retries: hc.Retries}.Start()
	var err error
	for {
		if err = r.w.host.Run(ctx, r.g.Kind, r.g.ID, s); err == nil {
			return changed, nil
		}
		if werr := tries.Wait(ctx); errors.Is(werr, retry.ErrExhausted) {
			break
		} else if werr != nil {
			return "", werr
		}
	}
	return "", fmt.Errorf("health check %q failed after %d tries: %w", hc.Command, hc.Retries+1, err)
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
// zfs_volumes, then volumes.
func LXCVolumes(g *api.Guest) map[string]string {
	want := map[string]string{}
	vols := append(append([]api.Volume{}, g.Spec.ZFSVolumes...), g.Spec.Volumes...)
	for i, v := range vols {
		want["mp"+strconv.Itoa(i)] = fmt.Sprintf("%s:%d,mp=%s", v.Pool, v.SizeGB, v.MountPoint)
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
		c["net0"] = strings.Join(parts, ",")
	}
	put("features", strings.Join(s.PctOptions, ","))
	if s.StartAtBoot != nil {
		c["onboot"] = boolStr(*s.StartAtBoot)
	}
	if s.BootOrder > 0 || s.BootDelay > 0 {
		c["startup"] = fmt.Sprintf("order=%d,up=%d", s.BootOrder, s.BootDelay)
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
	return c
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
