package reconcilers

import (
	"context"
	"sort"
	"strconv"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// Diff reads the guest from the host and returns where it differs from
// the desired state: what its create workflow would change. Steps that
// always run (features, application scripts, health checks) are not
// changes and are not listed.
func Diff(ctx context.Context, host hypervisor.Host, g *api.Guest) ([]plan.Change, error) {
	cur, ok, err := hypervisor.Exists(ctx, host, g.Kind, g.ID)
	if err != nil {
		return nil, err
	}
	if !ok {
		cur = nil
	}
	return Changes(g, cur), nil
}

// Changes compares a guest as the host has it (nil: missing) with its
// desired state. It uses the same desired config and the same comparison
// as the workflow steps, so it lists exactly what they would set: a value
// Proxmox only rewrote (net0's option order, a mount point's volume name)
// is no change. Config keys come sorted, then the firewall, the disk, the template
// conversion and missing snapshots.
func Changes(g *api.Guest, cur *hypervisor.Guest) []plan.Change {
	if cur == nil {
		return []plan.Change{{Key: plan.KeyGuest, Have: plan.Absent, Want: plan.Present}}
	}
	var out []plan.Change
	addConfig := func(want map[string]string, owned func(string) bool) {
		diff := setDiff(cur.Config, want, owned)
		keys := make([]string, 0, len(diff))
		for k := range diff {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, plan.Change{Key: k, Have: cur.Config[k], Want: diff[k]})
		}
	}
	wantDisk := g.Spec.StorageSizeGB
	var snapshots []string
	if g.Kind == api.KindVM {
		addConfig(VMConfig(g), nil)
		wantDisk = g.Spec.DiskSizeGB
		if !g.Spec.IsTemplate {
			snapshots = append(snapshots, g.Spec.TemplateSnapshotName)
		}
	} else {
		cfg := LXCConfig(g)
		for k, v := range LXCVolumes(g) {
			cfg[k] = v
		}
		owned := func(k string) bool { return ownedDev(k) || ownedMP(k) }
		addConfig(cfg, owned)
		snapshots = append(snapshots, lifecycle(g, SnapshotPreconfigured), g.Spec.TemplateSnapshotName, lifecycle(g, SnapshotFinal))
	}
	if have, want, ok := firewallChange(g, cur); ok {
		out = append(out, plan.Change{Key: plan.KeyFirewall, Have: have, Want: want})
	}
	if wantDisk > 0 && cur.DiskGB < wantDisk {
		out = append(out, plan.Change{Key: plan.KeyDisk, Have: gb(cur.DiskGB), Want: gb(wantDisk)})
	}
	if g.Kind == api.KindVM && g.Spec.IsTemplate && !cur.Template {
		out = append(out, plan.Change{Key: plan.KeyTemplate, Have: "0", Want: "1"})
	}
	for _, s := range snapshots {
		if s != "" && !cur.HasSnapshot(s) {
			out = append(out, plan.Change{Key: plan.KeySnapshot + s, Have: plan.Absent, Want: plan.Present})
		}
	}
	return out
}

func gb(n int) string { return strconv.Itoa(n) + "G" }
