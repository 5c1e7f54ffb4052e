package reconcilers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// lostSnapshots shows the guests of a host without their snapshots, as
// after someone deleted a clone source's template snapshot by hand.
type lostSnapshots struct {
	hypervisor.Host
	ids map[api.ID]bool
}

func (l lostSnapshots) Get(ctx context.Context, k api.Kind, id api.ID) (*hypervisor.Guest, error) {
	g, err := l.Host.Get(ctx, k, id)
	if err == nil && l.ids[id] {
		c := *g
		c.Snapshots = nil
		g = &c
	}
	return g, err
}

// readyStatus says every guest is Ready with its current spec.
type readyStatus struct{ cfg *api.Config }

func (r readyStatus) Get(id api.ID, kind api.Kind) (*api.Status, error) {
	return &api.Status{Kind: kind, Phase: api.PhaseReady, ObservedSpecHash: r.cfg.Guest(id).Hash}, nil
}

// A clone source whose template snapshot vanished while its status says
// Ready is planned for its workflow again, and the skip check made under
// its lock does not believe the status either: else every clone of it
// fails on every rerun.
func TestVanishedTemplateSnapshot(t *testing.T) {
	cfg := load(t, "../testdata/small")
	host := newSim(t, 0)
	applyAll(t, NewWorkflows(host, Scripts{}), cfg)
	ctx := context.Background()
	st := readyStatus{cfg}
	for _, tt := range []struct {
		name     string
		host     hypervisor.Host
		wantSkip bool
	}{
		{"snapshot there", host, true},
		{"snapshot gone", lostSnapshots{host, map[api.ID]bool{900: true}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := plan.Create(ctx, cfg, []api.ID{941}, plan.HostLookup(tt.host, cfg, st))
			if err != nil {
				t.Fatal(err)
			}
			var src *plan.Action
			for _, a := range p.Actions {
				if a.ID == 900 {
					src = a
				}
			}
			if got := src.Action == plan.ActSkip; got != tt.wantSkip {
				t.Fatalf("plan for 900: %s %s; want skip %v\n%s", src.Action, src.Reason, tt.wantSkip, p)
			}
			// The check the executor makes under the guest's lock, for an
			// action planned as a missing dependency.
			a := &plan.Action{ID: 900, Kind: api.KindLXC, Action: plan.ActCreate, Reason: plan.ReasonMissingDependency, Guest: cfg.Guest(900)}
			done, err := UpToDate(ctx, tt.host, st, a)
			if err != nil {
				t.Fatal(err)
			}
			if done != tt.wantSkip {
				t.Errorf("UpToDate(900) = %v with a Ready status; want %v", done, tt.wantSkip)
			}
		})
	}
}

// A guest with start_at_boot false (a clone source) ends its create
// workflow stopped when the workflow started it; a guest that starts at
// boot stays running.
func TestStartAtBootFalseEndsStopped(t *testing.T) {
	cfg := load(t, "../testdata/upstream-2025-11")
	rec := &recorder{Host: newSim(t, 0)}
	w := NewWorkflows(rec, Scripts{})
	ctx := context.Background()
	for _, tt := range []struct {
		id      api.ID
		running bool
	}{{900, false}, {901, false}, {910, false}, {103, true}} {
		g := cfg.Guest(tt.id)
		if _, err := w.Apply(ctx, cfg, g, nil); err != nil {
			t.Fatalf("apply %d: %v", tt.id, err)
		}
		h, err := rec.Get(ctx, api.KindLXC, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if h.Running != tt.running {
			t.Errorf("%d (start_at_boot %v) running = %v after create, want %v", tt.id, g.StartsAtBoot(), h.Running, tt.running)
		}
	}
	// Run again (converge), it runs the features and is stopped again.
	if _, err := w.Apply(ctx, cfg, cfg.Guest(900), nil); err != nil {
		t.Fatal(err)
	}
	if h, _ := rec.Get(ctx, api.KindLXC, 900); h == nil || h.Running {
		t.Errorf("900 is running after its second create workflow")
	}
}

func (r *recorder) EnsureDir(ctx context.Context, path string, uid, gid int) error {
	r.note(fmt.Sprintf("hostdir %s %d:%d", path, uid, gid))
	return r.Host.(HostDirs).EnsureDir(ctx, path, uid, gid)
}

// Bind mounts become mpN after the storage volumes, each host folder
// created first with the owner the container sees mapped to host IDs, and
// id_maps become lxc.idmap lines that map every ID once.
func TestMountPointsAndIDMaps(t *testing.T) {
	cfg := load(t, "../testdata/upstream-2025-11")
	rec := &recorder{Host: newSim(t, 0)}
	w := NewWorkflows(rec, Scripts{})
	ctx := context.Background()
	for _, id := range []api.ID{900, 103, 101} {
		if _, err := w.Apply(ctx, cfg, cfg.Guest(id), nil); err != nil {
			t.Fatalf("apply %d: %v", id, err)
		}
	}
	g, err := rec.Get(ctx, api.KindLXC, 101)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"mp0":            "/mnt/pve/quickOS/lxc-persistent-data/101/logs,mp=/var/log/nginx",
		"mp1":            "/mnt/pve/quickOS/lxc-persistent-data/101/ssl,mp=/etc/nginx/ssl",
		"mp2":            "/mnt/pve/quickOS/lxc-persistent-data/103/ssl,mp=/etc/step-ca/ssl",
		"swap":           "512",
		"nameserver":     "10.0.0.13",
		"lxc.idmap":      "u 0 100000 65536\ng 0 100000 33\ng 33 33 1\ng 34 100034 65502",
		"lxc.mount.auto": "sys:rw",
	}
	for k, v := range want {
		if g.Config[k] != v {
			t.Errorf("101 %s = %q, want %q", k, g.Config[k], v)
		}
	}
	if !strings.Contains(g.Config["net0"], "firewall=1") {
		t.Errorf("101 net0 = %q, want the firewall on", g.Config["net0"])
	}
	// owner 33:33 is uid 33 shifted (no uid map) and gid 33 as mapped.
	wantDirs := []string{
		"hostdir /mnt/pve/quickOS/lxc-persistent-data/103/ssl 100000:100000",
		"hostdir /mnt/pve/quickOS/lxc-persistent-data/101/logs 100033:33",
		"hostdir /mnt/pve/quickOS/lxc-persistent-data/101/ssl 100000:100000",
	}
	var dirs []string
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "hostdir ") && !slices.Contains(dirs, c) {
			dirs = append(dirs, c)
		}
	}
	for _, d := range wantDirs {
		if !slices.Contains(dirs, d) {
			t.Errorf("no %q among %q", d, dirs)
		}
	}
}

// scriptLog keeps every script a host was asked to run.
type scriptLog struct {
	hypervisor.Host
	runs []hypervisor.Script
}

func (s *scriptLog) Run(ctx context.Context, k api.Kind, id api.ID, sc hypervisor.Script) error {
	s.runs = append(s.runs, sc)
	return s.Host.Run(ctx, k, id, sc)
}

// A VM's nfs volumes are mounted inside it through the guest agent: an
// fstab line and a mount, the values passed as arguments of a fixed
// script, never as shell text.
func TestVMNFSMounts(t *testing.T) {
	cfg := load(t, "../testdata/upstream-2025-11")
	log := &scriptLog{Host: newSim(t, 0)}
	w := NewWorkflows(log, Scripts{})
	ctx := context.Background()
	for _, id := range []api.ID{9000, 1001} {
		if _, err := w.Apply(ctx, cfg, cfg.Guest(id), nil); err != nil {
			t.Fatalf("apply %d: %v", id, err)
		}
	}
	var mounts [][]string
	for _, s := range log.runs {
		if len(s.Command) > 0 && s.Command[len(s.Command)-1] != "" && strings.HasPrefix(s.Name, "nfs ") {
			mounts = append(mounts, s.Command)
		}
	}
	want := [][]string{
		{"sh", "-c", nfsMountScript, "phoenix-nfs", "10.0.0.13:/quickOS/vm-persistent-data/1001 /persistent-storage nfs defaults,auto,nofail 0 0", "/persistent-storage"},
		{"sh", "-c", nfsMountScript, "phoenix-nfs", "10.0.0.13:/quickOS/vm-persistent-data/1001/.step-ca /etc/step-ca/certs nfs defaults,auto,nofail 0 0", "/etc/step-ca/certs"},
	}
	if !slices.EqualFunc(mounts, want, slices.Equal[[]string]) {
		t.Errorf("nfs mounts = %q\nwant %q", mounts, want)
	}
	// The mounts come before the features, which may use them.
	first := slices.IndexFunc(log.runs, func(s hypervisor.Script) bool {
		return s.Kind == hypervisor.FeatureScript && !strings.HasPrefix(s.Name, "nfs ")
	})
	last := slices.IndexFunc(log.runs, func(s hypervisor.Script) bool { return s.Name == "nfs /etc/step-ca/certs" })
	if first >= 0 && last > first {
		t.Errorf("nfs mounts ran after the features")
	}
}
