package reconcilers

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// stepResults maps each step of a workflow run to its result.
func stepResults(steps []plan.StepResult) map[string]string {
	m := map[string]string{}
	for _, s := range steps {
		m[s.Name] = s.Result
	}
	return m
}

// smallApplied is the small lab built on a recording simulated host.
func smallApplied(t *testing.T) (*Workflows, *recorder, *api.Config) {
	t.Helper()
	cfg := load(t, smallLab)
	rec := &recorder{Host: newSim(t, 0)}
	w := NewWorkflows(rec, Scripts{})
	applyAll(t, w, cfg)
	return w, rec, cfg
}

// withSpec is a copy of cfg's guest id with edit applied to its spec.
func withSpec(cfg *api.Config, id api.ID, edit func(*api.Spec)) *api.Guest {
	g := *cfg.Guest(id)
	edit(&g.Spec)
	return &g
}

// A bigger disk in the spec grows the guest's disk, for containers
// (storage_size_gb) and VMs (disk_size_gb); a smaller one never shrinks it.
func TestWorkflows_diskGrowsNeverShrinks(t *testing.T) {
	for _, tt := range []struct {
		id   api.ID
		step string // a VM's disk is grown as part of configure
		size func(*api.Spec, int)
	}{
		{900, "disk", func(s *api.Spec, n int) { s.StorageSizeGB = n }},
		{8001, "configure", func(s *api.Spec, n int) { s.DiskSizeGB = n }},
	} {
		w, _, cfg := smallApplied(t)
		ctx := context.Background()
		g := cfg.Guest(tt.id)
		before, err := w.Host().Get(ctx, g.Kind, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		bigger := withSpec(cfg, tt.id, func(s *api.Spec) { tt.size(s, before.DiskGB+4) })
		steps, err := w.Apply(ctx, cfg, bigger, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := stepResults(steps)[tt.step]; r != plan.StepOK {
			t.Errorf("%s: %s step %q after the spec grew, want ok", tt.id, tt.step, r)
		}
		after, err := w.Host().Get(ctx, g.Kind, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if after.DiskGB != before.DiskGB+4 {
			t.Errorf("%s: disk %dG after growing from %dG by 4G", tt.id, after.DiskGB, before.DiskGB)
		}
		smaller := withSpec(cfg, tt.id, func(s *api.Spec) { tt.size(s, 1) })
		if steps, err = w.Apply(ctx, cfg, smaller, nil); err != nil {
			t.Fatal(err)
		}
		if r := stepResults(steps)[tt.step]; r != plan.StepUnchanged {
			t.Errorf("%s: %s step %q for a smaller spec, want unchanged", tt.id, tt.step, r)
		}
		if g, _ := w.Host().Get(ctx, g.Kind, tt.id); g.DiskGB != after.DiskGB {
			t.Errorf("%s: disk shrank to %dG", tt.id, g.DiskGB)
		}
	}
}

// A mount point the spec no longer has is removed from the container; a
// container with none on either side skips the step.
func TestWorkflows_volumeRemovedFromSpecLeavesTheHost(t *testing.T) {
	w, _, cfg := smallApplied(t)
	ctx := context.Background()
	steps, err := w.Apply(ctx, cfg, cfg.Guest(941), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := stepResults(steps)["volumes"]; r != plan.StepSkipped {
		t.Errorf("volumes step %q with no volumes anywhere, want skipped", r)
	}
	if err := w.Host().Set(ctx, api.KindLXC, 941, map[string]string{"mp0": "local-lvm:8,mp=/data"}); err != nil {
		t.Fatal(err)
	}
	if steps, err = w.Apply(ctx, cfg, cfg.Guest(941), nil); err != nil {
		t.Fatal(err)
	}
	if r := stepResults(steps)["volumes"]; r != plan.StepOK {
		t.Errorf("volumes step %q removing mp0, want ok", r)
	}
	g, err := w.Host().Get(ctx, api.KindLXC, 941)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := g.Config["mp0"]; ok {
		t.Errorf("mp0 = %q is still on the host", v)
	}
}

// The application script runs in the guest; when it fails, the workflow
// fails naming the step, and nothing after it runs.
func TestWorkflows_appScript(t *testing.T) {
	w, rec, cfg := smallApplied(t)
	ctx := context.Background()
	runs := func() int { return rec.Host.(interface{ Runs(api.ID) map[string]int }).Runs(941)["apps/app.sh"] }
	n := runs()
	if n != 1 {
		t.Fatalf("app.sh ran %d times in 941 on creation, want 1", n)
	}
	checked := withSpec(cfg, 941, func(s *api.Spec) { s.HealthCheck = &api.HealthCheck{Command: "true"} })
	rec.failScript = "app.sh"
	steps, err := w.Apply(ctx, cfg, checked, nil)
	if err == nil || FailedStep(err) != "app-script" {
		t.Fatalf("apply with a failing app script: %v (step %q), want the app-script step named", err, FailedStep(err))
	}
	if r, ran := stepResults(steps)["health-check"]; ran {
		t.Errorf("health-check ran (%s) after the app script failed", r)
	}
}

// Health checks run in the guest after the application script; one that
// keeps failing fails the workflow after its retries, each retry after
// the interval.
func TestWorkflows_healthCheck(t *testing.T) {
	w, rec, cfg := smallApplied(t)
	ctx := context.Background()
	checked := withSpec(cfg, 941, func(s *api.Spec) {
		s.HealthCheck = &api.HealthCheck{Command: "curl -f localhost", Retries: 1, Interval: 1}
	})
	steps, err := w.Apply(ctx, cfg, checked, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := stepResults(steps)["health-check"]; r != plan.StepOK {
		t.Errorf("health-check step %q, want ok", r)
	}
	if n := rec.Host.(interface{ Runs(api.ID) map[string]int }).Runs(941)["health/health_check"]; n != 1 {
		t.Errorf("the health check ran %d times, want 1", n)
	}

	rec.failScript = "health_check"
	start := time.Now()
	_, err = w.Apply(ctx, cfg, checked, nil)
	if err == nil || FailedStep(err) != "health-check" || !strings.Contains(err.Error(), `"curl -f localhost" failed after 2 tries`) {
		t.Fatalf("apply with a failing health check: %v", err)
	}
	// A lower bound only: the retry waited its interval.
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("2 tries 1s apart took %s", waited)
	}
}

// A health check that names a script of the old tree runs that script on
// the host; when it keeps failing, the error names the script (there is no
// command line to quote).
func TestWorkflows_healthCheckScriptFails(t *testing.T) {
	_, rec, cfg := smallApplied(t)
	bin := t.TempDir()
	g := withSpec(cfg, 941, func(s *api.Spec) {
		s.HealthCheck = &api.HealthCheck{Command: legacyInstall + "health_checks/check_step_ca.sh --strict", Retries: 1}
	})
	for _, f := range g.Spec.Features {
		mkfile(t, filepath.Join(bin, "lxc_setup", "phoenix_hypervisor_feature_install_"+f+".sh"))
	}
	if a := g.Spec.ApplicationScript; a != "" {
		mkfile(t, filepath.Join(bin, a))
	}
	mkfile(t, filepath.Join(bin, "health_checks", "check_step_ca.sh"))
	mkfile(t, filepath.Join(bin, legacyCommonUtils))
	w := NewWorkflows(rec, Scripts{Dir: bin, Legacy: true})
	rec.failScript = "health_checks/check_step_ca.sh"
	_, err := w.Apply(context.Background(), cfg, g, nil)
	if err == nil || FailedStep(err) != "health-check" ||
		!strings.Contains(err.Error(), `health check "health_checks/check_step_ca.sh" failed after 2 tries`) {
		t.Fatalf("apply with a failing health-check script: %v; want the script named", err)
	}
}

// The container config phoenix sets for the spec's fields: keys the spec
// leaves out keep Proxmox's defaults rather than being set to zero.
func TestLXCConfig_keys(t *testing.T) {
	cfg := load(t, smallLab)
	three := 3
	zero := 0
	for _, tt := range []struct {
		name string
		edit func(*api.Spec)
		want map[string]string // "" : the key must be absent
	}{
		{"nothing optional", func(s *api.Spec) {
			s.MemoryMB, s.Cores, s.SwapMB, s.BootOrder, s.BootDelay, s.ApparmorProfile = 0, 0, 0, nil, 0, ""
		}, map[string]string{"memory": "", "cores": "", "swap": "", "startup": "", "lxc.apparmor.profile": ""}},
		{"sizes", func(s *api.Spec) { s.MemoryMB, s.Cores, s.SwapMB = 1024, 2, 512 },
			map[string]string{"memory": "1024", "cores": "2", "swap": "512"}},
		{"boot order", func(s *api.Spec) { s.BootOrder = &three }, map[string]string{"startup": "order=3,up=0"}},
		{"boot order 0", func(s *api.Spec) { s.BootOrder = &zero }, map[string]string{"startup": ""}},
		{"boot delay only", func(s *api.Spec) { s.BootOrder, s.BootDelay = nil, 30 }, map[string]string{"startup": "order=0,up=30"}},
		{"apparmor", func(s *api.Spec) { s.ApparmorProfile = "unconfined" }, map[string]string{"lxc.apparmor.profile": "unconfined"}},
		{"interface named", func(s *api.Spec) {
			s.NetworkConfig = &api.NetworkConfig{Name: "eth1", Bridge: "vmbr1"}
			s.MACAddress = ""
		}, map[string]string{"net0": "name=eth1,bridge=vmbr1"}},
		{"interface unnamed", func(s *api.Spec) {
			s.NetworkConfig = &api.NetworkConfig{Bridge: "vmbr1"}
			s.MACAddress = ""
		}, map[string]string{"net0": "name=eth0,bridge=vmbr1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := LXCConfig(withSpec(cfg, 941, tt.edit))
			for k, want := range tt.want {
				v, ok := got[k]
				if want == "" && ok {
					t.Errorf("%s = %q, want it left to Proxmox", k, v)
				}
				if want != "" && v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

// id_maps become lxc.idmap lines that map each of the 65536 IDs of a type
// once: the given ranges, and Proxmox's shifted default around them.
func TestLXCConfig_idmapLines(t *testing.T) {
	cfg := load(t, smallLab)
	for _, tt := range []struct {
		name string
		maps []api.IDMap
		want string
	}{
		{"one in the middle", []api.IDMap{{Type: "gid", ContainerID: 33, HostID: 33, Size: 1}},
			"u 0 100000 65536\ng 0 100000 33\ng 33 33 1\ng 34 100034 65502"},
		{"from 0", []api.IDMap{{Type: "uid", ContainerID: 0, HostID: 1000, Size: 10}},
			"u 0 1000 10\nu 10 100010 65526\ng 0 100000 65536"},
		{"two with a gap", []api.IDMap{{Type: "uid", ContainerID: 1000, HostID: 1000, Size: 1}, {Type: "uid", ContainerID: 33, HostID: 33, Size: 1}},
			"u 0 100000 33\nu 33 33 1\nu 34 100034 966\nu 1000 1000 1\nu 1001 101001 64535\ng 0 100000 65536"},
		{"adjacent", []api.IDMap{{Type: "uid", ContainerID: 10, HostID: 5000, Size: 5}, {Type: "uid", ContainerID: 15, HostID: 7000, Size: 5}},
			"u 0 100000 10\nu 10 5000 5\nu 15 7000 5\nu 20 100020 65516\ng 0 100000 65536"},
		{"up to the last ID", []api.IDMap{{Type: "uid", ContainerID: 65535, HostID: 65535, Size: 1}},
			"u 0 100000 65535\nu 65535 65535 1\ng 0 100000 65536"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := LXCConfig(withSpec(cfg, 941, func(s *api.Spec) { s.IDMaps = tt.maps }))["lxc.idmap"]
			if got != tt.want {
				t.Errorf("lxc.idmap:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// HostID is who owns a bind-mounted folder on the host: a mapped ID's own
// host ID, else the shifted default of an unprivileged container, else the
// ID itself in a privileged one.
func TestHostID(t *testing.T) {
	yes, no := true, false
	maps := []api.IDMap{{Type: "uid", ContainerID: 33, HostID: 2000, Size: 2}}
	for _, tt := range []struct {
		unprivileged *bool
		maps         []api.IDMap
		id, want     int
	}{
		{nil, nil, 1000, 101000},
		{&yes, nil, 1000, 101000},
		{&no, nil, 1000, 1000},
		{nil, maps, 33, 2000},
		{nil, maps, 34, 2001},
		{nil, maps, 35, 100035}, // just past the range
		{nil, maps, 32, 100032},
	} {
		g := &api.Guest{Kind: api.KindLXC, Spec: api.Spec{Unprivileged: tt.unprivileged, IDMaps: tt.maps}}
		if got := HostID(g, "uid", tt.id); got != tt.want {
			t.Errorf("HostID(unprivileged %v, maps %v, uid %d) = %d, want %d", tt.unprivileged, tt.maps, tt.id, got, tt.want)
		}
	}
}

// bootRepair is a host that can give a VM the boot disk its create did not
// get to import, and records when it is asked to.
type bootRepair struct {
	hypervisor.Host
	asked  []api.ID
	repair bool
}

func (b *bootRepair) RepairBootDisk(_ context.Context, id api.ID, _ hypervisor.CreateSpec) (bool, error) {
	b.asked = append(b.asked, id)
	return b.repair, nil
}

// An existing VM built from a cloud image is checked for its boot disk (a
// create cut short between qm create and the import leaves it without
// one) and repaired; a VM just created, a clone, or one without an image
// is not.
func TestWorkflows_vmBootDiskRepair(t *testing.T) {
	cfg := load(t, smallLab)
	host := &bootRepair{Host: newSim(t, 0)}
	w := NewWorkflows(host, Scripts{})
	applyAll(t, w, cfg)
	if len(host.asked) != 0 {
		t.Errorf("boot disk repair asked for %v while creating", host.asked)
	}
	ctx := context.Background()
	for _, id := range []api.ID{8000, 8001} {
		if _, err := w.Apply(ctx, cfg, cfg.Guest(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	noImage := withSpec(cfg, 8000, func(s *api.Spec) { s.TemplateImage = "" })
	if _, err := w.Apply(ctx, cfg, noImage, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(host.asked, []api.ID{8000}) {
		t.Errorf("boot disk repair asked for %v, want 8000 (an existing VM from an image) only", host.asked)
	}
	host.repair = true
	steps, err := w.Apply(ctx, cfg, cfg.Guest(8000), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := stepResults(steps)["define"]; r != plan.StepOK {
		t.Errorf("define step %q after a repair, want ok", r)
	}
}

// A VM template is started only to run its features before it is
// converted: one without features never runs.
func TestWorkflows_vmTemplateStartsOnlyForFeatures(t *testing.T) {
	cfg := load(t, smallLab)
	for _, tt := range []struct {
		features  []string
		wantStart bool
	}{
		{nil, false},
		{[]string{"base_setup"}, true},
	} {
		rec := &recorder{Host: newSim(t, 0)}
		w := NewWorkflows(rec, Scripts{})
		g := withSpec(cfg, 8000, func(s *api.Spec) { s.Features = tt.features })
		steps, err := w.Apply(context.Background(), cfg, g, nil)
		if err != nil {
			t.Fatalf("features %v: %v", tt.features, err)
		}
		if r := stepResults(steps)["template"]; r != plan.StepOK {
			t.Errorf("template step %q on creation, want ok", r)
		}
		runs := rec.Host.(interface{ Runs(api.ID) map[string]int }).Runs(8000)
		for _, f := range tt.features {
			if runs["features/"+f] != 1 {
				t.Errorf("feature %s ran %d times in the template before its conversion, want 1 (%v)", f, runs["features/"+f], runs)
			}
		}
		if started := slices.Contains(rec.calls, "start 8000"); started != tt.wantStart {
			t.Errorf("template with features %v: started %v, want %v (calls %v)", tt.features, started, tt.wantStart, rec.calls)
		}
		if !slices.Contains(rec.calls, "template 8000") {
			t.Errorf("template with features %v was not converted: %v", tt.features, rec.calls)
		}
	}
}

// The VM config phoenix sets for the spec's fields: what the spec leaves
// out keeps Proxmox's defaults; the interface's own bridge wins over the
// file's network_bridge default.
func TestVMConfig_keys(t *testing.T) {
	cfg := load(t, smallLab)
	three := 3
	for _, tt := range []struct {
		name string
		edit func(*api.Spec)
		want map[string]string // "" : the key must be absent
	}{
		{"nothing optional", func(s *api.Spec) {
			s.Name, s.MemoryMB, s.Cores, s.NetworkBridge, s.NetworkConfig, s.BootOrder = "", 0, 0, "", nil, nil
		}, map[string]string{"name": "", "memory": "", "cores": "", "net0": "", "ipconfig0": "", "startup": "", "agent": "1"}},
		{"sizes and name", func(s *api.Spec) { s.Name, s.MemoryMB, s.Cores = "worker", 4096, 4 },
			map[string]string{"name": "worker", "memory": "4096", "cores": "4"}},
		{"default bridge", func(s *api.Spec) {
			s.NetworkBridge, s.MACAddress = "vmbr0", ""
			s.NetworkConfig = &api.NetworkConfig{IP: "10.0.0.81/24"}
		}, map[string]string{"net0": "virtio,bridge=vmbr0", "ipconfig0": "ip=10.0.0.81/24"}},
		{"interface bridge", func(s *api.Spec) {
			s.NetworkBridge, s.MACAddress = "vmbr0", "52:54:00:aa:bb:cc"
			s.NetworkConfig = &api.NetworkConfig{Bridge: "vmbr1"}
		}, map[string]string{"net0": "virtio=52:54:00:AA:BB:CC,bridge=vmbr1", "ipconfig0": "", "nameserver": ""}},
		{"nameservers", func(s *api.Spec) {
			s.NetworkConfig = &api.NetworkConfig{IP: "dhcp", Nameservers: api.Nameservers{"1.1.1.1"}, Nameserver: api.Nameservers{"9.9.9.9"}}
		}, map[string]string{"nameserver": "1.1.1.1 9.9.9.9"}},
		{"boot order", func(s *api.Spec) { s.BootOrder, s.BootDelay = &three, 10 }, map[string]string{"startup": "order=3,up=10"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := VMConfig(withSpec(cfg, 8001, tt.edit))
			for k, want := range tt.want {
				v, ok := got[k]
				if want == "" && ok {
					t.Errorf("%s = %q, want it left to Proxmox", k, v)
				}
				if want != "" && v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

// cloneSpecs records what each clone was asked for.
type cloneSpecs struct {
	hypervisor.Host
	specs map[api.ID]hypervisor.CloneSpec
}

func (c *cloneSpecs) Clone(ctx context.Context, k api.Kind, src, dst api.ID, s hypervisor.CloneSpec) error {
	c.specs[dst] = s
	return c.Host.Clone(ctx, k, src, dst, s)
}

// Creating a guest: a container is cloned from its source's template
// snapshot, a VM from its template as it is; every feature runs, in
// order; the snapshots are taken; a guest that must not start at boot is
// stopped at the end.
func TestWorkflows_createSteps(t *testing.T) {
	cfg := load(t, smallLab)
	host := &cloneSpecs{Host: newSim(t, 0), specs: map[api.ID]hypervisor.CloneSpec{}}
	w := NewWorkflows(host, Scripts{})
	ctx := context.Background()
	no := false
	results := map[api.ID]map[string]string{}
	for _, id := range cfg.Order() {
		g := cfg.Guest(id)
		if id == 941 {
			g = withSpec(cfg, 941, func(s *api.Spec) { s.Features, s.StartAtBoot = []string{"docker", "gpu"}, &no })
		}
		steps, err := w.Apply(ctx, cfg, g, nil)
		if err != nil {
			t.Fatalf("apply %s: %v", id, err)
		}
		results[id] = stepResults(steps)
	}
	if s := host.specs[941].Snapshot; s != "golden" {
		t.Errorf("941 cloned from snapshot %q, want 900's golden", s)
	}
	if s := host.specs[8001].Snapshot; s != "" {
		t.Errorf("8001 cloned from snapshot %q of a VM template, want none", s)
	}
	runs := host.Host.(interface{ Runs(api.ID) map[string]int }).Runs(941)
	if runs["features/docker"] != 1 || runs["features/gpu"] != 1 {
		t.Errorf("941's features ran %v, want docker and gpu once", runs)
	}
	if r := results[900]["template-snapshot"]; r != plan.StepOK {
		t.Errorf("900's template-snapshot step %q, want ok", r)
	}
	if r := results[941]["stop-unless-boot"]; r != plan.StepOK {
		t.Errorf("941's stop-unless-boot step %q, want ok", r)
	}
	if g, _ := w.Host().Get(ctx, api.KindLXC, 941); g.Running {
		t.Error("941 (start_at_boot false) is left running")
	}
}
