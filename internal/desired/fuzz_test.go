package desired

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// FuzzValues puts arbitrary strings into the fields that reach Proxmox
// (property strings, config lines, argv). Whatever loads must be safe to
// write there: no line break, CR, NUL or ESC anywhere, no ',', '=', ';',
// quote or space in a property-string field, lxc_options only as keys on
// Proxmox's list, pct_options only as known features.
func FuzzValues(f *testing.F) {
	for i, v := range []string{"local-lvm", "vmbr0", "eth0", "/data", "nesting=1", "lxc.apparmor.profile=unconfined",
		"lxc.mount.auto:sys:rw", "lxc.cap.keep=sys_admin,mknod", "a,b=c", "x\ny", "gateway", "0, 1", "golden", "10.0.0.5/24"} {
		f.Add(uint8(i), v)
	}
	base, err := os.ReadFile("../../testdata/small/" + api.LXCFile)
	if err != nil {
		f.Fatal(err)
	}
	vm, _ := os.ReadFile("../../testdata/small/" + api.VMFile)
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, api.VMFile), vm, 0o600); err != nil {
		f.Fatal(err)
	}
	fields := []string{"storage_pool", "network_config.bridge", "network_config.name", "volumes.0.pool",
		"volumes.0.mount_point", "pct_options", "lxc_options", "name", "gpu_assignment", "template_snapshot_name",
		"network_config.ip", "network_config.gw", "mac_address", "apparmor_profile", "template", "node"}
	f.Fuzz(func(t *testing.T, which uint8, v string) {
		field := fields[int(which)%len(fields)]
		var val any = v
		if field == "pct_options" || field == "lxc_options" {
			val = []any{v}
		}
		lxc := mutate(t, base, "lxc_configs", "953", func(g map[string]any) {
			if field == "template_snapshot_name" {
				delete(g, "clone_from_ctid") // a template source must not be a dependency
				g["template"] = "local:vztmpl/x.tar.zst"
			}
			setPath(g, field, val)
		})
		if err := os.WriteFile(filepath.Join(dir, api.LXCFile), lxc, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(dir)
		if err != nil {
			return
		}
		if what := badChars(v); what != "" {
			t.Fatalf("%s = %q loaded although it holds %s", field, v, what)
		}
		switch field {
		case "storage_pool", "network_config.bridge", "network_config.name", "volumes.0.pool", "volumes.0.mount_point", "name", "template_snapshot_name", "node", "apparmor_profile", "template":
			if strings.ContainsAny(v, ",=;\"' \t") {
				t.Fatalf("%s = %q loaded with a property-string separator", field, v)
			}
		case "pct_options":
			if featureProblem(v) != "" || strings.Contains(v, ",") {
				t.Fatalf("pct_options %q loaded", v)
			}
		case "lxc_options":
			lines := LXCOptionLines(v)
			if len(lines) == 0 {
				t.Fatalf("lxc_options %q loaded but gives no config line", v)
			}
			for _, kv := range lines {
				if _, _, msg, warn := checkLXCOption(kv[0] + "=" + kv[1]); msg != "" && !warn {
					t.Fatalf("lxc_options %q loaded, line %q = %q: %s", v, kv[0], kv[1], msg)
				}
			}
		}
		_ = cfg
	})
}
