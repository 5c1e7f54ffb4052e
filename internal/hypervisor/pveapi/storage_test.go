package pveapi

import (
	"context"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

func withStorages(types map[string]string) clusterOpt {
	return func(fo *fakepveapi.Options, _ *Options) { fo.Storages = types }
}

// Clones and snapshots follow the storage types the cluster reports: a
// template's disks are shared where the storage can, copied where it
// cannot, and what no storage of the guest can do is refused before any
// write, naming the storage and the guest.
func TestHost_storageDecidesClonesAndSnapshots(t *testing.T) {
	storages := map[string]string{"tank": "zfspool", "thin": "lvmthin", "files": "dir", "nas": "nfs"}
	snap := []fakepveapi.Snapshot{{Name: "golden"}}
	tests := []struct {
		name     string
		src      fakepveapi.Guest
		snapshot bool // take a snapshot of src rather than clone it
		spec     hypervisor.CloneSpec
		wantFull string // the clone's full parameter as sent; "" none
		wantErr  string // refused before any write, with this text
	}{
		{name: "container template on zfs: linked",
			src: fakepveapi.Guest{Type: "lxc", Template: true, Config: map[string]string{"rootfs": "tank:basevol-900-disk-0,size=8G", "template": "1"}}},
		{name: "container template on dir: full",
			src:      fakepveapi.Guest{Type: "lxc", Template: true, Config: map[string]string{"rootfs": "files:900/base-900-disk-0.raw,size=8G", "template": "1"}},
			wantFull: "1"},
		{name: "container template with a mount point on NFS: full",
			src:      fakepveapi.Guest{Type: "lxc", Template: true, Config: map[string]string{"rootfs": "tank:basevol-900-disk-0,size=8G", "mp0": "nas:900/vm-900-disk-1.raw,mp=/d,size=1G", "template": "1"}},
			wantFull: "1"},
		{name: "VM template on lvmthin: linked",
			src: fakepveapi.Guest{Type: "qemu", Template: true, Config: map[string]string{"scsi0": "thin:base-900-disk-0,size=8G", "template": "1"}}},
		{name: "VM: full, as for every guest that is no template",
			src:      fakepveapi.Guest{Type: "qemu", Config: map[string]string{"scsi0": "thin:vm-900-disk-0,size=8G"}},
			wantFull: "1"},
		{name: "VM from a ZFS snapshot: refused",
			src:     fakepveapi.Guest{Type: "qemu", Config: map[string]string{"scsi0": "tank:vm-900-disk-0,size=8G"}},
			spec:    hypervisor.CloneSpec{Snapshot: "golden"},
			wantErr: `scsi0 of vm 900 is on storage tank (zfspool), which cannot make a full copy from snapshot "golden"`},
		{name: "container from a ZFS snapshot: full copy",
			src:      fakepveapi.Guest{Type: "lxc", Config: map[string]string{"rootfs": "tank:subvol-900-disk-0,size=8G"}},
			spec:     hypervisor.CloneSpec{Snapshot: "golden"},
			wantFull: "1"},
		{name: "snapshot of a container on dir: refused", snapshot: true,
			src:     fakepveapi.Guest{Type: "lxc", Config: map[string]string{"rootfs": "files:900/vm-900-disk-0.raw,size=8G"}},
			wantErr: "lxc 900: snapshot s2: rootfs is on storage files (dir), which has no snapshots for lxc guests"},
		{name: "snapshot of a container with a mount point on NFS: refused", snapshot: true,
			src:     fakepveapi.Guest{Type: "lxc", Config: map[string]string{"rootfs": "tank:subvol-900-disk-0,size=8G", "mp0": "nas:900/vm-900-disk-1.raw,mp=/d,size=1G"}},
			wantErr: "mp0 is on storage nas (nfs)"},
		{name: "snapshot of a VM on NFS (qcow2)", snapshot: true,
			src: fakepveapi.Guest{Type: "qemu", Config: map[string]string{"scsi0": "nas:900/vm-900-disk-0.qcow2,size=8G"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, withStorages(storages))
			src := tt.src
			src.VMID, src.Node = 900, "pve1"
			for _, s := range snap {
				s.Config = src.Config
				src.Snapshots = append(src.Snapshots, s)
			}
			tc.fake.AddGuest(src)
			kind := api.KindLXC
			if src.Type == "qemu" {
				kind = api.KindVM
			}
			var err error
			if tt.snapshot {
				err = tc.host.Snapshot(context.Background(), kind, 900, "s2")
			} else {
				err = tc.host.Clone(context.Background(), kind, 900, 901, tt.spec)
			}
			var writes []fakepveapi.Request
			for _, r := range tc.fake.Requests() {
				if r.Method != "GET" {
					writes = append(writes, r)
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if len(writes) > 0 {
					t.Errorf("refused, yet wrote %+v", writes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(writes) != 1 {
				t.Fatalf("writes %+v, want one", writes)
			}
			if tt.snapshot {
				if g := tc.fake.Guest(900); !g.HasSnapshot("s2") {
					t.Error("no snapshot s2")
				}
				return
			}
			if got := writes[0].Params["full"]; got != tt.wantFull {
				t.Errorf("clone sent full=%q, want %q", got, tt.wantFull)
			}
			if tc.fake.Guest(901) == nil {
				t.Error("no clone 901")
			}
		})
	}
}
