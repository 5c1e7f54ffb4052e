package plan

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	referenceLab = "../../testdata/reference-lab"
	exampleLab   = "../../config/examples/lab"
)

func load(tb testing.TB, dir string) *api.Config {
	tb.Helper()
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("fixture %s is missing: %v", dir, err)
	}
	c, err := desired.Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// hostWith is a Lookup for a host where the given guests exist and run.
func hostWith(running ...api.ID) Lookup {
	exist := map[api.ID]bool{}
	for _, id := range running {
		exist[id] = true
	}
	return func(_ context.Context, _ api.Kind, id api.ID) (State, error) {
		return State{Exists: exist[id], Running: exist[id]}, nil
	}
}

// stopped is a Lookup for a host where every guest exists and all but the
// given ones run.
func stopped(ids ...api.ID) Lookup {
	down := map[api.ID]bool{}
	for _, id := range ids {
		down[id] = true
	}
	return func(_ context.Context, _ api.Kind, id api.ID) (State, error) {
		return State{Exists: true, Running: !down[id]}, nil
	}
}

func all(c *api.Config) []api.ID { return c.IDs }

func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "plans", name+".txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reconcilers -run TestPlan_golden -update)", err)
	}
	if string(want) != got {
		t.Errorf("plan %s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func TestPlan_golden(t *testing.T) {
	ctx := context.Background()
	ref := load(t, referenceLab)
	ex := load(t, exampleLab)
	without := func(c *api.Config, drop ...api.ID) Lookup {
		skip := map[api.ID]bool{}
		for _, d := range drop {
			skip[d] = true
		}
		var ids []api.ID
		for _, id := range c.IDs {
			if !skip[id] {
				ids = append(ids, id)
			}
		}
		return hostWith(ids...)
	}
	ids := func(xs ...api.ID) []api.ID { return xs }
	tests := []struct {
		name string
		plan func() (*Plan, error)
	}{
		{"reference-create-941-empty", func() (*Plan, error) { return Create(ctx, ref, ids(941), hostWith()) }},
		{"reference-create-941-provisioned", func() (*Plan, error) { return Create(ctx, ref, ids(941), hostWith(all(ref)...)) }},
		{"reference-create-941-without-921", func() (*Plan, error) { return Create(ctx, ref, ids(941), without(ref, 921)) }},
		{"reference-create-941-950", func() (*Plan, error) { return Create(ctx, ref, ids(941, 950), hostWith(all(ref)...)) }},
		{"reference-converge-941", func() (*Plan, error) { return Converge(ref, ids(941)), nil }},
		{"reference-start-956", func() (*Plan, error) { return Start(ctx, ref, ids(956), stopped(956, 955)) }},
		{"reference-letsgo", func() (*Plan, error) { return LetsGo(ref), nil }},
		{"example-letsgo", func() (*Plan, error) { return LetsGo(ex), nil }},
		{"example-create-954-empty", func() (*Plan, error) { return Create(ctx, ex, ids(954), hostWith()) }},
		{"example-converge-8001", func() (*Plan, error) { return Converge(ex, ids(8001)), nil }},
		{"example-delete-941-953", func() (*Plan, error) { return Delete(ctx, ex, ids(953, 941), hostWith(941, 953), true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.plan()
			if err != nil {
				t.Fatal(err)
			}
			assertGolden(t, tt.name, p.String())
		})
	}
}

func TestPlanCreate_startsStoppedRuntimeDependency(t *testing.T) {
	ref := load(t, referenceLab)
	look := func(_ context.Context, _ api.Kind, id api.ID) (State, error) {
		return State{Exists: true, Running: id != 953}, nil
	}
	p, err := Create(context.Background(), ref, []api.ID{941}, look)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.String(), "start   953       lxc dependency") {
		t.Errorf("a stopped dependency is not started before its dependent:\n%s", p)
	}
}

func TestPlanDelete_refusesNeededGuest(t *testing.T) {
	ref := load(t, referenceLab)
	_, err := Delete(context.Background(), ref, []api.ID{921}, hostWith(all(ref)...), false)
	if err == nil || !strings.Contains(err.Error(), "941") || !IsTerminal(err) {
		t.Fatalf("Delete(921) = %v, want a refusal naming 941", err)
	}
	// Deleting the dependent too is fine.
	if _, err := Delete(context.Background(), ref, []api.ID{921, 941}, hostWith(all(ref)...), false); err != nil {
		t.Errorf("Delete(921, 941) = %v, want no refusal", err)
	}
}
