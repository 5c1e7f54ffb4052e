package sim

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

func newSim(t *testing.T, opts Options) *Sim {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSim_refusesWhatProxmoxRefuses(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, Options{})
	create := func(id api.ID) error {
		return s.Create(ctx, api.KindLXC, id, hypervisor.CreateSpec{Source: "tpl", DiskGB: 8, Config: map[string]string{"hostname": "a"}})
	}
	if err := create(900); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
		want string
	}{
		{"create twice", func() error { return create(900) }, "already exists"},
		{"stop stopped", func() error { return s.Stop(ctx, api.KindLXC, 900) }, "not running"},
		{"shrink", func() error { return s.Resize(ctx, api.KindLXC, 900, 4) }, "shrinking"},
		{"bad snapshot name", func() error { return s.Snapshot(ctx, api.KindLXC, 900, "1-bad") }, "invalid snapshot name"},
		{"clone from missing snapshot", func() error {
			return s.Clone(ctx, api.KindLXC, 900, 901, hypervisor.CloneSpec{Snapshot: "golden"})
		}, "no snapshot"},
		{"run in stopped guest", func() error {
			return s.Run(ctx, api.KindLXC, 900, hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "docker"})
		}, "not running"},
		{"wrong kind", func() error { return s.Start(ctx, api.KindVM, 900) }, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := s.Start(ctx, api.KindLXC, 900); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"start running":    func() error { return s.Start(ctx, api.KindLXC, 900) },
		"destroy running":  func() error { return s.Destroy(ctx, api.KindLXC, 900) },
		"template running": func() error { return s.ConvertToTemplate(ctx, api.KindLXC, 900) },
	} {
		if err := op(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := s.Get(ctx, api.KindLXC, 999); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func TestSim_stateOutlivesTheProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindVM, 8000, hypervisor.CreateSpec{Source: "img", DiskGB: 10, Config: map[string]string{"name": "t"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Snapshot(ctx, api.KindVM, 8000, "base"); err != nil {
		t.Fatal(err)
	}
	b := newSim(t, Options{Dir: dir})
	if err := b.Clone(ctx, api.KindVM, 8000, 8001, hypervisor.CloneSpec{Snapshot: "base", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	g, err := a.Get(ctx, api.KindVM, 8001)
	if err != nil || g.Config["name"] != "c" || g.DiskGB != 10 {
		t.Fatalf("clone seen by the other instance = %+v, %v", g, err)
	}
}

func TestSim_failRateIsSeeded(t *testing.T) {
	ctx := context.Background()
	run := func() []bool {
		s := newSim(t, Options{FailRate: 0.5, Seed: 42})
		var out []bool
		for i := 0; i < 40; i++ {
			err := s.Create(ctx, api.KindLXC, api.ID(1000+i), hypervisor.CreateSpec{Source: "t"})
			out = append(out, err != nil)
		}
		return out
	}
	a, b := run(), run()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run %d differs between two runs with the same seed", i)
		}
		if a[i] {
			fails++
		}
	}
	if fails == 0 || fails == 40 {
		t.Errorf("%d of 40 operations failed at rate 0.5", fails)
	}
}

func TestSim_concurrentWritersLoseNothing(t *testing.T) {
	// Two instances on one folder stand for two phoenix processes.
	ctx := context.Background()
	dir := t.TempDir()
	a, b := newSim(t, Options{Dir: dir}), newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "t", Config: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		key := "k" + api.ID(i).String()
		go func() { defer wg.Done(); _ = a.Set(ctx, api.KindLXC, 900, map[string]string{"a" + key: "1"}) }()
		go func() { defer wg.Done(); _ = b.Set(ctx, api.KindLXC, 900, map[string]string{"b" + key: "1"}) }()
	}
	wg.Wait()
	g, err := a.Get(ctx, api.KindLXC, 900)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Config) != 100 {
		t.Errorf("config has %d keys after 100 concurrent sets, want 100: updates were lost", len(g.Config))
	}
}

// Get remembers what it read, but a change made by another process (here
// another Sim on the same folder), or one made behind the sim's back,
// shows at once; and changing what Get returned changes nothing.
func TestSim_getSeesOtherProcessesChanges(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newSim(t, Options{Dir: dir})
	b := newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "tpl", Config: map[string]string{"memory": "512"}}); err != nil {
		t.Fatal(err)
	}
	g, err := a.Get(ctx, api.KindLXC, 900)
	if err != nil || g.Config["memory"] != "512" {
		t.Fatalf("Get = %+v, %v", g, err)
	}
	g.Config["memory"] = "scribbled"
	for i, want := range []string{"1024", "2048", "4096"} {
		if err := b.Set(ctx, api.KindLXC, 900, map[string]string{"memory": want}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := a.Start(ctx, api.KindLXC, 900); err != nil {
				t.Fatal(err)
			}
		}
		g, err := a.Get(ctx, api.KindLXC, 900)
		if err != nil || g.Config["memory"] != want {
			t.Fatalf("after b's change %d: a.Get = %+v, %v; want memory %s", i, g, err, want)
		}
	}
	if err := b.Stop(ctx, api.KindLXC, 900); err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(ctx, api.KindLXC, 900); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, api.KindLXC, 900); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Fatalf("after b destroyed it: a.Get err = %v, want not found", err)
	}
}
