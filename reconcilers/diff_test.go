package reconcilers

import (
	"maps"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

// TestChanges starts from a host guest exactly as phoenix wants it and
// changes one thing: Changes lists what the workflow would change, and
// nothing for what Proxmox merely rewrites.
func TestChanges(t *testing.T) {
	cfg := load(t, referenceLab)
	tests := []struct {
		name string
		id   api.ID
		spec func(*api.Spec)
		host func(*hypervisor.Guest)
		want []string // "key have -> want"
	}{
		{name: "as wanted", id: 941},
		{name: "memory edited in the file", id: 941,
			spec: func(s *api.Spec) { s.MemoryMB = 96000 },
			want: []string{"memory 72000 -> 96000"}},
		{name: "net0 as Proxmox stores it", id: 941,
			host: func(g *hypervisor.Guest) { g.Config["net0"] = reorder(g.Config["net0"]) + ",type=veth" }},
		{name: "a device the spec no longer lists", id: 941,
			host: func(g *hypervisor.Guest) { g.Config["dev5"] = "/dev/fuse" },
			want: []string{"dev5 /dev/fuse -> "}},
		{name: "a key phoenix does not manage", id: 941,
			host: func(g *hypervisor.Guest) { g.Config["description"] = "by hand" }},
		{name: "a firewall rule edited on the host", id: 941,
			host: func(g *hypervisor.Guest) { g.Firewall = strings.Replace(g.Firewall, "-dport 8000", "-dport 8001", 1) },
			want: []string{"firewall on, 1 rules (ad0a637c) -> on, 1 rules (1a70eb63)"}},
		{name: "a smaller root disk", id: 941,
			host: func(g *hypervisor.Guest) { g.DiskGB = 64 },
			want: []string{"disk 64G -> 128G"}},
		{name: "a larger root disk is never shrunk", id: 941,
			host: func(g *hypervisor.Guest) { g.DiskGB = 500 }},
		{name: "a missing template snapshot", id: 900,
			host: func(g *hypervisor.Guest) { g.Snapshots = g.Snapshots[:1] },
			want: []string{"snapshot pre-configured absent -> present", "snapshot phoenix-final absent -> present"}},
		{name: "a VM template not converted yet", id: 8000,
			host: func(g *hypervisor.Guest) { g.Template = false },
			want: []string{"template 0 -> 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := *cfg.Guest(tt.id)
			if g.ID == 0 {
				t.Fatalf("no guest %d in the reference lab", tt.id)
			}
			cur := wanted(&g)
			if tt.spec != nil {
				tt.spec(&g.Spec)
			}
			if tt.host != nil {
				tt.host(cur)
			}
			var got []string
			for _, c := range Changes(&g, cur) {
				got = append(got, c.Key+" "+c.Have+" -> "+c.Want)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Changes = %q, want %q", got, tt.want)
			}
		})
	}
	g := cfg.Guest(941)
	if got := Changes(g, nil); len(got) != 1 || got[0].Key != "guest" || got[0].Have != "absent" {
		t.Errorf("a missing guest: %+v", got)
	}
}

// wanted is the host guest the workflow leaves behind for g.
func wanted(g *api.Guest) *hypervisor.Guest {
	cur := &hypervisor.Guest{ID: g.ID, Kind: g.Kind, Config: map[string]string{}, DiskGB: g.Spec.StorageSizeGB}
	if g.Kind == api.KindVM {
		maps.Copy(cur.Config, VMConfig(g))
		cur.DiskGB = g.Spec.DiskSizeGB
		cur.Template = g.Spec.IsTemplate
	} else {
		maps.Copy(cur.Config, LXCConfig(g))
		maps.Copy(cur.Config, LXCVolumes(g))
	}
	if fw, ok := firewallWant(g, false); ok {
		cur.Firewall, cur.FirewallOwned = pvefirewall.Format(fw), true
	}
	for _, s := range []string{lifecycle(g, SnapshotPreconfigured), g.Spec.TemplateSnapshotName, lifecycle(g, SnapshotFinal)} {
		if s != "" {
			cur.Snapshots = append(cur.Snapshots, s)
		}
	}
	return cur
}

// reorder reverses an option list, as Proxmox may sort it.
func reorder(opts string) string {
	parts := strings.Split(opts, ",")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ",")
}
