package desired

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// The old tool's files as they are today, and a held-out variant of them,
// load unchanged, with the fields phoenix acts on decoded.
func TestUpstreamFilesLoad(t *testing.T) {
	uid33, gid33 := 33, 33
	tests := []struct {
		dir      string
		lxc, vm  int
		nginx    api.ID
		wantDNS  map[api.ID][]string
		portaVM  api.ID
		nfsPath  string
		unknown  string // a field only scripts read, kept in Raw
		wantMPN  string
		stacksOK bool
	}{
		{
			dir: "../../testdata/upstream-2025-11", lxc: 12, vm: 3, nginx: 101,
			wantDNS: map[api.ID][]string{900: {"8.8.8.8"}, 101: {"10.0.0.13"}, 1001: {"10.0.0.13"}},
			portaVM: 1001, nfsPath: "/quickOS/vm-persistent-data/1001", unknown: "traefik_service",
			wantMPN: "/mnt/pve/quickOS/lxc-persistent-data/101/logs", stacksOK: true,
		},
		{
			dir: "../../testdata/upstream-2025-11-variant", lxc: 12, vm: 3, nginx: 151,
			wantDNS: map[api.ID][]string{
				950: {"8.8.8.8", "1.1.1.1"}, 151: {"10.0.0.13", "9.9.9.9"}, 152: {"10.0.0.13", "8.8.4.4"},
				1011: {"10.0.0.13", "10.0.0.14"},
			},
			portaVM: 1011, nfsPath: "/quickOS/vm-persistent-data/1011", unknown: "x_heldout_note",
			wantMPN: "/mnt/pve/quickOS/lxc-persistent-data/151/logs", stacksOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			c, err := Load(tt.dir)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var lxc, vm int
			for _, g := range c.Guests {
				if g.Kind == api.KindLXC {
					lxc++
				} else {
					vm++
				}
			}
			if lxc != tt.lxc || vm != tt.vm {
				t.Errorf("got %d containers and %d VMs, want %d and %d", lxc, vm, tt.lxc, tt.vm)
			}
			for id, want := range tt.wantDNS {
				if got := c.Guest(id).Spec.NetworkConfig.DNS(); !reflect.DeepEqual(got, want) {
					t.Errorf("guest %d name servers = %q, want %q", id, got, want)
				}
			}
			n := c.Guest(tt.nginx)
			want := api.MountPoint{HostPath: tt.wantMPN, ContainerPath: "/var/log/nginx", OwnerUID: &uid33, OwnerGID: &gid33}
			if len(n.Spec.MountPoints) != 3 || !reflect.DeepEqual(n.Spec.MountPoints[0], want) {
				t.Errorf("guest %d mount_points = %+v, want 3 starting with %+v", tt.nginx, n.Spec.MountPoints, want)
			}
			if wantMap := []api.IDMap{{Type: "gid", ContainerID: 33, HostID: 33, Size: 1}}; !reflect.DeepEqual(n.Spec.IDMaps, wantMap) {
				t.Errorf("guest %d id_maps = %+v, want %+v", tt.nginx, n.Spec.IDMaps, wantMap)
			}
			if n.Spec.SwapMB != 512 || n.Spec.Firewall == nil || !n.Spec.Firewall.Enabled || len(n.Spec.Firewall.Rules) != 7 {
				t.Errorf("guest %d swap %d firewall %+v: want 512 and 7 rules enabled", tt.nginx, n.Spec.SwapMB, n.Spec.Firewall)
			}
			if n.Spec.PortainerRole != "infrastructure" {
				t.Errorf("guest %d portainer_role = %q", tt.nginx, n.Spec.PortainerRole)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(n.Raw, &raw); err != nil || raw[tt.unknown] == nil {
				t.Errorf("guest %d: unknown field %s not kept for scripts (err %v)", tt.nginx, tt.unknown, err)
			}
			p := c.Guest(tt.portaVM)
			if len(p.Spec.Volumes) != 2 || p.Spec.Volumes[0].Type != "nfs" || p.Spec.Volumes[0].Path != tt.nfsPath ||
				p.Spec.Volumes[0].Server != "10.0.0.13" || p.Spec.Volumes[0].MountPoint != "/persistent-storage" {
				t.Errorf("VM %d volumes = %+v", tt.portaVM, p.Spec.Volumes)
			}
			if p.BootRank() != 4 || p.Spec.BootDelay != 2 || !p.StartsAtBoot() || p.Spec.UserConfig["username"] != "phoenix_user" {
				t.Errorf("VM %d boot %d/%d start %v user %v", tt.portaVM, p.BootRank(), p.Spec.BootDelay, p.StartsAtBoot(), p.Spec.UserConfig)
			}
			if (c.Stacks != nil) != tt.stacksOK {
				t.Errorf("stacks file loaded = %v, want %v", c.Stacks != nil, tt.stacksOK)
			}
		})
	}
}

// Values phoenix would act on as root are refused with the file, guest and
// field named.
func TestNewFieldsRefused(t *testing.T) {
	tests := []struct {
		name, guest, field string
	}{
		{`"mount_points":[{"host_path":"/mnt/a/../../etc","container_path":"/x"}]`, "200", "mount_points[0].host_path"},
		{`"mount_points":[{"host_path":"/etc/pve/x","container_path":"/x"}]`, "200", "mount_points[0].host_path"},
		{`"mount_points":[{"host_path":"/mnt/a","container_path":"relative"}]`, "200", "mount_points[0].container_path"},
		{`"mount_points":[{"host_path":"/mnt/a,mp=/x","container_path":"/x"}]`, "200", "mount_points[0].host_path"},
		{`"id_maps":[{"type":"user","container_id":0,"host_id":100000,"size":1}]`, "200", "id_maps[0].type"},
		{`"id_maps":[{"type":"uid","container_id":0,"host_id":100000,"size":0}]`, "200", "id_maps[0].size"},
		{`"network_config":{"nameservers":"10.0.0.1, not-an-ip"}`, "200", "network_config.nameservers[1]"},
		{`"volumes":[{"type":"nfs","server":"10.0.0.1","path":"/x","mount_point":"/y"}]`, "200", "volumes[0].type"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, api.LXCFile), `{"lxc_configs":{"200":{"name":"a","template":"t.tar.zst",`+tt.name+`}}}`)
			_, err := Load(dir)
			ie, ok := err.(*api.InvalidError)
			if !ok {
				t.Fatalf("load: %v, want an InvalidError", err)
			}
			for _, p := range ie.Problems {
				if p.Guest == tt.guest && p.Field == tt.field {
					return
				}
			}
			t.Errorf("no problem for guest %s field %s; got %v", tt.guest, tt.field, err)
		})
	}
}
