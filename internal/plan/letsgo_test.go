package plan

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// LetsGo's start phase, on the cases the old tool got right by running
// starts one by one: a guest with no boot_order starts after every guest
// with one (999), a runtime dependency starts before its dependent even
// when the dependent's boot_order is lower, and dependencies of the same
// boot_order start first.
func TestLetsGo_startOrder(t *testing.T) {
	dir := t.TempDir()
	// 200: no boot_order. 201 (order 1) depends on 203 (order 3).
	// 204 and 205 share order 2; 204 depends on 205. 206 (order 1) does not
	// start at boot.
	lxc := `{"lxc_configs":{
	  "200":{"name":"a","template":"t.tar.zst"},
	  "201":{"name":"b","template":"t.tar.zst","boot_order":1,"dependencies":["203"]},
	  "202":{"name":"c","template":"t.tar.zst","boot_order":1},
	  "203":{"name":"d","template":"t.tar.zst","boot_order":3},
	  "204":{"name":"e","template":"t.tar.zst","boot_order":2,"dependencies":["205"]},
	  "205":{"name":"f","template":"t.tar.zst","boot_order":2},
	  "206":{"name":"g","template":"t.tar.zst","boot_order":0,"start_at_boot":false}
	}}`
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), []byte(lxc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, dir)
	p := LetsGo(cfg)
	var starts []api.ID
	at := map[api.ID]int{}
	for i, a := range p.Actions {
		if a.Action == ActStart {
			starts = append(starts, a.ID)
			at[a.ID] = i
		}
	}
	want := []api.ID{202, 205, 204, 203, 201, 200}
	if !slices.Equal(starts, want) {
		t.Errorf("start order %v, want %v\n%s", starts, want, p)
	}
	// Order in the list is not enough: the executor runs what is ready, so
	// each start must wait (through Needs) for its dependencies' starts.
	for _, pair := range [][2]api.ID{{201, 203}, {204, 205}, {200, 203}, {203, 204}} {
		if !waitsFor(p, at[pair[0]], at[pair[1]]) {
			t.Errorf("start %s does not wait for start %s\n%s", pair[0], pair[1], p)
		}
	}
	if waitsFor(p, at[205], at[204]) {
		t.Errorf("start 205 waits for its dependent 204\n%s", p)
	}
}

// waitsFor reports whether action i needs action j, directly or not.
func waitsFor(p *Plan, i, j int) bool {
	seen := map[int]bool{}
	var walk func(k int) bool
	walk = func(k int) bool {
		if k == j {
			return true
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		for _, n := range p.Actions[k].Needs {
			if walk(n) {
				return true
			}
		}
		return false
	}
	return walk(i)
}

// Within a boot_order group, the first start (the group's gate) orders the
// group after the one before; a runtime dependency on another member that
// is not the gate must still be waited for directly, in the first group
// (which has no group before it) as in a later one.
func TestLetsGo_dependencyInsideAGroup(t *testing.T) {
	dir := t.TempDir()
	lxc := `{"lxc_configs":{
	  "300":{"name":"a","template":"t.tar.zst","boot_order":1},
	  "301":{"name":"b","template":"t.tar.zst","boot_order":1},
	  "302":{"name":"c","template":"t.tar.zst","boot_order":1,"dependencies":["301"]},
	  "310":{"name":"d","template":"t.tar.zst","boot_order":2},
	  "311":{"name":"e","template":"t.tar.zst","boot_order":2},
	  "312":{"name":"f","template":"t.tar.zst","boot_order":2,"dependencies":["311"]}
	}}`
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), []byte(lxc), 0o644); err != nil {
		t.Fatal(err)
	}
	p := LetsGo(load(t, dir))
	at := map[api.ID]int{}
	for i, a := range p.Actions {
		if a.Action == ActStart {
			at[a.ID] = i
		}
	}
	for _, pair := range [][2]api.ID{{302, 301}, {312, 311}, {310, 302}, {311, 300}} {
		if !waitsFor(p, at[pair[0]], at[pair[1]]) {
			t.Errorf("start %s does not wait for start %s\n%s", pair[0], pair[1], p)
		}
	}
	if waitsFor(p, at[301], at[300]) || waitsFor(p, at[300], at[301]) {
		t.Errorf("starts 300 and 301, of one group and independent, wait for each other\n%s", p)
	}
}
