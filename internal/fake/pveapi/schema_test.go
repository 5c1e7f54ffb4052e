package fakepveapi

import (
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/pveschema"
)

func newVersionCluster(t *testing.T, v pveschema.Version, storages map[string]string) (*Cluster, *httptest.Server) {
	t.Helper()
	c := New(Options{TokenID: testTokenID, Secret: testSecret, Version: v, Storages: storages, TaskDuration: time.Millisecond})
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c, srv
}

// Parameter errors come back as Proxmox's RESTHandler sends them: HTTP 400,
// the reason per parameter in "errors", and the message, for the schema of
// the version the cluster plays; nothing is changed.
func TestCluster_parametersAreCheckedAgainstTheSchema(t *testing.T) {
	ct := Guest{VMID: 200, Type: "lxc", Node: "pve1", Config: map[string]string{"rootfs": "local-zfs:subvol-200-disk-0,size=8G", "hostname": "ct"}}
	vm := Guest{VMID: 300, Type: "qemu", Node: "pve1", Config: map[string]string{"scsi0": "local-zfs:vm-300-disk-0,size=8G"}}
	tests := []struct {
		name       string
		version    pveschema.Version
		method     string
		path       string
		form       url.Values
		wantErrors map[string]string // nil: accepted
	}{
		{"unknown option", 9, "PUT", "/nodes/pve1/lxc/200/config", url.Values{"colour": {"red"}},
			map[string]string{"colour": "property is not defined in schema and the schema does not allow additional properties"}},
		{"integer out of range", 9, "PUT", "/nodes/pve1/lxc/200/config", url.Values{"cores": {"9000"}},
			map[string]string{"cores": "value must have a maximum value of 8192"}},
		{"bad property-string key", 9, "PUT", "/nodes/pve1/lxc/200/config", url.Values{"net0": {"name=eth0,bridge=vmbr0,colour=red"}},
			map[string]string{"net0": "invalid format - invalid key in comma-separated list property: colour"}},
		{"env is PVE 9 only: 8 refuses it", 8, "PUT", "/nodes/pve1/lxc/200/config", url.Values{"env": {"A=1"}},
			map[string]string{"env": "property is not defined in schema and the schema does not allow additional properties"}},
		{"env is PVE 9 only: 9 takes it", 9, "PUT", "/nodes/pve1/lxc/200/config", url.Values{"env": {"A=1"}}, nil},
		{"create with a bad hostname", 9, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"201"}, "ostemplate": {"local:vztmpl/d.tar.zst"}, "hostname": {"bad_name!"}},
			map[string]string{"hostname": "invalid format - value does not look like a valid DNS name"}},
		{"clone with a bad snapshot name", 9, "POST", "/nodes/pve1/qemu/300/clone", url.Values{"newid": {"301"}, "snapname": {"1st"}},
			map[string]string{"snapname": "invalid format - invalid configuration ID '1st'"}},
		{"resize with a bad size", 9, "PUT", "/nodes/pve1/qemu/300/resize", url.Values{"disk": {"scsi0"}, "size": {"10Q"}},
			map[string]string{"size": "value does not match the regex pattern"}},
		{"template with a disk that is no disk", 8, "POST", "/nodes/pve1/qemu/300/template", url.Values{"disk": {"rootfs"}},
			map[string]string{"disk": "value 'rootfs' does not have a value in the enumeration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newVersionCluster(t, tt.version, nil)
			c.AddGuest(ct)
			c.AddGuest(vm)
			before := c.Guests()
			status, doc := call(t, srv, tt.method, tt.path, tt.form)
			if tt.wantErrors == nil {
				if !strings.HasPrefix(status, "200") {
					t.Fatalf("status %s %v, want 200", status, doc)
				}
				return
			}
			if status != "400 Parameter verification failed." {
				t.Fatalf("status %q %v", status, doc)
			}
			if doc["message"] != "Parameter verification failed.\n" || doc["data"] != nil {
				t.Errorf("body %v: want data null and the message", doc)
			}
			errs, _ := doc["errors"].(map[string]any)
			got := map[string]string{}
			for k, v := range errs {
				got[k], _ = v.(string)
			}
			for k, want := range tt.wantErrors {
				if !strings.HasPrefix(got[k], want) {
					t.Errorf("errors[%q] = %q, want %q (all: %v)", k, got[k], want, got)
				}
			}
			if len(got) != len(tt.wantErrors) {
				t.Errorf("errors %v, want only %v", got, tt.wantErrors)
			}
			if after := c.Guests(); !reflect.DeepEqual(before, after) {
				t.Errorf("a refused request changed the cluster")
			}
		})
	}
}

func TestCluster_versionAndStorage(t *testing.T) {
	for _, v := range []pveschema.Version{8, 9} {
		_, srv := newVersionCluster(t, v, map[string]string{"tank": "zfspool", "nas": "nfs"})
		_, doc := call(t, srv, "GET", "/version", nil)
		if rel, _ := doc["data"].(map[string]any)["release"].(string); !strings.HasPrefix(rel, string(rune('0'+v))+".") {
			t.Errorf("PVE %d: release %q", v, rel)
		}
		for _, path := range []string{"/storage", "/nodes/pve2/storage"} {
			_, doc = call(t, srv, "GET", path, nil)
			got := map[string]any{}
			for _, e := range doc["data"].([]any) {
				m := e.(map[string]any)
				got[m["storage"].(string)] = m["type"]
			}
			if want := map[string]any{"tank": "zfspool", "nas": "nfs"}; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v, want %v", path, got, want)
			}
		}
	}
}

// Snapshots and clones are refused as pve-storage refuses what a storage
// type cannot do.
func TestCluster_storageFeatures(t *testing.T) {
	storages := map[string]string{"tank": "zfspool", "thin": "lvmthin", "files": "dir", "nas": "nfs"}
	tests := []struct {
		name  string
		guest Guest
		path  string
		form  url.Values
		want  string // status prefix
	}{
		{"container snapshot on dir", Guest{Type: "lxc", Config: map[string]string{"rootfs": "files:200/subvol-200-disk-0.raw,size=8G"}},
			"/snapshot", url.Values{"snapname": {"s1"}}, "500 snapshot feature is not available"},
		{"container with a mount point on NFS", Guest{Type: "lxc", Config: map[string]string{"rootfs": "tank:subvol-200-disk-0,size=8G", "mp0": "nas:200/vm-200-disk-1.raw,mp=/data,size=8G"}},
			"/snapshot", url.Values{"snapname": {"s1"}}, "500 snapshot feature is not available (mp0 on storage 'nas')"},
		{"container snapshot on zfs", Guest{Type: "lxc", Config: map[string]string{"rootfs": "tank:subvol-200-disk-0,size=8G"}},
			"/snapshot", url.Values{"snapname": {"s1"}}, "200"},
		{"VM snapshot on dir (qcow2)", Guest{Type: "qemu", Config: map[string]string{"scsi0": "files:200/vm-200-disk-0.qcow2,size=8G"}},
			"/snapshot", url.Values{"snapname": {"s1"}}, "200"},
		{"linked clone of a container template on dir", Guest{Type: "lxc", Template: true, Config: map[string]string{"rootfs": "files:200/base-200-disk-0.raw,size=8G"}},
			"/clone", url.Values{"newid": {"201"}}, "500 Linked clone feature is not supported for drive 'rootfs'"},
		{"full clone of a container template on dir", Guest{Type: "lxc", Template: true, Config: map[string]string{"rootfs": "files:200/base-200-disk-0.raw,size=8G"}},
			"/clone", url.Values{"newid": {"201"}, "full": {"1"}}, "200"},
		{"linked clone of a VM template on lvmthin", Guest{Type: "qemu", Template: true, Config: map[string]string{"scsi0": "thin:base-200-disk-0,size=8G"}},
			"/clone", url.Values{"newid": {"201"}}, "200"},
		{"VM full clone from a ZFS snapshot", Guest{Type: "qemu", Config: map[string]string{"scsi0": "tank:vm-200-disk-0,size=8G"}, Snapshots: []Snapshot{{Name: "s1", Config: map[string]string{"scsi0": "tank:vm-200-disk-0,size=8G"}}}},
			"/clone", url.Values{"newid": {"201"}, "snapname": {"s1"}}, "500 Full clone feature is not supported for drive 'scsi0'"},
		{"container full clone from a ZFS snapshot", Guest{Type: "lxc", Config: map[string]string{"rootfs": "tank:subvol-200-disk-0,size=8G"}, Snapshots: []Snapshot{{Name: "s1", Config: map[string]string{"rootfs": "tank:subvol-200-disk-0,size=8G"}}}},
			"/clone", url.Values{"newid": {"201"}, "snapname": {"s1"}}, "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newVersionCluster(t, 9, storages)
			g := tt.guest
			g.VMID, g.Node = 200, "pve1"
			c.AddGuest(g)
			status, doc := call(t, srv, "POST", "/nodes/pve1/"+g.Type+"/200"+tt.path, tt.form)
			if !strings.HasPrefix(status, tt.want) {
				t.Fatalf("status %q %v, want %q", status, doc, tt.want)
			}
			if !strings.HasPrefix(status, "200") && c.Guest(201) != nil {
				t.Error("a refused clone left a guest behind")
			}
		})
	}
}
