package cli_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
)

// readyCluster is a fake cluster that can carry out the reference lab:
// its storage pools with snapshots, the bridge, the template and image.
func readyCluster(o *fakepveapi.Options) {
	o.Storages = map[string]string{"local": "dir", "quickOS-lxc-disks": "zfspool", "quickOS-vm-disks": "zfspool"}
	o.Volumes = map[string][]string{"local": {
		"local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
		"local:vztmpl/ubuntu-24.04-standard",
		"local:import/noble-server-cloudimg-amd64.qcow2",
	}}
}

type doctorRow struct {
	Check, Target, Result, Hint string
}

func (l *apiLab) doctor() (int, map[string]doctorRow, string) {
	l.t.Helper()
	code, out, errOut := l.run("doctor", "-o", "json")
	var doc struct {
		Backend string
		OK      bool
		Checks  []doctorRow
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		l.t.Fatalf("doctor -o json: %v\n%s\n%s", err, out, errOut)
	}
	if doc.Backend != "pve-api" || doc.OK != (code == 0) {
		l.t.Errorf("doctor document: backend %q ok %v, exit %d", doc.Backend, doc.OK, code)
	}
	rows := map[string]doctorRow{}
	for _, r := range doc.Checks {
		rows[r.Check+" "+r.Target] = r
	}
	return code, rows, out
}

// On a cluster that has everything the lab needs, doctor passes every
// check it makes through the API, and its table is the golden one.
func TestDoctor_pveAPIReady(t *testing.T) {
	l := newAPILab(t, readyCluster)
	code, rows, out := l.doctor()
	if code != 0 {
		t.Fatalf("doctor on a ready cluster: exit %d\n%s", code, out)
	}
	reqs := l.fake.Requests()
	for _, r := range reqs {
		if r.Method != "GET" {
			t.Errorf("doctor wrote: %s %s", r.Method, r.Path)
		}
	}
	t.Logf("doctor on the reference lab (%d rows): %d API requests", len(rows), len(reqs))
	for _, k := range []string{"pve-version 9.0.3", "storage quickOS-lxc-disks on pve1", "storage quickOS-vm-disks on pve3",
		"bridge vmbr0 on pve2", "ostemplate local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst on pve1",
		"token-privileges /vms/900", "token-privileges /storage/quickOS-lxc-disks", "token-privileges /sdn/zones/localnetwork/vmbr0"} {
		if r, ok := rows[k]; !ok || r.Result != "pass" {
			t.Errorf("%s: %+v (present %v)", k, r, ok)
		}
	}
	code, table, _ := l.run("doctor")
	if code != 0 {
		t.Fatalf("doctor table: exit %d", code)
	}
	// The scripts row names a temporary folder; the rest is the cluster's.
	var lines []string
	for _, line := range strings.SplitAfter(table, "\n") {
		if !strings.HasPrefix(line, "scripts ") {
			lines = append(lines, line)
		}
	}
	goldenExt(t, "doctor-pveapi.txt", strings.Join(lines, ""))
}

// Each thing a cluster can lack fails its own row, with a hint saying what
// to do, and doctor exits 1.
func TestDoctor_pveAPIFindsWhatIsMissing(t *testing.T) {
	tests := []struct {
		name     string
		opt      func(*fakepveapi.Options)
		row      string
		hint     string
		passRows []string
	}{
		{"missing storage", func(o *fakepveapi.Options) { delete(o.Storages, "quickOS-vm-disks") },
			"storage quickOS-vm-disks on pve3", "no such storage on pve3", []string{"storage quickOS-lxc-disks on pve1"}},
		{"storage without rootdir", func(o *fakepveapi.Options) {
			o.StorageContent = map[string]string{"quickOS-lxc-disks": "images"}
		}, "storage quickOS-lxc-disks on pve1", "content lacks rootdir (pvesm set quickOS-lxc-disks --content images,rootdir)", nil},
		{"storage without snapshots", func(o *fakepveapi.Options) { o.Storages["quickOS-lxc-disks"] = "lvm" },
			"storage quickOS-lxc-disks on pve1", "type lvm has no snapshots", []string{"storage quickOS-vm-disks on pve3"}},
		{"missing bridge", func(o *fakepveapi.Options) { o.Bridges = []string{"vmbr1"} },
			"bridge vmbr0 on pve1", "no such bridge on pve1", nil},
		{"missing template", func(o *fakepveapi.Options) { o.Volumes["local"] = o.Volumes["local"][1:] },
			"ostemplate local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst on pve1", "no such volume on pve1 (pveam download local", []string{"cloud-image local:import/noble-server-cloudimg-amd64.qcow2 on pve3"}},
		{"token lacking VM.Allocate", func(o *fakepveapi.Options) {
			o.Permissions = map[string][]string{"/": {"Sys.Audit", "Datastore.AllocateSpace", "Datastore.Audit", "SDN.Use"},
				"/vms": {"VM.Audit", "VM.Clone", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Disk", "VM.Config.Network",
					"VM.Config.Options", "VM.Config.Cloudinit", "VM.PowerMgmt", "VM.Snapshot", "VM.GuestAgent.Unrestricted"}}
		}, "token-privileges /vms/900", "lacks VM.Allocate (create, clone, destroy; guests 900)", []string{"token-privileges /storage/quickOS-lxc-disks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newAPILab(t, readyCluster, tt.opt)
			code, rows, out := l.doctor()
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s", code, out)
			}
			if r := rows[tt.row]; r.Result != "fail" || !strings.Contains(r.Hint, tt.hint) {
				t.Errorf("%s: %+v, want fail with hint %q\n%s", tt.row, r, tt.hint, out)
			}
			for _, k := range tt.passRows {
				if r := rows[k]; r.Result != "pass" {
					t.Errorf("%s: %+v, want pass", k, r)
				}
			}
		})
	}
}

// goldenExt is assertGolden for this external test package: -update (the
// flag of package cli's tests, in the same binary) rewrites the file.
func goldenExt(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -update rewrites it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}
