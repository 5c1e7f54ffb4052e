package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/pveschema"
)

// labStorages types the reference lab's storages as its ZFS host has them.
func labStorages(lxcDisks string) map[string]string {
	return map[string]string{
		"quickOS-lxc-disks": lxcDisks, "quickOS-vm-disks": "zfspool",
		"fastData-shared-bulk-data": "zfspool", "quickOS-shared-prod-data-volumes": "zfspool",
		"local": "dir",
	}
}

// On a cluster that checks every parameter against Proxmox's schema of
// PVE 8 or 9, the whole lab comes up, a second run writes nothing, and
// clones are linked or full as the storage allows: the VM from its
// template on ZFS shares the template's disk, containers cloned from a
// snapshot are copied.
func TestPVEAPI_strictSchemaOnPVE8And9(t *testing.T) {
	for _, v := range []pveschema.Version{pveschema.PVE8, pveschema.PVE9} {
		t.Run(fmt.Sprint("PVE ", v), func(t *testing.T) {
			l := newAPILab(t, func(o *fakepveapi.Options) { o.Version = v; o.Storages = labStorages("zfspool") })
			code, doc, errOut := l.runJSON("LetsGo")
			if code != 0 || !doc.OK {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			if n := len(l.fake.Guests()); n != 19 {
				t.Errorf("%d guests, want 19", n)
			}
			clones := 0
			for _, r := range l.fake.Requests() {
				if r.Method != "POST" || !strings.HasSuffix(r.Path, "/clone") {
					continue
				}
				clones++
				vm := strings.Contains(r.Path, "/qemu/")
				switch full := r.Params["full"]; {
				case vm && full != "":
					t.Errorf("VM clone %s sent full=%q: the template's ZFS disk can be shared", r.Path, full)
				case !vm && full != "1":
					t.Errorf("container clone %s from snapshot %q sent full=%q, want 1", r.Path, r.Params["snapname"], full)
				}
			}
			if clones == 0 {
				t.Fatal("no clone requests")
			}
			mark := len(l.fake.Requests())
			if code, _, errOut := l.run("create", "941", "8001"); code != 0 {
				t.Fatalf("second create: exit %d\n%s", code, errOut)
			}
			// Feature scripts run again through the guest agent by design;
			// nothing else may change.
			for _, r := range l.fake.Requests()[mark:] {
				if r.Method != "GET" && !strings.Contains(r.Path, "/agent/") {
					t.Errorf("second create wrote: %s %s %v", r.Method, r.Path, r.Params)
				}
			}
		})
	}
}

// A snapshot the storage cannot take fails its step before anything is
// sent, naming the storage and the guest; the guests before it stand.
func TestPVEAPI_storageWithoutSnapshotsRefusesTheSnapshotStep(t *testing.T) {
	l := newAPILab(t, func(o *fakepveapi.Options) { o.Storages = labStorages("dir") })
	code, doc, errOut := l.runJSON("create", "900")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	a := byID(doc)["900"]
	for _, want := range []string{"lxc 900", "step snapshot-preconfigured", "rootfs is on storage quickOS-lxc-disks (dir), which has no snapshots for lxc guests"} {
		if !strings.Contains(a.Error, want) {
			t.Errorf("900's error %q lacks %q", a.Error, want)
		}
	}
	for _, r := range l.fake.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/snapshot") {
			t.Errorf("snapshot sent: %s", r.Path)
		}
	}
	if g := l.fake.Guest(900); g == nil || len(g.Snapshots) != 0 {
		t.Errorf("900: %+v", g)
	}
}

// Values Proxmox's parameter verification refuses are refused by
// validation, before the plan starts, naming file, guest and field: the
// strict fake cluster answered 400 to the clone of a guest named with an
// underscore, halfway through its chain.
func TestPVEAPI_valuesProxmoxRefusesFailValidation(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"underscore in a name", `"llamacpp"`, `"llama_cpp"`, `name: "llama_cpp" is not a host name`},
		{"multicast MAC", `"52:54:00:AA:BB:CC"`, `"01:54:00:AA:BB:CC"`, `mac_address: "01:54:00:AA:BB:CC" is a multicast address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newAPILab(t)
			path := filepath.Join(l.cfgDir, "phoenix_lxc_configs.json")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tt.from) {
				t.Fatalf("the lab has no %s", tt.from)
			}
			l.write(path, strings.Replace(string(data), tt.from, tt.to, 1), 0o644)
			code, out, errOut := l.run("create", "957", "941")
			if code == 0 {
				t.Fatalf("exit 0\n%s", out)
			}
			if !strings.Contains(errOut, "phoenix_lxc_configs.json") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr lacks the file and %q:\n%s", tt.want, errOut)
			}
			for _, r := range l.fake.Requests() {
				if r.Method != "GET" {
					t.Errorf("wrote before validation failed: %s %s", r.Method, r.Path)
				}
			}
		})
	}
}
