package pve

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// step is one invocation and what it must give.
type step struct {
	argv   []string // tool first
	stdin  string
	code   int
	stdout string // substring
	stderr string // substring
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		var out, errOut bytes.Buffer
		code := run(s.argv, strings.NewReader(s.stdin), &out, &errOut)
		if code != s.code || !strings.Contains(out.String(), s.stdout) || !strings.Contains(errOut.String(), s.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q\nwant exit %d, stdout with %q, stderr with %q",
				s.argv, code, out.String(), errOut.String(), s.code, s.stdout, s.stderr)
		}
	}
}

func setup(t *testing.T) string {
	t.Helper()
	state := t.TempDir()
	for _, k := range []string{"FAKEPVE_NODE", "FAKEPVE_LXC_LOCK_DIR", "FAKEPVE_CLONE_HOLD",
		"FAKEPVE_FAIL", "FAKEPVE_FAIL_MSG", "FAKEPVE_FAIL_EXEC", "FAKEPVE_FAIL_EXEC_CODE", "FAKEPVE_HANG", "FAKEPVE_IMAGE_SIZE",
		"FAKEPVE_PVE_ETC", "FAKEPVE_VERSION", "FAKEPVE_DELAY", "FAKEPVE_AGENT_DELAY", "FAKEPVE_EXIT0_FAIL", "FAKEPVE_STORAGE"} {
		t.Setenv(k, "")
	}
	t.Setenv("FAKEPVE_STATE", state)
	t.Setenv("FAKEPVE_LOG", filepath.Join(state, "argv.log"))
	return state
}

func TestPct(t *testing.T) {
	state := setup(t)
	runSteps(t, []step{
		{argv: []string{"pct", "status", "101"}, code: 255, stderr: "Configuration file 'nodes/pve/lxc/101.conf' does not exist"},
		{argv: []string{"pct", "create", "101", "local:vztmpl/ubuntu.tar.zst", "--hostname", "web", "--storage", "local-zfs",
			"--rootfs", "local-zfs:8", "--net0", "name=eth0,bridge=vmbr0,ip=10.0.0.2/24", "--unprivileged", "1"}, stdout: "extracting archive"},
		{argv: []string{"pct", "create", "101", "local:vztmpl/ubuntu.tar.zst"}, code: 255, stderr: "CT 101 already exists on node 'pve'"},
		{argv: []string{"qm", "status", "101"}, code: 255, stderr: "nodes/pve/qemu-server/101.conf' does not exist"},
		{argv: []string{"pct", "config", "101"}, stdout: "net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:"},
		{argv: []string{"pct", "config", "101"}, stdout: "rootfs: local-zfs:subvol-101-disk-0,size=8G\n"},
		{argv: []string{"pct", "set", "101", "--lxc.apparmor.profile", "unconfined"}, code: 255, stderr: "Unknown option: lxc.apparmor.profile"},
		{argv: []string{"pct", "set", "101", "--unprivileged", "0"}, code: 255, stderr: "unable to modify read-only option: 'unprivileged'"},
		{argv: []string{"pct", "set", "101", "--mp0", "local-zfs:10,mp=/data"}},
		{argv: []string{"pct", "config", "101"}, stdout: "mp0: local-zfs:subvol-101-disk-1,mp=/data,size=10G\n"},
		// Setting it again as "pool:size" allocates a new volume; the old
		// one is detached, not deleted, as on a real host.
		{argv: []string{"pct", "set", "101", "--mp0", "local-zfs:10,mp=/data"}},
		{argv: []string{"pct", "config", "101"}, stdout: "mp0: local-zfs:subvol-101-disk-2,mp=/data,size=10G\n"},
		{argv: []string{"pct", "config", "101"}, stdout: "unused0: local-zfs:subvol-101-disk-1\n"},
		{argv: []string{"pct", "push", "101", "/etc/hostname", "/tmp/x"}, code: 255, stderr: "CT 101 not running"},
		{argv: []string{"pct", "exec", "101", "--", "true"}, code: 255, stderr: "CT 101 not running"},
		{argv: []string{"pct", "stop", "101"}, code: 255, stderr: "CT 101 not running"},
		{argv: []string{"pct", "start", "101"}},
		{argv: []string{"pct", "start", "101"}, code: 255, stderr: "CT 101 already running"},
		{argv: []string{"pct", "status", "101"}, stdout: "status: running\n"},
		{argv: []string{"pct", "exec", "101", "--", "sh", "-c", "exit 0"}},
		{argv: []string{"pct", "snapshot", "101", "1st"}, code: 255, stderr: "400 Parameter verification failed.\nsnapname: invalid format - invalid configuration ID '1st'"},
		{argv: []string{"pct", "snapshot", "101", "pre-configured"}},
		{argv: []string{"pct", "snapshot", "101", "pre-configured"}, code: 255, stderr: "snapshot name 'pre-configured' already used"},
		{argv: []string{"pct", "listsnapshot", "101"}, stdout: "`-> pre-configured"},
		{argv: []string{"pct", "template", "101"}, code: 255, stderr: "if the CT is running"},
		{argv: []string{"pct", "destroy", "101"}, code: 255, stderr: "CT 101 is running - destroy failed"},
		{argv: []string{"pct", "shutdown", "101", "--forceStop", "1", "--timeout", "60"}},
		{argv: []string{"pct", "template", "101"}, code: 255, stderr: "contains snapshots"},
		{argv: []string{"pct", "resize", "101", "rootfs", "4G"}, code: 255, stderr: "unable to shrink disk size"},
		{argv: []string{"pct", "resize", "101", "rootfs", "+8G"}},
		{argv: []string{"pct", "config", "101"}, stdout: "rootfs: local-zfs:subvol-101-disk-0,size=16G\n"},
		{argv: []string{"pct", "clone", "101", "102", "--hostname", "copy", "--snapname", "pre-configured"}, stdout: "create full clone of rootfs"},
		{argv: []string{"pct", "config", "102"}, stdout: "hostname: copy\n"},
		{argv: []string{"pct", "set", "102", "--lock", "backup"}},
		{argv: []string{"pct", "start", "102"}, code: 255, stderr: "CT is locked (backup)"},
		{argv: []string{"pct", "unlock", "102"}},
		{argv: []string{"pct", "destroy", "102", "--purge"}},
		{argv: []string{"pct", "status", "102"}, code: 255, stderr: "does not exist"},
		{argv: []string{"pct", "frobnicate", "101"}, code: 255, stderr: "unknown command"},
		{argv: []string{"pct", "start"}, code: 255, stderr: "400 not enough arguments"},
		{argv: []string{"pct", "start", "99"}, code: 255, stderr: "vmid: invalid format"},
	})
	conf, err := os.ReadFile(filepath.Join(state, "etc", "pve", "lxc", "101.conf"))
	if err != nil || !strings.Contains(string(conf), "\n[pre-configured]\n") || !strings.Contains(string(conf), "parent: pre-configured\n") {
		t.Errorf("config file: %v\n%s", err, conf)
	}
	log, _ := os.ReadFile(filepath.Join(state, "argv.log"))
	if !strings.HasPrefix(string(log), `{"tool":"pct","argv":["status","101"]}`+"\n") {
		t.Errorf("argv log starts %q", log[:min(len(log), 80)])
	}
}

// TestPct_rawKeys checks that lxc.* lines written into the config file
// show in pct config and survive pct's own writes.
func TestPct_rawKeys(t *testing.T) {
	state := setup(t)
	runSteps(t, []step{{argv: []string{"pct", "create", "101", "local:vztmpl/debian.tar.zst"}}})
	conf := filepath.Join(state, "etc", "pve", "lxc", "101.conf")
	data, _ := os.ReadFile(conf)
	data = append(data, "lxc.apparmor.profile: unconfined\nlxc.mount.entry: /dev/fuse dev/fuse none bind,create=file\n"...)
	if err := os.WriteFile(conf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, []step{
		{argv: []string{"pct", "set", "101", "--memory", "1024"}},
		{argv: []string{"pct", "config", "101"}, stdout: "memory: 1024\n"},
		{argv: []string{"pct", "config", "101"}, stdout: "lxc.apparmor.profile: unconfined\nlxc.mount.entry: /dev/fuse dev/fuse none bind,create=file\n"},
		{argv: []string{"pct", "start", "101"}},
		{argv: []string{"pct", "stop", "101"}},
	})
	// A key Proxmox refuses in the file stops the container from starting.
	data, _ = os.ReadFile(conf)
	if err := os.WriteFile(conf, append(data, "lxc.rootfs.path: /tmp/x\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, []step{{argv: []string{"pct", "start", "101"}, code: 255, stderr: "vm 101 - lxc.rootfs.path: lxc.rootfs.path is auto generated from rootfs"}})
}

func TestQm(t *testing.T) {
	setup(t)
	t.Setenv("FAKEPVE_VERSION", "8.2")
	image := filepath.Join(t.TempDir(), "noble.img")
	runSteps(t, []step{
		{argv: []string{"qm", "create", "9000", "--name", "tmpl", "--memory", "2048", "--net0", "virtio,bridge=vmbr0", "--scsihw", "virtio-scsi-pci"}},
		{argv: []string{"qm", "config", "9000"}, stdout: "net0: virtio=BC:24:11:"},
		{argv: []string{"qm", "disk", "import", "9000", image, "local-zfs"}, stdout: "Successfully imported disk as 'unused0:local-zfs:vm-9000-disk-0'"},
		{argv: []string{"qm", "set", "9000", "--scsi0", "local-zfs:vm-9000-disk-0", "--ide2", "local-zfs:cloudinit", "--boot", "order=scsi0"}},
		{argv: []string{"qm", "config", "9000"}, stdout: "scsi0: local-zfs:vm-9000-disk-0,size=3584M\n"},
		{argv: []string{"qm", "config", "9000"}, stdout: "ide2: local-zfs:vm-9000-cloudinit,media=cdrom\n"},
		{argv: []string{"qm", "resize", "9000", "scsi0", "32G"}},
		{argv: []string{"qm", "start", "9000"}},
		{argv: []string{"qm", "guest", "exec", "9000", "--", "true"}, code: 255, stderr: "No QEMU guest agent configured"},
		{argv: []string{"qm", "set", "9000", "--agent", "1"}},
		{argv: []string{"qm", "guest", "exec", "9000", "--", "true"}, stdout: `"exitcode": 0`},
		{argv: []string{"qm", "guest", "exec", "9000", "--pass-stdin", "1", "--", "install", "-m", "0600", "/dev/stdin", "/tmp/s"}, stdin: "echo hi\n"},
		{argv: []string{"qm", "shutdown", "9000", "--forceStop", "1"}},
		{argv: []string{"qm", "guest", "exec", "9000", "--", "true"}, code: 255, stderr: "VM 9000 is not running"},
		{argv: []string{"qm", "template", "9000"}},
		{argv: []string{"qm", "config", "9000"}, stdout: "scsi0: local-zfs:base-9000-disk-0,size=32G\n"},
		{argv: []string{"qm", "snapshot", "9000", "s1"}, code: 255, stderr: "you can't take a snapshot if it's a template"},
		{argv: []string{"qm", "start", "9000"}, code: 255, stderr: "template"},
		{argv: []string{"qm", "clone", "9000", "9001", "--name", "linked"}, stdout: "create linked clone of scsi0"},
		{argv: []string{"qm", "config", "9001"}, stdout: "scsi0: local-zfs:base-9000-disk-0/vm-9001-disk-0,size=32G\n"},
		{argv: []string{"qm", "destroy", "9000"}, code: 255, stderr: "still in use by linked cloned VM 9001"},
		{argv: []string{"qm", "clone", "9000", "9002", "--hostname", "x"}, code: 255, stderr: "Unknown option: hostname"},
		{argv: []string{"pct", "guest", "exec", "9000"}, code: 255, stderr: "unknown command"},
	})
}

func TestInjectedFailures(t *testing.T) {
	state := setup(t)
	runSteps(t, []step{{argv: []string{"pct", "create", "101", "local:vztmpl/debian.tar.zst", "--start", "1"}}})
	t.Setenv("FAKEPVE_FAIL", "pct start:2,snapshot")
	t.Setenv("FAKEPVE_FAIL_MSG", "can't lock file '/run/lock/lxc/pve-config-{id}.lock' - got timeout")
	t.Setenv("FAKEPVE_FAIL_EXEC", "nvidia")
	t.Setenv("FAKEPVE_FAIL_EXEC_CODE", "7")
	runSteps(t, []step{
		{argv: []string{"pct", "start", "101"}, code: 255, stderr: "can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout"},
		{argv: []string{"pct", "start", "101"}, code: 255, stderr: "got timeout"},
		{argv: []string{"pct", "start", "101"}, code: 255, stderr: "CT 101 already running"},
		{argv: []string{"pct", "snapshot", "101", "a1"}, code: 255, stderr: "got timeout"},
		{argv: []string{"pct", "snapshot", "101", "a1"}, code: 255, stderr: "got timeout"},
		{argv: []string{"pct", "exec", "101", "--", "sh", "/tmp/phoenix-features-nvidia"}, code: 7, stderr: "simulated by FAKEPVE_FAIL_EXEC"},
		{argv: []string{"pct", "exec", "101", "--", "sh", "/tmp/phoenix-features-docker"}},
	})
	data, _ := os.ReadFile(filepath.Join(state, "guests", "101.json"))
	var g guest
	if err := json.Unmarshal(data, &g); err != nil || len(g.Execs) != 2 {
		t.Errorf("recorded execs: %v %q", err, g.Execs)
	}
}

// TestClone_lock runs two clones of one source at once: the second finds
// the source locked by the first.
func TestClone_lock(t *testing.T) {
	setup(t)
	runSteps(t, []step{{argv: []string{"pct", "create", "900", "local:vztmpl/debian.tar.zst"}}})
	t.Setenv("FAKEPVE_CLONE_HOLD", "300ms")
	codes := make([]int, 2)
	errs := make([]bytes.Buffer, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = run([]string{"pct", "clone", "900", []string{"910", "911"}[i]}, nil, &bytes.Buffer{}, &errs[i])
		}()
	}
	wg.Wait()
	if codes[0]+codes[1] != 255 {
		t.Fatalf("exit codes %v; want one clone refused", codes)
	}
	if !strings.Contains(errs[0].String()+errs[1].String(), "CT is locked (disk)") {
		t.Errorf("stderr %q %q", errs[0].String(), errs[1].String())
	}
	runSteps(t, []step{{argv: []string{"pct", "config", "900"}, stdout: "hostname"}})
}

// TestStrict covers what makes the fake as strict as Proxmox: the schema
// of the release played, exit-0 failures, a late guest agent, storage
// features and the config files under pve-etc.
func TestStrict(t *testing.T) {
	state := setup(t)
	t.Setenv("FAKEPVE_AGENT_DELAY", "400ms")
	runSteps(t, []step{
		{argv: []string{"pct", "create", "101", "local:vztmpl/debian.tar.zst", "--cores", "many"}, code: 255,
			stderr: "400 Parameter verification failed.\ncores: type check ('integer') failed - got 'many'\npct create <vmid>"},
		{argv: []string{"pct", "create", "101", "local:vztmpl/debian.tar.zst", "--net0", "name=eth0,ip=10.0.0.2"}, code: 255,
			stderr: "net0.ip: invalid format - value does not look like a valid ipv4 network configuration"},
		{argv: []string{"pct", "create", "101", "local:vztmpl/debian.tar.zst", "--hostname", "web_1"}, code: 255,
			stderr: "hostname: invalid format - value does not look like a valid DNS name"},
		{argv: []string{"pct", "status", "101"}, code: 255, stderr: "does not exist"}, // nothing was made
		{argv: []string{"pct", "create", "101", "local:vztmpl/debian.tar.zst", "--rootfs", "local-zfs:8", "--description", "web: front"}},
		{argv: []string{"pct", "set", "101", "--mp0", "local-zfs:8"}, code: 255, stderr: "mp0.mp: property is missing and it is not optional"},
		{argv: []string{"pct", "set", "101", "--mp300", "local-zfs:8,mp=/x"}, code: 255, stderr: "Unknown option: mp300"},
		{argv: []string{"pct", "snapshot", "101", "Pre-Config"}},
		{argv: []string{"pct", "resize", "101", "rootfs", "1TB"}, code: 255, stderr: "size: value does not match the regex pattern"},
		{argv: []string{"qm", "create", "9000", "--name", "tmpl", "--ipconfig0", "ip=10.0.0.5/24,ipv6=fd00::5/64"}, code: 255,
			stderr: "ipconfig0: invalid format - invalid key in comma-separated list property: ipv6"},
		{argv: []string{"qm", "create", "9000", "--name", "tmpl", "--agent", "1", "--ipconfig0", "ip=10.0.0.5/24,ip6=fd00::5/64,gw6=fd00::1"}},
		{argv: []string{"qm", "disk", "import", "9000", "/img/noble.img", "local-zfs"}, stdout: "unused0: successfully imported disk 'local-zfs:vm-9000-disk-0'\n"},
		{argv: []string{"qm", "set", "9000", "--scsi0", "local-zfs:vm-9000-disk-0"}},
		{argv: []string{"qm", "start", "9000"}},
		{argv: []string{"qm", "snapshot", "9000", "s1"}},
		// ZFS cannot copy a VM disk from a snapshot.
		{argv: []string{"qm", "clone", "9000", "9001", "--snapname", "s1", "--full"}, code: 255, stderr: "Full clone feature is not available for drive 'scsi0' from a snapshot (storage 'local-zfs', zfspool)"},
		{argv: []string{"qm", "guest", "cmd", "9000", "ping"}, code: 255, stderr: "QEMU guest agent is not running"},
		{argv: []string{"qm", "guest", "exec", "9000", "--", "true"}, code: 255, stderr: "QEMU guest agent is not running"},
	})
	time.Sleep(450 * time.Millisecond)
	runSteps(t, []step{
		{argv: []string{"qm", "guest", "cmd", "9000", "ping"}},
		// A container on a folder storage has no snapshots and no linked
		// clones.
		{argv: []string{"pct", "create", "102", "local:vztmpl/debian.tar.zst", "--rootfs", "local:4"}},
		{argv: []string{"pct", "snapshot", "102", "s1"}, code: 255, stderr: "snapshot feature is not available"},
		{argv: []string{"pct", "template", "102"}},
		{argv: []string{"pct", "clone", "102", "103"}, code: 255, stderr: "Linked clone feature is not available for drive 'rootfs' (storage 'local', dir)"},
		{argv: []string{"pct", "clone", "102", "103", "--full"}},
	})
	t.Setenv("FAKEPVE_EXIT0_FAIL", "resize:1,pct push")
	runSteps(t, []step{
		{argv: []string{"pct", "resize", "101", "rootfs", "1T"}, stderr: "TASK ERROR"},
		{argv: []string{"pct", "config", "101"}, stdout: "rootfs: local-zfs:subvol-101-disk-0,size=8G\n"},
		{argv: []string{"pct", "resize", "101", "rootfs", "1T"}},
		{argv: []string{"pct", "config", "101"}, stdout: "rootfs: local-zfs:subvol-101-disk-0,size=1T\n"},
	})
	lxc, _ := os.ReadFile(filepath.Join(state, "etc", "pve", "lxc", "101.conf"))
	for _, want := range []string{"#web%3A front\n", "parent: Pre-Config\n", "\n[Pre-Config]\n", "snaptime: "} {
		if !strings.Contains(string(lxc), want) {
			t.Errorf("lxc/101.conf lacks %q:\n%s", want, lxc)
		}
	}
	qemu, _ := os.ReadFile(filepath.Join(state, "etc", "pve", "qemu-server", "9000.conf"))
	if !strings.Contains(string(qemu), "ipconfig0: ip=10.0.0.5/24,ip6=fd00::5/64,gw6=fd00::1\nname: tmpl\n") {
		t.Errorf("qemu-server/9000.conf:\n%s", qemu)
	}
	tmpl, _ := os.ReadFile(filepath.Join(state, "etc", "pve", "lxc", "102.conf"))
	if !strings.Contains(string(tmpl), "template: 1\n") {
		t.Errorf("lxc/102.conf:\n%s", tmpl)
	}
}

// The same command is refused on PVE 8 when its schema lacks an option
// PVE 9 has.
func TestStrict_version(t *testing.T) {
	setup(t)
	runSteps(t, []step{{argv: []string{"pct", "create", "101", "local:vztmpl/debian.tar.zst"}}})
	t.Setenv("FAKEPVE_VERSION", "8.2")
	runSteps(t, []step{
		{argv: []string{"pct", "set", "101", "--net0", "name=eth0,host-managed=1"}, code: 255, stderr: "invalid key in comma-separated list property: host-managed"},
	})
	t.Setenv("FAKEPVE_VERSION", "9.0")
	runSteps(t, []step{{argv: []string{"pct", "set", "101", "--net0", "name=eth0,host-managed=1"}}})
}
