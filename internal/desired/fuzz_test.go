package desired

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// FuzzLoad feeds arbitrary bytes as the LXC and VM files. Load must never
// panic, and must either succeed with a graph whose order is topological or
// fail with problems that each name a file.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"../../testdata/reference-lab", "../../config/examples/lab", "../../testdata/small"} {
		lxc, _ := os.ReadFile(filepath.Join(dir, api.LXCFile))
		vm, _ := os.ReadFile(filepath.Join(dir, api.VMFile))
		f.Add(lxc, vm)
	}
	bad, _ := filepath.Glob("../../testdata/bad/*")
	for _, dir := range bad {
		lxc, _ := os.ReadFile(filepath.Join(dir, api.LXCFile))
		vm, _ := os.ReadFile(filepath.Join(dir, api.VMFile))
		f.Add(lxc, vm)
	}
	// One folder for every input: a fuzz worker runs inputs one at a time,
	// and a fresh temp dir per input cost more than Load itself.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, lxc, vm []byte) {
		if err := os.WriteFile(filepath.Join(dir, api.LXCFile), lxc, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, api.VMFile), vm, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		if err != nil {
			var inv *api.InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) == 0 {
				t.Fatalf("Load failed without problems: %v", err)
			}
			for _, p := range inv.Problems {
				if p.File == "" {
					t.Fatalf("problem names no file: %s", p)
				}
			}
			return
		}
		checkTopological(t, c)
	})
}

// FuzzGraph builds configs from arbitrary edge lists: a valid one has a
// topological order and closures that contain their targets; an invalid
// one is refused, never looped on.
func FuzzGraph(f *testing.F) {
	f.Add([]byte{0, 1, 1, 2, 2, 3})
	f.Add([]byte{0, 1, 1, 0})
	f.Add([]byte{5, 5})
	f.Add([]byte{0, 9, 9, 4, 4, 2, 2, 9})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, edges []byte) {
		if len(edges) > 200 {
			return
		}
		deps := map[int][]int{}
		for i := 0; i+1 < len(edges); i += 2 {
			from, to := int(edges[i]%16), int(edges[i+1]%16)
			deps[from] = append(deps[from], to)
		}
		var b []byte
		b = append(b, `{"lxc_configs": {`...)
		for n := 0; n < 16; n++ {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, `"`+api.ID(900+n).String()+`": {"name": "g", "template": "t", "dependencies": [`...)
			for i, d := range deps[n] {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `"`+api.ID(900+d).String()+`"`...)
			}
			b = append(b, "]}"...)
		}
		b = append(b, "}}"...)
		if err := os.WriteFile(filepath.Join(dir, api.LXCFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		if err != nil {
			return
		}
		checkTopological(t, c)
		for _, id := range c.IDs {
			cl := c.Closure([]api.ID{id}, nil)
			if cl[len(cl)-1] != id {
				t.Fatalf("closure of %s does not end with it: %v", id, cl)
			}
		}
	})
}

func checkTopological(t *testing.T, c *api.Config) {
	t.Helper()
	order := c.Order()
	if len(order) != len(c.IDs) {
		t.Fatalf("order has %d guests, config %d", len(order), len(c.IDs))
	}
	pos := map[api.ID]int{}
	for i, id := range order {
		pos[id] = i
	}
	for _, id := range order {
		for _, e := range c.Edges(c.Guest(id)) {
			if p, ok := pos[e.To]; !ok || p > pos[id] {
				t.Fatalf("%s is ordered before %s, which it needs", id, e.To)
			}
		}
	}
}
