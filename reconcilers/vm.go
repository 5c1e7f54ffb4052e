package reconcilers

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// vmSteps is the VM create workflow (docs/design.md, "Workflows").
var vmSteps = []step{
	{"define", vmDefine},
	{"configure", vmConfigure},
	{"firewall", applyFirewall},
	{"start", vmStart},
	{"nfs-mounts", vmNFSMounts},
	{"features", vmFeatures},
	{"template", vmTemplate},
	{"stop-unless-boot", stopUnlessBoot},
}

// nfsMountScript adds an fstab line unless present, and mounts it unless
// mounted. It is fixed text; the line and the folder come as its
// arguments, so no value from a file is ever read by a shell as code.
const nfsMountScript = `set -e
line="$1"; dir="$2"
mkdir -p -- "$dir"
grep -qxF -- "$line" /etc/fstab || printf '%s\n' "$line" >> /etc/fstab
mountpoint -q -- "$dir" || mount -- "$dir"
`

// vmNFSMounts mounts the VM's nfs volumes inside it, through the guest
// agent: an fstab entry (so they come back after a reboot) and a mount, as
// the old vm-manager did.
func vmNFSMounts(ctx context.Context, r *run) (outcome, error) {
	var vols []api.Volume
	for _, v := range r.g.Spec.Volumes {
		if v.Type == "nfs" {
			vols = append(vols, v)
		}
	}
	if len(vols) == 0 {
		return skipped, nil
	}
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	if cur.Template || !cur.Running {
		// A template never runs; its clones mount their own volumes.
		return skipped, nil
	}
	for _, v := range vols {
		line := v.Server + ":" + v.Path + " " + v.MountPoint + " nfs defaults,auto,nofail 0 0"
		s := hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "nfs " + v.MountPoint,
			Command: []string{"sh", "-c", nfsMountScript, "phoenix-nfs", line, v.MountPoint}}
		if err := r.w.host.Run(ctx, api.KindVM, r.g.ID, s); err != nil {
			return "", fmt.Errorf("mount %s:%s at %s: %w", v.Server, v.Path, v.MountPoint, err)
		}
	}
	return changed, nil
}

func vmDefine(ctx context.Context, r *run) (outcome, error) {
	s := &r.g.Spec
	spec := hypervisor.CreateSpec{
		Source: imagePath(r.cfg, s.TemplateImage), Storage: s.StoragePool, DiskGB: s.DiskSizeGB, Config: VMConfig(r.g),
	}
	out, err := r.define(ctx, func(ctx context.Context) error {
		return r.w.host.Create(ctx, api.KindVM, r.g.ID, spec)
	})
	if err != nil || out != unchanged || r.g.CloneSource() != 0 || spec.Source == "" {
		return out, err
	}
	// A VM whose create stopped between qm create and the import of its
	// cloud image exists without a boot disk: repair it, do not skip it.
	if rep, ok := r.w.host.(bootDiskRepairer); ok {
		repaired, err := rep.RepairBootDisk(ctx, r.g.ID, spec)
		if err != nil {
			return "", fmt.Errorf("repair the boot disk of %s: %w", r.g.ID, err)
		}
		if repaired {
			r.changed()
			return changed, nil
		}
	}
	return out, nil
}

// bootDiskRepairer is a host that can give an existing VM the boot disk
// its create did not get to import.
type bootDiskRepairer interface {
	RepairBootDisk(ctx context.Context, id api.ID, spec hypervisor.CreateSpec) (bool, error)
}

// imagePath resolves a relative template_image against the config folder,
// not the working directory phoenix happens to run in. Volume IDs
// (storage:path) and absolute paths stay as they are.
func imagePath(cfg *api.Config, image string) string {
	if image == "" || filepath.IsAbs(image) || cfg == nil {
		return image
	}
	if i := strings.IndexByte(image, ':'); i > 0 && !strings.ContainsRune(image[:i], '/') {
		return image
	}
	p := filepath.Join(cfg.Dir, image)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func vmConfigure(ctx context.Context, r *run) (outcome, error) {
	cfgOut, err := r.applyConfig(ctx, VMConfig(r.g), nil)
	if err != nil {
		return "", err
	}
	diskOut, err := growDisk(ctx, r)
	if err != nil {
		return "", err
	}
	if cfgOut == changed || diskOut == changed {
		return changed, nil
	}
	return unchanged, nil
}

// vmStart starts the VM unless it is (or only becomes) a template: a
// template with no features never needs to run.
func vmStart(ctx context.Context, r *run) (outcome, error) {
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	if cur.Template || (r.g.Spec.IsTemplate && len(r.g.Spec.Features) == 0) {
		return skipped, nil
	}
	return r.start(ctx)
}

func vmFeatures(ctx context.Context, r *run) (outcome, error) {
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	if cur.Template {
		// A converted template cannot run; its features were applied before.
		return skipped, nil
	}
	return r.features(ctx)
}

// vmTemplate converts an is_template VM into a template. Proxmox clones a
// template without a snapshot, so none is taken for it; a VM that is not a
// template but names template_snapshot_name gets that snapshot, for clones
// of it.
func vmTemplate(ctx context.Context, r *run) (outcome, error) {
	s := &r.g.Spec
	if !s.IsTemplate {
		return r.snapshot(ctx, s.TemplateSnapshotName)
	}
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	if cur.Template {
		return unchanged, nil
	}
	if cur.Running {
		if err := r.w.host.Stop(ctx, api.KindVM, r.g.ID); err != nil {
			return "", err
		}
	}
	if err := r.w.host.ConvertToTemplate(ctx, api.KindVM, r.g.ID); err != nil {
		return "", err
	}
	r.changed()
	return changed, nil
}

// VMConfig is the VM config phoenix wants for g, by qm config key.
func VMConfig(g *api.Guest) map[string]string {
	s := &g.Spec
	c := map[string]string{"agent": "1"}
	if s.Name != "" {
		c["name"] = s.Name
	}
	if s.MemoryMB > 0 {
		c["memory"] = strconv.Itoa(s.MemoryMB)
	}
	if s.Cores > 0 {
		c["cores"] = strconv.Itoa(s.Cores)
	}
	bridge := s.NetworkBridge
	if n := s.NetworkConfig; n != nil && n.Bridge != "" {
		bridge = n.Bridge
	}
	if bridge != "" {
		net := "virtio,bridge=" + bridge
		if s.MACAddress != "" {
			net = "virtio=" + strings.ToUpper(s.MACAddress) + ",bridge=" + bridge
		}
		if s.Firewall != nil && s.Firewall.Enabled {
			net += ",firewall=1"
		}
		c["net0"] = net
	}
	if n := s.NetworkConfig; n != nil {
		if parts := ipOptions(n.IP, n.GW); len(parts) > 0 {
			c["ipconfig0"] = strings.Join(parts, ",")
		}
		if dns := n.DNS(); len(dns) > 0 {
			c["nameserver"] = strings.Join(dns, " ")
		}
	}
	if u, ok := s.UserConfig["username"].(string); ok && u != "" {
		c["ciuser"] = u
	}
	if s.StartAtBoot != nil {
		c["onboot"] = boolStr(*s.StartAtBoot)
	}
	if s.BootOrder != nil {
		c["startup"] = fmt.Sprintf("order=%d,up=%d", *s.BootOrder, s.BootDelay)
	}
	return c
}
