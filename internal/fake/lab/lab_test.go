package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	schemaDir  = "../../../config/schemas"
	exampleDir = "../../../config/examples"
)

var labFiles = []string{"phoenix_lxc_configs.json", "phoenix_vm_configs.json", "phoenix_hypervisor_config.json"}

func TestGeneratedLab(t *testing.T) {
	for _, o := range []Options{
		{N: 300, VMShare: 0.25, Depth: 5, Seed: 7},
		{N: 50, VMShare: 0.2, Depth: 6, Seed: 1},
		{N: 1, VMShare: 0.2, Depth: 6, Seed: 1},
		{N: 40, VMShare: 0, Depth: 3, Seed: 3},
		{N: 40, VMShare: 1, Depth: 3, Seed: 3},
		{N: 12, VMShare: 0.5, Depth: 1, Seed: 9},
	} {
		t.Run(fmt.Sprintf("n%d-vm%v-d%d", o.N, o.VMShare, o.Depth), func(t *testing.T) {
			dir := t.TempDir()
			l, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Write(dir); err != nil {
				t.Fatal(err)
			}
			validateSchemas(t, dir)
			st := checkLab(t, dir)
			if st.guests != o.N {
				t.Errorf("%d guests, want %d", st.guests, o.N)
			}
			if o.N >= 50 && o.VMShare > 0 && o.VMShare < 1 {
				if st.cloneDepth < o.Depth+1 {
					t.Errorf("clone depth %d, want at least %d", st.cloneDepth, o.Depth+1)
				}
				if st.lxcToVM == 0 || st.vmToLXC == 0 {
					t.Errorf("cross-kind dependencies: lxc->vm %d, vm->lxc %d; want both > 0", st.lxcToVM, st.vmToLXC)
				}
				if st.maxDependents < o.N/4 {
					t.Errorf("busiest gateway has %d dependents, want at least %d", st.maxDependents, o.N/4)
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	render := func(seed uint64) [][]byte {
		dir := t.TempDir()
		l, err := Generate(Options{N: 500, VMShare: 0.3, Depth: 4, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(dir); err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, f := range labFiles {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, data)
		}
		return out
	}
	a, b, c := render(42), render(42), render(43)
	for i := range labFiles {
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("%s differs between two runs with the same seed", labFiles[i])
		}
	}
	if bytes.Equal(a[0], c[0]) {
		t.Errorf("seeds 42 and 43 gave the same %s", labFiles[0])
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{N: 0, VMShare: 0.2, Depth: 6},
		{N: 10, VMShare: 1.5, Depth: 6},
		{N: 10, VMShare: -0.1, Depth: 6},
		{N: 10, VMShare: 0.2, Depth: 0},
		{N: maxGuests + 1, VMShare: 0.2, Depth: 6},
	} {
		if _, err := Generate(o); err == nil {
			t.Errorf("Generate(%+v): no error", o)
		}
	}
}

// TestExampleLab holds config/examples/lab to the same rules, and checks that every
// feature and application script it names exists in config/examples/scripts.
func TestExampleLab(t *testing.T) {
	dir := filepath.Join(exampleDir, "lab")
	validateSchemas(t, dir)
	st := checkLab(t, dir)
	if st.guests != 16 {
		t.Errorf("%d guests, want 16", st.guests)
	}
	if st.lxcToVM == 0 || st.vmToLXC == 0 {
		t.Errorf("cross-kind dependencies: lxc->vm %d, vm->lxc %d; want both > 0", st.lxcToVM, st.vmToLXC)
	}
	for script := range st.scripts {
		fi, err := os.Stat(filepath.Join(exampleDir, "scripts", script))
		if err != nil {
			t.Errorf("script for the lab: %v", err)
			continue
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable", script)
		}
	}
}

// validateSchemas validates the three files in dir against config/schemas.
func validateSchemas(t *testing.T, dir string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	for _, f := range labFiles {
		sch, err := c.Compile(filepath.Join(schemaDir, strings.TrimSuffix(f, ".json")+".schema.json"))
		if err != nil {
			t.Fatalf("compile schema for %s: %v", f, err)
		}
		r, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := sch.Validate(doc); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

type node struct {
	kind string // "lxc" or "vm"
	spec map[string]any
}

type labStats struct {
	guests, cloneDepth, maxDependents int
	lxcToVM, vmToLXC                  int
	scripts                           map[string]bool // features/x.sh and apps/y named by the lab
}

// checkLab reads the files in dir as plain JSON (not through the generator's types) and
// checks the graph: IDs valid and unique across kinds, clone sources and dependencies
// exist, clone sources are templates of the same kind with a snapshot, dependencies are
// not templates, MAC and IP addresses are unique, and there is no cycle.
func checkLab(t *testing.T, dir string) labStats {
	t.Helper()
	var lxcDoc struct {
		LXC map[string]map[string]any `json:"lxc_configs"`
	}
	var vmDoc struct {
		Defaults map[string]any   `json:"vm_defaults"`
		VMs      []map[string]any `json:"vms"`
	}
	readJSON(t, filepath.Join(dir, labFiles[0]), &lxcDoc)
	readJSON(t, filepath.Join(dir, labFiles[1]), &vmDoc)

	g := map[int]node{}
	for key, s := range lxcDoc.LXC {
		id, ok := idOf(key)
		if !ok {
			t.Errorf("lxc key %q is not an ID", key)
			continue
		}
		g[id] = node{"lxc", s}
	}
	for i, v := range vmDoc.VMs {
		id, ok := idOf(v["vmid"])
		if !ok {
			t.Errorf("vms[%d]: bad vmid %v", i, v["vmid"])
			continue
		}
		if _, dup := g[id]; dup {
			t.Errorf("ID %d is used twice", id)
		}
		s := map[string]any{}
		for k, x := range vmDoc.Defaults {
			s[k] = x
		}
		for k, x := range v {
			s[k] = x
		}
		g[id] = node{"vm", s}
	}
	st := labStats{guests: len(g), scripts: map[string]bool{}}
	if len(g) != len(lxcDoc.LXC)+len(vmDoc.VMs) {
		t.Errorf("%d distinct IDs for %d guests", len(g), len(lxcDoc.LXC)+len(vmDoc.VMs))
	}

	isTemplate := func(n node) bool {
		snap, _ := n.spec["template_snapshot_name"].(string)
		tpl, _ := n.spec["is_template"].(bool)
		return snap != "" || tpl
	}
	edges := map[int][]int{}
	macs, ips := map[string]int{}, map[string]int{}
	dependents := map[int]int{}
	for id, n := range g {
		if id < 100 || id > 999999999 {
			t.Errorf("%d: ID out of range 100..999999999", id)
		}
		for _, f := range [2]string{"clone_from_ctid", "clone_from_vmid"} {
			raw, ok := n.spec[f]
			if !ok {
				continue
			}
			src, ok := idOf(raw)
			sn, exists := g[src]
			wantKind := map[string]string{"clone_from_ctid": "lxc", "clone_from_vmid": "vm"}[f]
			switch {
			case !ok || !exists:
				t.Errorf("%d: %s %v does not exist", id, f, raw)
			case sn.kind != wantKind || n.kind != wantKind:
				t.Errorf("%d (%s): %s %d is a %s", id, n.kind, f, src, sn.kind)
			case sn.spec["template_snapshot_name"] == nil:
				t.Errorf("%d: clone source %d has no template_snapshot_name", id, src)
			default:
				edges[id] = append(edges[id], src)
			}
		}
		if _, a := n.spec["clone_from_ctid"]; a {
			if _, b := n.spec["clone_from_vmid"]; b {
				t.Errorf("%d: both clone_from_ctid and clone_from_vmid", id)
			}
		}
		deps, _ := n.spec["dependencies"].([]any)
		for _, raw := range deps {
			dep, ok := idOf(raw)
			dn, exists := g[dep]
			if !ok || !exists {
				t.Errorf("%d: dependency %v does not exist", id, raw)
				continue
			}
			if isTemplate(dn) {
				t.Errorf("%d: dependency %d is a template", id, dep)
			}
			edges[id] = append(edges[id], dep)
			dependents[dep]++
			switch {
			case n.kind == "lxc" && dn.kind == "vm":
				st.lxcToVM++
			case n.kind == "vm" && dn.kind == "lxc":
				st.vmToLXC++
			}
		}
		if mac, _ := n.spec["mac_address"].(string); mac != "" {
			mac = strings.ToUpper(mac)
			if other, dup := macs[mac]; dup {
				t.Errorf("%d and %d share MAC %s", id, other, mac)
			}
			macs[mac] = id
		}
		if nc, ok := n.spec["network_config"].(map[string]any); ok {
			ip, _ := nc["ip"].(string)
			ip, _, _ = strings.Cut(ip, "/")
			if other, dup := ips[ip]; dup && ip != "" {
				t.Errorf("%d and %d share IP %s", id, other, ip)
			}
			ips[ip] = id
		}
		feats, _ := n.spec["features"].([]any)
		for _, f := range feats {
			st.scripts[fmt.Sprintf("features/%v.sh", f)] = true
		}
		if app, ok := n.spec["application_script"].(string); ok {
			st.scripts["apps/"+app] = true
		}
	}
	for _, c := range dependents {
		st.maxDependents = max(st.maxDependents, c)
	}

	// Cycle check: DFS with colours over both edge kinds.
	const (
		white = iota
		grey
		black
	)
	color := map[int]int{}
	var visit func(id int, path []int)
	visit = func(id int, path []int) {
		switch color[id] {
		case grey:
			t.Fatalf("cycle: %v -> %d", path, id)
		case black:
			return
		}
		color[id] = grey
		for _, m := range edges[id] {
			visit(m, append(path, id))
		}
		color[id] = black
	}
	for id := range g {
		visit(id, nil)
	}

	// Clone Depth: the longest clone chain, counting the guest itself.
	cloneDepth := map[int]int{}
	var depth func(id int) int
	depth = func(id int) int {
		if d, ok := cloneDepth[id]; ok {
			return d
		}
		d := 1
		for _, f := range [2]string{"clone_from_ctid", "clone_from_vmid"} {
			if src, ok := idOf(g[id].spec[f]); ok {
				d = 1 + depth(src)
			}
		}
		cloneDepth[id] = d
		return d
	}
	for id := range g {
		st.cloneDepth = max(st.cloneDepth, depth(id))
	}
	return st
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// idOf accepts a guest ID as the files write it: a string of digits or an integer.
func idOf(v any) (int, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		return 0, false
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	id, err := strconv.Atoi(s)
	return id, err == nil
}
