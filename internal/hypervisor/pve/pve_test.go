package pve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pve/fakepvetest"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// env is a backend wired to a fresh fake host.
type env struct {
	h                     *Host
	bin, state, log, conf string
	scripts               string
	logged                int // calls already returned by newCalls
	opts                  Options
}

func newEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	bin, state, log := fakepvetest.Install(t)
	e := &env{bin: bin, state: state, log: log, conf: fakepvetest.LXCConfDir(state), scripts: t.TempDir()}
	e.opts = Options{
		Pct:         filepath.Join(bin, "pct"),
		Qm:          filepath.Join(bin, "qm"),
		Timeout:     30 * time.Second,
		ScriptsDir:  e.scripts,
		PVEEtc:      fakepvetest.PVEEtc(state),
		LXCConfDir:  e.conf,
		LXCLockDir:  fakepvetest.LXCLockDir(state),
		LockRetries: 3,
		LockBackoff: 10 * time.Millisecond,
	}
	for _, m := range mod {
		m(&e.opts)
	}
	e.h = New(e.opts)
	return e
}

// fake runs the fake directly, to arrange a host state the backend has no
// operation for (a lock left by a backup, say).
func (e *env) fake(t *testing.T, tool string, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(e.bin, tool), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	e.newCalls(t)
}

// newCalls returns the calls made since the last newCalls, as
// [tool, args...].
func (e *env) newCalls(t *testing.T) [][]string {
	t.Helper()
	all := fakepvetest.ReadLog(t, e.log)
	var out [][]string
	for _, c := range all[e.logged:] {
		out = append(out, append([]string{c.Tool}, c.Argv...))
	}
	e.logged = len(all)
	return out
}

// guestState reads the fake's state file of a guest.
func (e *env) guestState(t *testing.T, id api.ID) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.state, "guests", id.String()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]any
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestHost_Get_missing(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []api.Kind{api.KindLXC, api.KindVM} {
		g, err := e.h.Get(context.Background(), kind, 101)
		if !errors.Is(err, hypervisor.ErrNotFound) {
			t.Fatalf("Get(%s 101) = %v, %v; want ErrNotFound", kind, g, err)
		}
		if errors.Is(err, hypervisor.ErrLocked) {
			t.Errorf("error is also ErrLocked: %v", err)
		}
		for _, want := range []string{"101.conf", "does not exist"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		_, exists, err := hypervisor.Exists(context.Background(), e.h, kind, 101)
		if exists || err != nil {
			t.Errorf("Exists = %v, %v; want false, nil", exists, err)
		}
	}
	// An ID used by a container is not a VM.
	e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst")
	if _, err := e.h.Get(context.Background(), api.KindVM, 101); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Get(vm 101) of a container: %v; want ErrNotFound", err)
	}
}

// TestHost_roundTrip drives every operation in turn on one fake host and
// checks the exact commands each one runs, then the state Get reads back.
func TestHost_roundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const ostemplate = "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
	const net0 = "name=eth0,bridge=vmbr0,ip=10.10.0.200/24,gw=10.10.0.1,hwaddr=52:54:00:10:09:00"
	cases := []struct {
		name  string
		op    func() error
		want  [][]string
		check func(t *testing.T)
	}{
		{
			name: "create lxc",
			op: func() error {
				return e.h.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{
					Source: ostemplate, Storage: "local-lvm", DiskGB: 32,
					Config: map[string]string{
						"hostname": "Template-Base", "memory": "2048", "cores": "2", "net0": net0,
						"unprivileged": "1", "features": "nesting=1,keyctl=1", "onboot": "0",
						"lxc.apparmor.profile": "unconfined",
					},
				})
			},
			want: [][]string{{"pct", "create", "900", ostemplate, "--hostname", "Template-Base", "--memory", "2048",
				"--cores", "2", "--storage", "local-lvm", "--rootfs", "local-lvm:32", "--features", "nesting=1,keyctl=1",
				"--net0", net0, "--onboot", "0", "--unprivileged", "1"}},
			check: func(t *testing.T) {
				g := mustGet(t, e.h, api.KindLXC, 900)
				if g.Running || g.Template || g.DiskGB != 32 || len(g.Snapshots) != 0 {
					t.Errorf("guest = %+v", g)
				}
				for k, v := range map[string]string{"hostname": "Template-Base", "memory": "2048", "cores": "2",
					"lxc.apparmor.profile": "unconfined", "features": "nesting=1,keyctl=1", "unprivileged": "1"} {
					if g.Config[k] != v {
						t.Errorf("config %s = %q, want %q", k, g.Config[k], v)
					}
				}
			},
		},
		{
			name: "start",
			op:   func() error { return e.h.Start(ctx, api.KindLXC, 900) },
			want: [][]string{{"pct", "start", "900"}},
			check: func(t *testing.T) {
				if !mustGet(t, e.h, api.KindLXC, 900).Running {
					t.Error("not running after Start")
				}
			},
		},
		{
			name: "snapshot",
			op:   func() error { return e.h.Snapshot(ctx, api.KindLXC, 900, "pre-configured") },
			want: [][]string{{"pct", "snapshot", "900", "pre-configured"}},
		},
		{
			name: "second snapshot",
			op:   func() error { return e.h.Snapshot(ctx, api.KindLXC, 900, "phoenix-final") },
			want: [][]string{{"pct", "snapshot", "900", "phoenix-final"}},
			check: func(t *testing.T) {
				g := mustGet(t, e.h, api.KindLXC, 900)
				if want := []string{"pre-configured", "phoenix-final"}; !reflect.DeepEqual(g.Snapshots, want) {
					t.Errorf("snapshots = %q, want %q", g.Snapshots, want)
				}
				if !g.HasSnapshot("pre-configured") {
					t.Error("HasSnapshot(pre-configured) = false")
				}
			},
		},
		{
			name: "stop",
			op:   func() error { return e.h.Stop(ctx, api.KindLXC, 900) },
			want: [][]string{{"pct", "shutdown", "900", "--forceStop", "1", "--timeout", "60"}},
		},
		{
			name: "clone from snapshot",
			op: func() error {
				return e.h.Clone(ctx, api.KindLXC, 900, 910, hypervisor.CloneSpec{Snapshot: "pre-configured", Name: "web"})
			},
			want: [][]string{{"pct", "clone", "900", "910", "--hostname", "web", "--snapname", "pre-configured", "--full"}},
			check: func(t *testing.T) {
				g := mustGet(t, e.h, api.KindLXC, 910)
				if g.Config["hostname"] != "web" || g.DiskGB != 32 || g.Config["lxc.apparmor.profile"] != "unconfined" {
					t.Errorf("clone = %+v", g)
				}
			},
		},
		{
			name: "set and delete",
			op: func() error {
				return e.h.Set(ctx, api.KindLXC, 910, map[string]string{"memory": "4096", "cores": "4", "swap": "", "onboot": ""})
			},
			want: [][]string{{"pct", "set", "910", "--memory", "4096", "--cores", "4", "--delete", "onboot,swap"}},
			check: func(t *testing.T) {
				g := mustGet(t, e.h, api.KindLXC, 910)
				if _, ok := g.Config["swap"]; ok || g.Config["memory"] != "4096" || g.Config["cores"] != "4" {
					t.Errorf("config = %v", g.Config)
				}
			},
		},
		{
			name: "set raw lxc keys only",
			op: func() error {
				return e.h.Set(ctx, api.KindLXC, 910, map[string]string{
					"lxc.apparmor.profile": "", "lxc.cgroup2.devices.allow": "a",
					"lxc.mount.entry": "/dev/fuse dev/fuse none bind,create=file\n/dev/net/tun dev/net/tun none bind,create=file",
				})
			},
			want: nil, // written to the config file, no command
			check: func(t *testing.T) {
				g := mustGet(t, e.h, api.KindLXC, 910)
				if _, ok := g.Config["lxc.apparmor.profile"]; ok {
					t.Errorf("lxc.apparmor.profile not deleted: %v", g.Config)
				}
				if g.Config["lxc.mount.entry"] != "/dev/fuse dev/fuse none bind,create=file\n/dev/net/tun dev/net/tun none bind,create=file" ||
					g.Config["lxc.cgroup2.devices.allow"] != "a" {
					t.Errorf("raw keys = %q", g.Config)
				}
			},
		},
		{
			name: "resize grows",
			op:   func() error { return e.h.Resize(ctx, api.KindLXC, 910, 48) },
			want: [][]string{{"pct", "resize", "910", "rootfs", "48G"}},
			check: func(t *testing.T) {
				if g := mustGet(t, e.h, api.KindLXC, 910); g.DiskGB != 48 {
					t.Errorf("DiskGB = %d, want 48", g.DiskGB)
				}
			},
		},
		{
			name: "resize refuses to shrink, reading the size from the config file",
			op: func() error {
				if err := e.h.Resize(ctx, api.KindLXC, 910, 10); err == nil || !strings.Contains(err.Error(), "shrinking") {
					return fmt.Errorf("shrink: %v; want a refusal", err)
				}
				return nil
			},
			want: nil, // no pct call: the size comes from <pve-etc>/lxc/910.conf
		},
		{
			name: "destroy",
			op:   func() error { return e.h.Destroy(ctx, api.KindLXC, 910) },
			want: [][]string{{"pct", "destroy", "910", "--purge"}},
			check: func(t *testing.T) {
				if _, err := e.h.Get(ctx, api.KindLXC, 910); !errors.Is(err, hypervisor.ErrNotFound) {
					t.Errorf("Get after Destroy: %v", err)
				}
				if _, err := os.Stat(filepath.Join(e.conf, "910.conf")); !os.IsNotExist(err) {
					t.Errorf("config file left: %v", err)
				}
			},
		},
		{
			name: "template refused with snapshots",
			op: func() error {
				err := e.h.ConvertToTemplate(ctx, api.KindLXC, 900)
				if err == nil || !strings.Contains(err.Error(), "contains snapshots") {
					return errors.New("want a refusal, got " + errString(err))
				}
				return nil
			},
			want: [][]string{{"pct", "template", "900"}},
		},
		{
			name: "create vm from cloud image",
			op: func() error {
				return e.h.Create(ctx, api.KindVM, 9000, hypervisor.CreateSpec{
					Source: "/var/lib/vz/template/iso/noble-server-cloudimg-amd64.img", Storage: "local-zfs", DiskGB: 32,
					Config: map[string]string{"name": "ubuntu-template", "memory": "4096", "cores": "2",
						"net0": "virtio,bridge=vmbr0", "ipconfig0": "ip=10.10.0.50/24,gw=10.10.0.1",
						"ciuser": "phoenix", "agent": "1", "nameserver": "10.10.0.1 1.1.1.1"},
				})
			},
			want: [][]string{
				{"qm", "create", "9000", "--name", "ubuntu-template", "--memory", "4096", "--cores", "2",
					"--agent", "1", "--ciuser", "phoenix", "--ipconfig0", "ip=10.10.0.50/24,gw=10.10.0.1",
					"--nameserver", "10.10.0.1 1.1.1.1", "--net0", "virtio,bridge=vmbr0", "--scsihw", "virtio-scsi-pci"},
				{"qm", "disk", "import", "9000", "/var/lib/vz/template/iso/noble-server-cloudimg-amd64.img", "local-zfs"},
				{"qm", "set", "9000", "--scsi0", "local-zfs:vm-9000-disk-0", "--boot", "order=scsi0", "--ide2", "local-zfs:cloudinit"},
				{"qm", "resize", "9000", "scsi0", "32G"},
			},
			check: func(t *testing.T) {
				g := mustGet(t, e.h, api.KindVM, 9000)
				if g.DiskGB != 32 || g.Config["name"] != "ubuntu-template" || g.Config["agent"] != "1" {
					t.Errorf("vm = %+v", g)
				}
			},
		},
		{
			name: "template vm",
			op:   func() error { return e.h.ConvertToTemplate(ctx, api.KindVM, 9000) },
			want: [][]string{{"qm", "template", "9000"}},
			check: func(t *testing.T) {
				if g := mustGet(t, e.h, api.KindVM, 9000); !g.Template || g.DiskGB != 32 {
					t.Errorf("vm = %+v", g)
				}
			},
		},
		{
			name: "full clone of vm template",
			op: func() error {
				return e.h.Clone(ctx, api.KindVM, 9000, 9001, hypervisor.CloneSpec{Name: "db", Full: true})
			},
			want: [][]string{{"qm", "clone", "9000", "9001", "--name", "db", "--full"}},
			check: func(t *testing.T) {
				g := mustGet(t, e.h, api.KindVM, 9001)
				if g.Template || g.Config["name"] != "db" || g.DiskGB != 32 {
					t.Errorf("clone = %+v", g)
				}
			},
		},
		{
			name: "vm set, start, stop, destroy",
			op: func() error {
				return errors.Join(
					e.h.Set(ctx, api.KindVM, 9001, map[string]string{"cores": "8", "ciuser": ""}),
					e.h.Start(ctx, api.KindVM, 9001),
					e.h.Stop(ctx, api.KindVM, 9001),
					e.h.Destroy(ctx, api.KindVM, 9001),
				)
			},
			want: [][]string{
				{"qm", "set", "9001", "--cores", "8", "--delete", "ciuser"},
				{"qm", "start", "9001"},
				{"qm", "shutdown", "9001", "--forceStop", "1", "--timeout", "60"},
				{"qm", "destroy", "9001", "--purge"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.newCalls(t)
			if err := tc.op(); err != nil {
				t.Fatal(err)
			}
			got := e.newCalls(t)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("commands:\n got %q\nwant %q", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

func mustGet(t *testing.T, h *Host, kind api.Kind, id api.ID) *hypervisor.Guest {
	t.Helper()
	g, err := h.Get(context.Background(), kind, id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

func TestHost_Get_commands(t *testing.T) {
	var logged [][]string
	e := newEnv(t, func(o *Options) { o.Log = func(argv []string) { logged = append(logged, argv) } })
	e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst")
	if _, err := e.h.Get(context.Background(), api.KindLXC, 101); err != nil {
		t.Fatal(err)
	}
	// Settings come from the config file; the running state from one list
	// for every guest of the pass.
	want := [][]string{{"pct", "list"}}
	if got := e.newCalls(t); !reflect.DeepEqual(got, want) {
		t.Errorf("commands %q, want %q", got, want)
	}
	if _, err := e.h.Get(context.Background(), api.KindLXC, 101); err != nil {
		t.Fatal(err)
	}
	if got := e.newCalls(t); len(got) != 0 {
		t.Errorf("second Get in the pass ran %q; want nothing", got)
	}
	for i := range want {
		want[i][0] = e.opts.Pct
	}
	if !reflect.DeepEqual(logged, want) {
		t.Errorf("Options.Log got %q, want %q", logged, want)
	}
}

func TestHost_refusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		op      func(h *Host) error
		wantErr []string
	}{
		{"start of a running container", func(h *Host) error { return h.Start(ctx, api.KindLXC, 101) },
			[]string{"pct start 101: `pct start 101` exited 255: CT 101 already running"}},
		{"destroy of a running container", func(h *Host) error { return h.Destroy(ctx, api.KindLXC, 101) },
			[]string{"pct destroy 101", "CT 101 is running - destroy failed"}},
		{"template of a running container", func(h *Host) error { return h.ConvertToTemplate(ctx, api.KindLXC, 101) },
			[]string{"pct template 101", "is running"}},
		{"snapshot name", func(h *Host) error { return h.Snapshot(ctx, api.KindLXC, 101, "Bad Name") },
			[]string{`name "Bad Name"`}},
		{"raw key on a vm", func(h *Host) error {
			return h.Set(ctx, api.KindVM, 101, map[string]string{"lxc.apparmor.profile": "unconfined"})
		}, []string{"raw LXC keys only apply to containers"}},
		{"option-like key", func(h *Host) error {
			return h.Set(ctx, api.KindLXC, 101, map[string]string{"memory --delete rootfs": "1"})
		}, []string{"not a lxc config key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--start", "1")
			err := tc.op(e.h)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if errors.Is(err, hypervisor.ErrNotFound) || errors.Is(err, hypervisor.ErrLocked) {
				t.Errorf("error wrongly classified: %v", err)
			}
		})
	}
}

func TestHost_failedTask(t *testing.T) {
	e := newEnv(t)
	e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--rootfs", "local-zfs:4")
	t.Setenv("FAKEPVE_FAIL", "snapshot")
	t.Setenv("FAKEPVE_FAIL_MSG", "zfs error: cannot create snapshot 'rpool/data/subvol-101-disk-0@x': out of space")
	err := e.h.Snapshot(context.Background(), api.KindLXC, 101, "x1")
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 255 {
		t.Fatalf("err = %v; want a CommandError with exit 255", err)
	}
	for _, w := range []string{"pct snapshot 101", "`pct snapshot 101 x1` exited 255", "out of space"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if n := len(e.newCalls(t)); n != 1 {
		t.Errorf("%d calls; a failed task is not retried", n)
	}
}

func TestHost_lockPersistent(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LockRetries = 2 })
	e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst")
	e.fake(t, "pct", "set", "101", "--lock", "backup")
	start := time.Now()
	err := e.h.Start(context.Background(), api.KindLXC, 101)
	if !errors.Is(err, hypervisor.ErrLocked) {
		t.Fatalf("err = %v; want ErrLocked", err)
	}
	for _, w := range []string{"pct start 101", "still locked after 3 tries", "CT is locked (backup)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	calls := e.newCalls(t)
	if len(calls) != 3 {
		t.Errorf("calls = %q; want the start tried 3 times", calls)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("retries took %s; want backoff (10ms, 20ms) between them", d)
	}
	// The raw-key path reports the same lock.
	err = e.h.Set(context.Background(), api.KindLXC, 101, map[string]string{"lxc.apparmor.profile": "unconfined"})
	if !errors.Is(err, hypervisor.ErrLocked) || !strings.Contains(err.Error(), "still locked after 3 tries") {
		t.Errorf("Set raw key on a locked container: %v", err)
	}
}

func TestHost_lockTimeoutRetried(t *testing.T) {
	e := newEnv(t)
	e.fake(t, "qm", "create", "200", "--name", "vm")
	t.Setenv("FAKEPVE_FAIL", "qm start:2")
	t.Setenv("FAKEPVE_FAIL_MSG", "can't lock file '/var/lock/qemu-server/lock-{id}.conf' - got timeout")
	if err := e.h.Start(context.Background(), api.KindVM, 200); err != nil {
		t.Fatalf("Start after two lock timeouts: %v", err)
	}
	if n := len(e.newCalls(t)); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

// TestHost_Clone_concurrent clones one template twice at once: the fake
// locks the source during a clone, and the backend's retries get both
// through.
func TestHost_Clone_concurrent(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LockRetries = 20; o.LockBackoff = 20 * time.Millisecond })
	e.fake(t, "pct", "create", "900", "local:vztmpl/debian.tar.zst", "--storage", "local-lvm", "--rootfs", "local-lvm:8")
	e.fake(t, "pct", "snapshot", "900", "pre-configured")
	t.Setenv("FAKEPVE_CLONE_HOLD", "300ms")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	gate := make(chan struct{})
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errs[i] = e.h.Clone(context.Background(), api.KindLXC, 900, api.ID(910+i),
				hypervisor.CloneSpec{Snapshot: "pre-configured", Name: "web"})
		}()
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("clone %d: %v", i, err)
		}
	}
	clones := 0
	for _, c := range e.newCalls(t) {
		if c[1] == "clone" {
			clones++
		}
	}
	if clones < 3 {
		t.Errorf("%d clone calls; want at least one refused on the lock and retried", clones)
	}
	for _, id := range []api.ID{900, 910, 911} {
		if g := mustGet(t, e.h, api.KindLXC, id); g.Config["lock"] != "" {
			t.Errorf("%d still locked: %v", id, g.Config["lock"])
		}
	}
}

// TestHost_injection passes names and values that a shell would act on and
// checks that each reaches the fake as one unchanged argument, and that raw
// lxc.* values cannot add a key to the config file.
func TestHost_injection(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nasty := []string{
		"web; rm -rf /",
		"$(reboot)",
		"`id`",
		`it's "quoted"`,
		"two words  and\ttab",
		"line one\nline two",
		"--delete rootfs",
	}
	for i, v := range nasty {
		id := api.ID(300 + i)
		// Values go where Proxmox takes free text (a host name must be a
		// DNS name: the strict fake refuses anything else).
		if err := e.h.Create(ctx, api.KindLXC, id, hypervisor.CreateSpec{
			Source: "local:vztmpl/debian.tar.zst", Storage: "local-zfs", DiskGB: 8,
			Config: map[string]string{"description": v},
		}); err != nil {
			t.Fatalf("create %q: %v", v, err)
		}
		if err := e.h.Set(ctx, api.KindLXC, id, map[string]string{"description": v + ".", "lxc.apparmor.profile": v}); err != nil {
			t.Fatalf("set %q: %v", v, err)
		}
		if err := e.h.Clone(ctx, api.KindLXC, id, id+100, hypervisor.CloneSpec{Name: "web"}); err != nil {
			t.Fatalf("clone %q: %v", v, err)
		}
		if err := e.h.Start(ctx, api.KindLXC, id); err != nil {
			t.Fatal(err)
		}
		if err := e.h.Run(ctx, api.KindLXC, id, hypervisor.Script{Kind: hypervisor.HealthScript, Name: "check",
			Command: []string{"echo", v}}); err != nil {
			t.Fatalf("run %q: %v", v, err)
		}
		calls := e.newCalls(t)
		want := map[string][]string{
			"create": {"pct", "create", id.String(), "local:vztmpl/debian.tar.zst",
				"--storage", "local-zfs", "--rootfs", "local-zfs:8", "--description", v},
			"set":   {"pct", "set", id.String(), "--description", v + "."},
			"clone": {"pct", "clone", id.String(), (id + 100).String(), "--hostname", "web", "--full"},
			"exec":  {"pct", "exec", id.String(), "--keep-env", "0", "--", "echo", v},
		}
		for _, c := range calls {
			if w, ok := want[c[1]]; ok {
				if !reflect.DeepEqual(c, w) {
					t.Errorf("%q:\n got %q\nwant %q", v, c, w)
				}
				delete(want, c[1])
			}
		}
		if len(want) > 0 {
			t.Errorf("%q: commands not seen: %q", v, want)
		}
		g := mustGet(t, e.h, api.KindLXC, id)
		if g.Config["lxc.apparmor.profile"] != v {
			t.Errorf("lxc.apparmor.profile = %q, want %q", g.Config["lxc.apparmor.profile"], v)
		}
		if g.Config["description"] != v+"." {
			t.Errorf("description = %q, want %q", g.Config["description"], v+".")
		}
	}

	// A newline in a raw value writes another line of the same key, never
	// another key.
	if err := e.h.Set(ctx, api.KindLXC, 300, map[string]string{
		"lxc.apparmor.profile": "unconfined\nlxc.hook.pre-start: /tmp/evil",
	}); err != nil {
		t.Fatal(err)
	}
	g := mustGet(t, e.h, api.KindLXC, 300)
	for k := range g.Config {
		if strings.HasPrefix(k, "lxc.hook") {
			t.Errorf("a value added the key %q: %q", k, g.Config)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(e.conf, "300.conf"))
	if !strings.Contains(string(conf), "\nlxc.apparmor.profile: lxc.hook.pre-start: /tmp/evil\n") {
		t.Errorf("config file:\n%s", conf)
	}
}

func TestHost_timeout(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Timeout = 300 * time.Millisecond })
	e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst")
	t.Setenv("FAKEPVE_HANG", "start")
	start := time.Now()
	err := e.h.Start(context.Background(), api.KindLXC, 101)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s; the hung command was not killed promptly", d)
	}
	if pids := running(t, e.bin); len(pids) > 0 {
		t.Errorf("hung fake still running after the timeout: pids %v", pids)
	}
	for _, w := range []string{"pct start 101", "`pct start 101` timed out after 300ms and was killed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}

	// Cancelling the caller's context kills the command too.
	t.Setenv("FAKEPVE_HANG", "list")
	h := New(func() Options { o := e.opts; o.Timeout = time.Minute; return o }())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = h.Get(ctx, api.KindLXC, 101)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "was cancelled and killed") {
		t.Errorf("err = %v; want Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s after cancel", d)
	}
	if pids := running(t, e.bin); len(pids) > 0 {
		t.Errorf("hung fake still running after cancel: pids %v", pids)
	}
}

// running lists the processes whose command line starts with a program in
// dir, from /proc; it skips the test where there is no /proc.
func running(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc to look for leftover processes")
	}
	var pids []string
	for _, ent := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(cmdline), dir+string(filepath.Separator)) {
			pids = append(pids, ent.Name())
		}
	}
	return pids
}
