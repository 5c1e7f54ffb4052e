package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func doctorRows(t *testing.T, out string) map[string]checkRow {
	t.Helper()
	var doc doctorDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("doctor -o json: %v\n%s", err, out)
	}
	rows := map[string]checkRow{}
	for _, r := range doc.Checks {
		rows[r.Check+" "+r.Target] = r
	}
	return rows
}

// On the sim, doctor checks what applies: the scripts tree and the VMs'
// agent; the rest is marked as not applying, and it exits 0.
func TestDoctor_sim(t *testing.T) {
	o := newOldHost(t, upstreamLab)
	var code int
	code, out, errOut := o.runBackend(t, "sim", "doctor", "-o", "json")
	if code != 0 {
		t.Fatalf("doctor on the sim: exit %d\n%s\n%s", code, out, errOut)
	}
	rows := doctorRows(t, out)
	if r := rows["scripts "+o.bin]; r.Result != checkPass || !strings.Contains(r.Hint, "old tool") {
		t.Errorf("scripts row = %+v", r)
	}
	if r := rows["vm-agent vm 1001"]; r.Result != checkPass {
		t.Errorf("vm-agent row = %+v", r)
	}
	if r := rows["backend sim"]; r.Result != checkSkip {
		t.Errorf("backend row = %+v", r)
	}
	// A missing script fails the check, naming the guest, with exit 1.
	os.Remove(filepath.Join(o.bin, "phoenix_hypervisor_lxc_103.sh"))
	code, out, _ = o.runBackend(t, "sim", "doctor")
	if code != 1 || !strings.Contains(out, "lxc 103") || !strings.Contains(out, "phoenix_hypervisor_lxc_103.sh") {
		t.Errorf("doctor with a missing script: exit %d\n%s", code, out)
	}
}

// On the pve backend (the fake pct/qm), doctor checks the tools and the
// version, each storage pool's content and snapshot support, the bridges
// and the ostemplate and cloud image; it exits 1 until all pass.
func TestDoctor_pve(t *testing.T) {
	o := newOldHost(t, upstreamLab)
	fake := filepath.Join(o.base, "fakehost")
	sysNet := filepath.Join(fake, "net")
	storage := filepath.Join(fake, "storage.cfg")
	for _, d := range []string{fake, filepath.Join(o.base, "fastData/shared-iso/template/cache")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"doctor", "--pve-storage-cfg", storage, "--sys-class-net", sysNet, "-o", "json"}
	code, out, _ := o.run(t, flags...)
	if code != 1 {
		t.Fatalf("doctor on a bare host: exit %d, want 1\n%s", code, out)
	}
	rows := doctorRows(t, out)
	for _, k := range []string{"pve-version pveversion", "storage " + storage, "bridge vmbr0", "cloud-image noble-server-cloudimg-amd64.img"} {
		if rows[k].Result != checkFail {
			t.Errorf("%s: %+v, want fail", k, rows[k])
		}
	}
	if rows["tool pct"].Result != checkPass || rows["tool qm"].Result != checkPass {
		t.Errorf("tools: %+v %+v", rows["tool pct"], rows["tool qm"])
	}

	// Set the host up: a pveversion, the pools (the container one first
	// as a plain folder, where container volumes cannot be snapshotted),
	// the bridge, the images.
	bin := filepath.Join(fake, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "pveversion"), []byte("#!/bin/sh\necho 'pve-manager/8.2.4/faa83925c9641325 (running kernel: 6.8.8-2-pve)'\n"), 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.MkdirAll(filepath.Join(sysNet, "vmbr0", "bridge"), 0o755)
	os.WriteFile(filepath.Join(o.base, "fastData/shared-iso/template/cache/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(o.etc, "noble-server-cloudimg-amd64.img"), []byte("x"), 0o644)
	cfg := "dir: quickOS-lxc-disks\n\tpath /quickOS/lxc-disks\n\tcontent rootdir,images\n\n" +
		"dir: quickOS-vm-disks\n\tpath /quickOS/vm-disks\n\tcontent images\n"
	os.WriteFile(storage, []byte(cfg), 0o644)
	code, out, _ = o.run(t, flags...)
	rows = doctorRows(t, out)
	if r := rows["storage quickOS-lxc-disks"]; code != 1 || r.Result != checkFail || !strings.Contains(r.Hint, "snapshots") {
		t.Errorf("a dir pool for container templates with clones: exit %d, %+v", code, r)
	}
	// VM disks on a dir storage are qcow2 files, which snapshot and clone.
	if r := rows["storage quickOS-vm-disks"]; r.Result != checkPass {
		t.Errorf("vm pool: %+v", r)
	}
	cfg = strings.Replace(cfg, "dir: quickOS-lxc-disks\n\tpath /quickOS/lxc-disks", "zfspool: quickOS-lxc-disks\n\tpool quickOS/lxc-disks", 1)
	os.WriteFile(storage, []byte(cfg), 0o644)
	code, out, errOut := o.run(t, flags...)
	if code != 0 {
		t.Errorf("doctor on a ready host: exit %d\n%s\n%s", code, out, errOut)
	}
	if r := doctorRows(t, out)["pve-version 8.2.4"]; r.Result != checkPass {
		t.Errorf("version row: %+v", r)
	}
	// The table form says the same.
	code, out, _ = o.run(t, flags[:5]...)
	if code != 0 || !strings.Contains(out, "CHECK") || !strings.Contains(out, "storage") {
		t.Errorf("doctor table: exit %d\n%s", code, out)
	}
}
