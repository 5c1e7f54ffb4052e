package pve

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// TestHost_storageAware checks that clones and snapshots follow what each
// storage type can do, and that a plan the storage cannot carry out is
// refused before any command runs, naming the storage and the guest.
func TestHost_storageAware(t *testing.T) {
	ctx := context.Background()
	t.Run("linked clone where the storage shares base volumes", func(t *testing.T) {
		e := newEnv(t)
		e.fake(t, "pct", "create", "900", "local:vztmpl/debian.tar.zst", "--rootfs", "local-zfs:8")
		e.fake(t, "pct", "template", "900")
		if err := e.h.Clone(ctx, api.KindLXC, 900, 910, hypervisor.CloneSpec{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		if got, want := e.newCalls(t), [][]string{{"pct", "clone", "900", "910", "--hostname", "web"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("commands %q, want %q", got, want)
		}
	})
	t.Run("full clone of a template on a folder storage", func(t *testing.T) {
		e := newEnv(t)
		e.fake(t, "pct", "create", "900", "local:vztmpl/debian.tar.zst", "--rootfs", "local:8")
		e.fake(t, "pct", "template", "900")
		if err := e.h.Clone(ctx, api.KindLXC, 900, 910, hypervisor.CloneSpec{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		if got, want := e.newCalls(t), [][]string{{"pct", "clone", "900", "910", "--hostname", "web", "--full"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("commands %q, want %q", got, want)
		}
	})
	t.Run("no VM copy from a ZFS snapshot", func(t *testing.T) {
		e := newEnv(t)
		e.fake(t, "qm", "create", "200", "--scsi0", "local-zfs:8")
		e.fake(t, "qm", "snapshot", "200", "base")
		err := e.h.Clone(ctx, api.KindVM, 200, 201, hypervisor.CloneSpec{Snapshot: "base"})
		for _, want := range []string{"scsi0 of vm 200", "storage local-zfs (zfspool)", `snapshot "base"`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v; want it to name %q", err, want)
			}
		}
		if got := e.newCalls(t); len(got) != 0 {
			t.Errorf("commands run: %q", got)
		}
	})
	t.Run("no container snapshot on NFS", func(t *testing.T) {
		e := newEnv(t)
		e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--rootfs", "local-zfs:8", "--mp0", "nfs:8,mp=/data")
		err := e.h.Snapshot(ctx, api.KindLXC, 101, "pre")
		for _, want := range []string{"lxc 101", "mp0", "storage nfs (nfs)"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v; want it to name %q", err, want)
			}
		}
		if got := e.newCalls(t); len(got) != 0 {
			t.Errorf("commands run: %q", got)
		}
	})
	t.Run("snapshot names are case-insensitive pve-configid", func(t *testing.T) {
		e := newEnv(t)
		e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--rootfs", "local-zfs:8")
		if err := e.h.Snapshot(ctx, api.KindLXC, 101, "Pre-Config"); err != nil {
			t.Fatal(err)
		}
		if g := mustGet(t, e.h, api.KindLXC, 101); !g.HasSnapshot("Pre-Config") {
			t.Errorf("snapshots %q", g.Snapshots)
		}
	})
}

// TestHost_exitZeroFailures: pct push, pct resize and qm template exit 0
// when their task fails; the backend reads the effect back and fails.
func TestHost_exitZeroFailures(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--rootfs", "local-zfs:8", "--start", "1")
	e.fake(t, "qm", "create", "200", "--scsi0", "local-zfs:8")
	t.Setenv("FAKEPVE_EXIT0_FAIL", "resize,template,push")
	err := e.h.Resize(ctx, api.KindLXC, 101, 16)
	if err == nil || !strings.Contains(err.Error(), "exited 0 but rootfs is still 8G") || !strings.Contains(err.Error(), "TASK ERROR") {
		t.Errorf("Resize: %v", err)
	}
	err = e.h.ConvertToTemplate(ctx, api.KindVM, 200)
	if err == nil || !strings.Contains(err.Error(), "not a template") || !strings.Contains(err.Error(), "zfs snapshot") {
		t.Errorf("ConvertToTemplate: %v", err)
	}
	path := e.writeScript(t, "features/x.sh", "#!/bin/sh\n", 0o644)
	err = e.h.Run(ctx, api.KindLXC, 101, hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: path})
	if err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("Run with a failing push: %v", err)
	}
	for _, c := range e.newCalls(t) {
		if c[1] == "exec" {
			t.Errorf("the script ran although its push failed: %q", c)
		}
	}
}

// TestHost_agentWait: a VM script waits for the guest agent, up to
// AgentWait, then names the fix.
func TestHost_agentWait(t *testing.T) {
	ctx := context.Background()
	defer func(d time.Duration) { agentPoll = d }(agentPoll)
	agentPoll = 50 * time.Millisecond
	cmd := hypervisor.Script{Kind: hypervisor.HealthScript, Name: "up", Command: []string{"true"}}

	e := newEnv(t, func(o *Options) { o.AgentWait = 20 * time.Second })
	t.Setenv("FAKEPVE_AGENT_DELAY", "1500ms")
	e.fake(t, "qm", "create", "200", "--agent", "1", "--start", "1")
	if err := e.h.Run(ctx, api.KindVM, 200, cmd); err != nil {
		t.Fatalf("Run with a late agent: %v", err)
	}
	pings := 0
	for _, c := range e.newCalls(t) {
		if reflect.DeepEqual(c, []string{"qm", "guest", "cmd", "200", "ping"}) {
			pings++
		}
	}
	if pings < 2 {
		t.Errorf("%d pings; want the agent waited for", pings)
	}

	e = newEnv(t, func(o *Options) { o.AgentWait = 200 * time.Millisecond })
	t.Setenv("FAKEPVE_AGENT_DELAY", "1h")
	e.fake(t, "qm", "create", "200", "--agent", "1", "--start", "1")
	err := e.h.Run(ctx, api.KindVM, 200, cmd)
	if err == nil || !strings.Contains(err.Error(), "did not answer within 200ms") || !strings.Contains(err.Error(), "qemu-guest-agent") {
		t.Errorf("Run with a silent agent: %v", err)
	}
}

// TestHost_listCache: one list answers for every guest of a pass; a guest
// phoenix changed is asked for alone; paused VMs are not stopped.
func TestHost_listCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.ListTTL = time.Hour })
	for _, id := range []string{"101", "102", "103"} {
		e.fake(t, "pct", "create", id, "local:vztmpl/debian.tar.zst")
	}
	for _, id := range []api.ID{101, 102, 103} {
		mustGet(t, e.h, api.KindLXC, id)
	}
	if got, want := e.newCalls(t), [][]string{{"pct", "list"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("three Gets: %q, want %q", got, want)
	}
	if err := e.h.Start(ctx, api.KindLXC, 102); err != nil {
		t.Fatal(err)
	}
	e.newCalls(t)
	if g := mustGet(t, e.h, api.KindLXC, 102); !g.Running {
		t.Error("102 not running after Start")
	}
	mustGet(t, e.h, api.KindLXC, 101)
	if got, want := e.newCalls(t), [][]string{{"pct", "status", "102"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Gets after a Start: %q, want %q", got, want)
	}
	// A guest made after the list, by someone else, is asked for alone.
	e.fake(t, "pct", "create", "104", "local:vztmpl/debian.tar.zst")
	mustGet(t, e.h, api.KindLXC, 104)
	if got, want := e.newCalls(t), [][]string{{"pct", "status", "104"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Get of a new guest: %q, want %q", got, want)
	}
}

// TestClassify_onlyRealLocks: text that mentions a lock is not a lock.
func TestClassify_onlyRealLocks(t *testing.T) {
	for out, locked := range map[string]bool{
		"CT is locked (disk)\n":                                                 true,
		"VM is locked (clone)\n":                                                true,
		"trying to acquire lock...\nCT is locked (backup)\n":                    true,
		"can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout\n": true,
		"the file is locked by another process, retry\n":                        false,
		"error: database is locked\n":                                           false,
		"VM 101 qmp command 'query-status' failed - unable to connect\n":        false,
	} {
		if got := errors.Is(classify([]byte(out), false, 255), hypervisor.ErrLocked); got != locked {
			t.Errorf("classify(%q) locked = %v, want %v", out, got, locked)
		}
	}
}

// TestHost_diskImport reads both forms of qm disk import's last line.
func TestHost_diskImport(t *testing.T) {
	for _, version := range []string{"8.2", "8.3", "9.0"} {
		t.Run(version, func(t *testing.T) {
			e := newEnv(t)
			t.Setenv("FAKEPVE_VERSION", version)
			err := e.h.Create(context.Background(), api.KindVM, 8000, hypervisor.CreateSpec{
				Source: "/var/lib/vz/template/iso/noble.img", Storage: "local-zfs", DiskGB: 16,
				Config: map[string]string{"name": "tmpl", "agent": "1"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if g := mustGet(t, e.h, api.KindVM, 8000); g.DiskGB != 16 || !strings.HasPrefix(g.Config["scsi0"], "local-zfs:vm-8000-disk-0,") {
				t.Errorf("vm = %+v", g)
			}
		})
	}
}

// TestHost_repairBootDisk gives a VM left without its boot disk the
// imported volume, without importing again.
func TestHost_repairBootDisk(t *testing.T) {
	e := newEnv(t)
	e.fake(t, "qm", "create", "8000", "--name", "tmpl")
	e.fake(t, "qm", "disk", "import", "8000", "/img/noble.img", "local-zfs")
	spec := hypervisor.CreateSpec{Source: "/img/noble.img", Storage: "local-zfs", DiskGB: 16}
	repaired, err := e.h.RepairBootDisk(context.Background(), 8000, spec)
	if err != nil || !repaired {
		t.Fatalf("RepairBootDisk = %v, %v", repaired, err)
	}
	for _, c := range e.newCalls(t) {
		if c[1] == "disk" {
			t.Errorf("imported again: %q", c)
		}
	}
	if g := mustGet(t, e.h, api.KindVM, 8000); !strings.HasPrefix(g.Config["scsi0"], "local-zfs:vm-8000-disk-0,") || g.DiskGB != 16 {
		t.Errorf("vm = %+v", g)
	}
	if repaired, err := e.h.RepairBootDisk(context.Background(), 8000, spec); err != nil || repaired {
		t.Errorf("second RepairBootDisk = %v, %v; want nothing to do", repaired, err)
	}
}

// A caller that names only the container folder (as the conformance suite
// and older callers do) gets the VM configs from the folder beside it.
func TestNew_pveEtcFromLXCConfDir(t *testing.T) {
	h := New(Options{LXCConfDir: "/srv/pve/lxc"})
	if h.opts.PVEEtc != "/srv/pve" || h.confPath(api.KindVM, 101) != "/srv/pve/qemu-server/101.conf" {
		t.Errorf("PVEEtc = %q, VM config %q", h.opts.PVEEtc, h.confPath(api.KindVM, 101))
	}
	if h := New(Options{}); h.confPath(api.KindLXC, 101) != "/etc/pve/lxc/101.conf" {
		t.Errorf("default LXC config %q", h.confPath(api.KindLXC, 101))
	}
}
