package reconcilers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// recorder wraps a host and records the host-changing calls.
type recorder struct {
	hypervisor.Host
	mu    sync.Mutex
	calls []string
	// cloning counts clones in flight per source, to catch overlap.
	cloning map[api.ID]int
	overlap bool
	// failClone and failRun, when set, make a clone to that guest, or a
	// script run in it, fail; failScript fails the script of that name.
	failClone, failRun api.ID
	failScript         string
}

func (r *recorder) note(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recorder) Create(ctx context.Context, k api.Kind, id api.ID, s hypervisor.CreateSpec) error {
	r.note("create " + id.String())
	return r.Host.Create(ctx, k, id, s)
}

func (r *recorder) Clone(ctx context.Context, k api.Kind, src, dst api.ID, s hypervisor.CloneSpec) error {
	r.note("clone " + dst.String())
	if dst == r.failClone {
		return fmt.Errorf("clone %s: injected failure", dst)
	}
	r.mu.Lock()
	if r.cloning == nil {
		r.cloning = map[api.ID]int{}
	}
	r.cloning[src]++
	if r.cloning[src] > 1 {
		r.overlap = true
	}
	r.mu.Unlock()
	err := r.Host.Clone(ctx, k, src, dst, s)
	r.mu.Lock()
	r.cloning[src]--
	r.mu.Unlock()
	return err
}

func (r *recorder) Set(ctx context.Context, k api.Kind, id api.ID, v map[string]string) error {
	r.note("set " + id.String())
	return r.Host.Set(ctx, k, id, v)
}

func (r *recorder) Resize(ctx context.Context, k api.Kind, id api.ID, gb int) error {
	r.note("resize " + id.String())
	return r.Host.Resize(ctx, k, id, gb)
}

func (r *recorder) Start(ctx context.Context, k api.Kind, id api.ID) error {
	r.note("start " + id.String())
	return r.Host.Start(ctx, k, id)
}

func (r *recorder) Snapshot(ctx context.Context, k api.Kind, id api.ID, name string) error {
	r.note("snapshot " + id.String())
	return r.Host.Snapshot(ctx, k, id, name)
}

func (r *recorder) ConvertToTemplate(ctx context.Context, k api.Kind, id api.ID) error {
	r.note("template " + id.String())
	return r.Host.ConvertToTemplate(ctx, k, id)
}

func (r *recorder) Run(ctx context.Context, k api.Kind, id api.ID, s hypervisor.Script) error {
	r.note("run " + id.String())
	if id == r.failRun || s.Name == r.failScript && s.Name != "" {
		return fmt.Errorf("run in %s: injected failure", id)
	}
	return r.Host.Run(ctx, k, id, s)
}

func newSim(tb testing.TB, latency time.Duration) *sim.Sim {
	tb.Helper()
	s, err := sim.New(sim.Options{Dir: tb.TempDir(), Latency: latency})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func applyAll(t *testing.T, w *Workflows, cfg *api.Config) {
	t.Helper()
	for _, id := range cfg.Order() {
		if _, err := w.Apply(context.Background(), cfg, cfg.Guest(id), nil); err != nil {
			t.Fatalf("apply %s: %v", id, err)
		}
	}
}

func TestWorkflows_secondRunChangesNothing(t *testing.T) {
	for _, dir := range []string{referenceLab, exampleLab} {
		cfg := load(t, dir)
		rec := &recorder{Host: newSim(t, 0)}
		w := NewWorkflows(rec, Scripts{})
		applyAll(t, w, cfg)
		rec.calls = nil
		for _, id := range cfg.Order() {
			steps, err := w.Apply(context.Background(), cfg, cfg.Guest(id), nil)
			if err != nil {
				t.Fatalf("%s: second apply of %s: %v", dir, id, err)
			}
			for _, s := range steps {
				always := s.Name == "features" || s.Name == "app-script" || s.Name == "health-check"
				// One that does not start at boot is started to run its
				// features again and stopped after.
				always = always || !cfg.Guest(id).StartsAtBoot() && (s.Name == "start" || s.Name == "stop-unless-boot")
				if s.Result == plan.StepOK && !always {
					t.Errorf("%s: second apply of %s changed step %s", dir, id, s.Name)
				}
			}
		}
		for _, c := range rec.calls {
			verb, id, _ := strings.Cut(c, " ")
			if gid, err := api.ParseID(id); err == nil && (verb == "start" || verb == "stop") && !cfg.Guest(gid).StartsAtBoot() {
				continue
			}
			if !strings.HasPrefix(c, "run ") {
				t.Errorf("%s: second apply made a host change: %s", dir, c)
			}
		}
	}
}

func TestWorkflows_reappliesDriftedConfig(t *testing.T) {
	cfg := load(t, referenceLab)
	host := newSim(t, 0)
	w := NewWorkflows(host, Scripts{})
	applyAll(t, w, cfg)
	ctx := context.Background()
	// Someone changes memory by hand and shrinks nothing.
	if err := host.Set(ctx, api.KindLXC, 941, map[string]string{"memory": "1024", "dev5": "/dev/stale"}); err != nil {
		t.Fatal(err)
	}
	steps, err := w.Apply(ctx, cfg, cfg.Guest(941), nil)
	if err != nil {
		t.Fatal(err)
	}
	if steps[1].Name != "configure" || steps[1].Result != plan.StepOK {
		t.Errorf("configure = %+v, want ok (drift repaired)", steps[1])
	}
	g, _ := host.Get(ctx, api.KindLXC, 941)
	if g.Config["memory"] != "72000" {
		t.Errorf("memory = %s, want 72000 from the file", g.Config["memory"])
	}
	if _, ok := g.Config["dev5"]; ok {
		t.Error("a device phoenix does not want was left in place")
	}
}

func TestWorkflows_lxcConfigFromSpec(t *testing.T) {
	cfg := load(t, referenceLab)
	c := LXCConfig(cfg.Guest(941))
	want := map[string]string{
		"hostname":             "granite-new",
		"memory":               "72000",
		"cores":                "6",
		"net0":                 "name=eth0,bridge=vmbr0,ip=10.0.0.141/24,gw=10.0.0.1,hwaddr=52:54:00:67:89:A1,firewall=1",
		"onboot":               "1",
		"startup":              "order=3,up=5",
		"lxc.apparmor.profile": "unconfined",
		"dev0":                 "/dev/nvidia0",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %q, want %q", k, c[k], v)
		}
	}
	v := VMConfig(cfg.Guest(8001))
	if v["ipconfig0"] != "ip=10.0.0.101/24,gw=10.0.0.1" || v["ciuser"] != "phoenix_user" || v["memory"] != "8192" {
		t.Errorf("VMConfig(8001) = %v", v)
	}
}

func TestWorkflows_clonesOfOneSourceNeverOverlap(t *testing.T) {
	cfg := load(t, referenceLab)
	rec := &recorder{Host: newSim(t, 5*time.Millisecond)}
	w := NewWorkflows(rec, Scripts{})
	p := plan.Converge(cfg, cfg.IDs)
	runner := &Runner{Workflows: w, Config: cfg}
	out := plan.Execute(context.Background(), p, 8, runner.Run, nil)
	if !out.OK() {
		t.Fatal("converge of the reference lab failed")
	}
	if rec.overlap {
		t.Error("two clones from one source ran at once; Proxmox would refuse the second (CT is locked)")
	}
}

func TestWorkflows_failedStepIsNamed(t *testing.T) {
	cfg := load(t, exampleLab)
	scripts := t.TempDir()
	for _, d := range []string{"features", "apps", "health"} {
		if err := os.MkdirAll(filepath.Join(scripts, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := NewWorkflows(newSim(t, 0), Scripts{Dir: scripts})
	_, err := w.Apply(context.Background(), cfg, cfg.Guest(900), nil)
	if err == nil || FailedStep(err) != "features" || !strings.Contains(err.Error(), "lxc 900: step features") {
		t.Fatalf("Apply with a missing feature script = %v, want a features step error naming 900", err)
	}
}

func TestScripts_resolveStaysInside(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "features"), 0o755)
	os.MkdirAll(filepath.Join(dir, "apps"), 0o755)
	os.WriteFile(filepath.Join(dir, "features", "docker.sh"), []byte("#!/bin/sh\n"), 0o755)
	outside := filepath.Join(t.TempDir(), "evil.sh")
	os.WriteFile(outside, []byte("#!/bin/sh\n"), 0o755)
	os.Symlink(outside, filepath.Join(dir, "apps", "link.sh"))
	s := Scripts{Dir: dir}
	tests := []struct {
		kind    hypervisor.ScriptKind
		name    string
		wantErr string
	}{
		{hypervisor.FeatureScript, "docker", ""},
		{hypervisor.FeatureScript, "../apps/x", "leaves"},
		{hypervisor.AppScript, "/etc/passwd", "leaves"},
		{hypervisor.AppScript, "link.sh", "outside"},
		{hypervisor.AppScript, "missing.sh", "no file"},
	}
	for _, tt := range tests {
		_, err := s.Resolve(tt.kind, tt.name)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Resolve(%s, %q) = %v, want error containing %q", tt.kind, tt.name, err, tt.wantErr)
		}
	}
}
