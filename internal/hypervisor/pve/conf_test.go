package pve

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The files under testdata/conf are in Proxmox's exact format: written
// the way PVE::LXC::Config::write_pct_config and
// PVE::QemuServer::write_vm_config lay them out (description as
// percent-encoded '#' lines, sorted keys, raw lxc.* keys last, snapshot
// sections sorted by name with parent and snaptime, a pending section,
// cloud-init's special section).
func TestParseConf(t *testing.T) {
	tests := []struct {
		file      string
		current   map[string]string
		snapshots []string
	}{
		{"lxc-snapshots.conf", map[string]string{
			"arch": "amd64", "cores": "2", "description": "web server: front\nsecond line",
			"features": "nesting=1", "hostname": "web", "memory": "2048",
			"mp0":    "local-zfs:subvol-101-disk-1,mp=/data,backup=1,size=1T",
			"net0":   "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:2A:3B:4C,ip=10.0.0.2/24,gw=10.0.0.1,ip6=fd00::2/64,gw6=fd00::1,type=veth",
			"onboot": "1", "ostype": "debian", "parent": "configured",
			"rootfs": "local-zfs:subvol-101-disk-0,size=8G", "swap": "512", "unprivileged": "1",
			"lxc.apparmor.profile":      "unconfined",
			"lxc.mount.entry":           "/dev/fuse dev/fuse none bind,create=file\n/dev/net/tun dev/net/tun none bind,create=file",
			"lxc.cgroup2.devices.allow": "c 10:200 rwm",
		}, []string{"base", "configured", "Branch-B"}},
		{"lxc-template-locked.conf", map[string]string{
			"arch": "amd64", "hostname": "tmpl", "lock": "disk", "memory": "512", "ostype": "ubuntu",
			"rootfs": "local-lvm:base-900-disk-0,size=4G", "swap": "512", "template": "1",
		}, nil},
		{"qemu-cloudinit.conf", map[string]string{
			"agent": "1", "boot": "order=scsi0", "ciuser": "phoenix", "cores": "2",
			"ide2":      "local-zfs:vm-8000-cloudinit,media=cdrom",
			"ipconfig0": "ip=10.0.0.50/24,gw=10.0.0.1,ip6=fd00::50/64,gw6=fd00::1", "memory": "4096",
			"meta": "creation-qemu=9.0.2,ctime=1733050000", "name": "db",
			"net0": "virtio=BC:24:11:00:00:50,bridge=vmbr0", "scsi0": "local-zfs:vm-8000-disk-0,size=32G",
			"scsihw": "virtio-scsi-pci", "smbios1": "uuid=8c4f7b1e-1111-2222-3333-444455556666",
			"vmgenid": "0a1b2c3d-0000-1111-2222-333344445555", "parent": "pre-configured",
		}, []string{"pre-configured"}},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", "conf", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		c := parseConf(data)
		if !reflect.DeepEqual(c.Current, tt.current) {
			for k, v := range tt.current {
				if c.Current[k] != v {
					t.Errorf("%s: %s = %q; want %q", tt.file, k, c.Current[k], v)
				}
			}
			for k, v := range c.Current {
				if _, ok := tt.current[k]; !ok {
					t.Errorf("%s: unexpected %s = %q", tt.file, k, v)
				}
			}
		}
		if got := c.snapshotOrder(); !reflect.DeepEqual(got, tt.snapshots) && (len(got) > 0 || len(tt.snapshots) > 0) {
			t.Errorf("%s: snapshots %q; want %q", tt.file, got, tt.snapshots)
		}
	}
}

func FuzzParseConf(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "conf", "*.conf"))
	for _, p := range files {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Add([]byte("[a]\nparent: b\n[b]\nparent: a\nparent: a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := parseConf(data)
		names := c.snapshotOrder()
		if len(names) != len(c.Snapshots) {
			t.Fatalf("snapshotOrder lists %d of %d snapshots", len(names), len(c.Snapshots))
		}
	})
}
