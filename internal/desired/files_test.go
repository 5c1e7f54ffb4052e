package desired

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// where is a problem's guest and field, what a user looks for first.
func where(ps []api.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Guest+" "+p.Field)
	}
	sort.Strings(out)
	return out
}

// An error in vm_defaults is reported once, on vm_defaults: not again on
// every VM that inherits it (as a Go decoding error, or as a second guest
// with the same MAC address), while a VM's own error is still reported.
func TestLoad_vmDefaultsErrorReportedOnce(t *testing.T) {
	lxc, vm := smallFiles(t)
	tests := []struct {
		what  string
		edits [][2]string // old, new in the VM file
		want  []string
	}{
		{"fraction", [][2]string{{`"memory_mb": 2048`, `"memory_mb": 2048.0`}}, []string{"vm_defaults memory_mb"}},
		{"past 64 bits", [][2]string{{`"memory_mb": 2048`, `"memory_mb": 99999999999999999999`}}, []string{"vm_defaults memory_mb"}},
		{"below the minimum, with a MAC every VM inherits", [][2]string{{`"memory_mb": 2048`, `"memory_mb": 0, "mac_address": "52:54:00:00:00:99"`}}, []string{"vm_defaults memory_mb"}},
		{"case variant of a key", [][2]string{{`"cores": 2`, `"Cores": 2`}}, []string{"vm_defaults Cores"}},
		{"not an object", [][2]string{{`"vm_defaults": {`, `"vm_defaults": 5, "old_defaults": {`}}, []string{"vm_defaults "}},
		{"and an error of 8001's own", [][2]string{{`"memory_mb": 2048`, `"memory_mb": 0`}, {`"name": "worker",`, `"name": "worker", "swap_mb": 1.5,`}}, []string{"8001 swap_mb", "vm_defaults memory_mb"}},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			edited := vm
			for _, e := range tt.edits {
				if !bytes.Contains(edited, []byte(e[0])) {
					t.Fatalf("testdata/small's VM file has no %s", e[0])
				}
				edited = bytes.Replace(edited, []byte(e[0]), []byte(e[1]), 1)
			}
			dir := caseDir(t, lxc, vm, hostile{file: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, api.VMFile), string(edited))
			}})
			_, err := Load(dir)
			var inv *api.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Load = %v, want an invalid configuration", err)
			}
			if got := where(inv.Problems); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems at %q, want %q:\n%v", got, tt.want, err)
			}
		})
	}
}

// A typo in vm_defaults is a warning, and the VMs still load with it.
func TestLoad_vmDefaultsWarningKeepsVMs(t *testing.T) {
	lxc, vm := smallFiles(t)
	edited := bytes.Replace(vm, []byte(`"cores": 2`), []byte(`"cores": 2, "croes": 4`), 1)
	dir := caseDir(t, lxc, vm, hostile{file: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, api.VMFile), string(edited))
	}})
	c := mustLoad(t, dir)
	if got := where(c.Warnings); !reflect.DeepEqual(got, []string{"vm_defaults croes"}) {
		t.Errorf("warnings at %q, want the one on vm_defaults croes", got)
	}
	if g := c.Guest(8001); g == nil || g.Spec.Cores != 2 || g.Hash == "invalid" {
		t.Errorf("8001 = %+v, want it loaded with vm_defaults' 2 cores", g)
	}
}

// An integer that does not fit in 64 bits is still an integer to the
// schema; it is refused naming the guest and the field, wherever it is.
func TestLoad_integerOutOfRange(t *testing.T) {
	const huge = "99999999999999999999"
	tests := []hostile{
		{what: "boot_order one past it", want: refused, field: "boot_order", lxc: setLXC("boot_order", json.Number("9223372036854775808"))},
		{what: "memory_mb far past it", want: refused, field: "memory_mb", lxc: setLXC("memory_mb", json.Number(huge))},
		{what: "a VM's own disk size", want: refused, field: "disk_size_gb", vm: setVM("disk_size_gb", json.Number(huge))},
		{what: "an id_maps entry's size", want: refused, field: "id_maps[0].size", lxc: setLXC("id_maps", []any{map[string]any{"type": "uid", "container_id": 0, "host_id": 100000, "size": json.Number(huge)}})},
	}
	runSmallCases(t, tests)
}

// A key written with a JSON escape is the same key: the guest loads with
// its value (the fast decoder leaves such a guest to the schema check and
// encoding/json).
func TestLoad_escapedKey(t *testing.T) {
	lxc, vm := smallFiles(t)
	dir := caseDir(t, lxc, vm, hostile{raw: func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"memory_mb": 512`), []byte(`"memory_\u006db": 640`), 1)
	}})
	c := mustLoad(t, dir)
	if g := c.Guest(953); g == nil || g.Spec.MemoryMB != 640 || g.Hash == "" || g.Hash == "invalid" {
		t.Errorf("953 = %+v, want it loaded with 640 MB", g)
	}
}

// A Loader asked again after vm_defaults was fixed gives what Load gives,
// even when each VM overrides the field that was wrong, so that its
// effective object is the same as under the broken vm_defaults.
func TestLoader_vmDefaultsFixed(t *testing.T) {
	lxc, vm := smallFiles(t)
	dir := caseDir(t, lxc, vm, hostile{})
	vmPath := filepath.Join(dir, api.VMFile)
	// Every VM sets its own memory_mb; vm_defaults' own is then unused.
	// An unknown key that is not ASCII sends 8001 past the fast decoder.
	vm = bytes.ReplaceAll(vm, []byte(`"vmid": `), []byte(`"memory_mb": 4096, "vmid": `))
	vm = bytes.Replace(vm, []byte(`"name": "worker"`), []byte(`"name": "worker", "notiz_für_später": "x"`), 1)
	cache := NewLoader()
	for _, step := range []struct{ what, defaults string }{
		{"vm_defaults below the minimum", `"memory_mb": 0`},
		{"vm_defaults fixed", `"memory_mb": 1`},
		{"vm_defaults broken again", `"memory_mb": 0`},
	} {
		writeFile(t, vmPath, string(bytes.Replace(vm, []byte(`"memory_mb": 2048`), []byte(step.defaults), 1)))
		want, wantErr := Load(dir)
		got, gotErr := cache.Load(dir)
		if !reflect.DeepEqual(wantErr, gotErr) || !reflect.DeepEqual(want, got) {
			t.Fatalf("%s: Loader gives %v, %v; Load gives %v, %v", step.what, got, gotErr, want, wantErr)
		}
		if step.what == "vm_defaults fixed" && (got == nil || got.Guest(8001).Spec.MemoryMB != 4096 || got.Guest(8001).Spec.Cores != 2 || got.Guest(8001).Spec.Name != "worker") {
			t.Fatalf("%s: 8001 = %+v, want worker, 4096 MB and vm_defaults' 2 cores", step.what, got.Guest(8001))
		}
	}
}

// Loader.Stats counts, after one guest of one file changed, every other
// guest as a hit: the unchanged file's and the changed file's others.
func TestLoader_statsAfterOneEdit(t *testing.T) {
	lxc, vm := smallFiles(t)
	dir := caseDir(t, lxc, vm, hostile{})
	cache := NewLoader()
	c, err := cache.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	total := len(c.IDs)
	writeFile(t, filepath.Join(dir, api.LXCFile), strings.Replace(string(lxc), `"memory_mb": 512`, `"memory_mb": 640`, 1))
	if _, err := cache.Load(dir); err != nil {
		t.Fatal(err)
	}
	if h, m := cache.Stats(); h != total-1 || m != 1 {
		t.Errorf("one guest of %d edited: %d hits, %d misses; want %d and 1", total, h, m, total-1)
	}
}

// Members phoenix does not know are kept for the scripts, however short:
// a VM with the 26 one-letter keys, in a file without vm_defaults, loads
// with every one of them.
func TestLoad_shortUnknownKeysKept(t *testing.T) {
	lxc, vm := smallFiles(t)
	own := map[string]any{"vmid": 8002, "template_image": "noble.img", "storage_pool": "local-zfs"}
	for c := 'a'; c <= 'z'; c++ {
		own[string(c)] = 0
	}
	data, err := json.Marshal(map[string]any{"vms": []any{own}})
	if err != nil {
		t.Fatal(err)
	}
	dir := caseDir(t, lxc, vm, hostile{file: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, api.VMFile), string(data))
	}})
	g := mustLoad(t, dir).Guest(8002)
	if g == nil {
		t.Fatal("8002 not loaded")
	}
	want, _ := json.Marshal(own)
	if !bytes.Equal(g.Raw, want) {
		t.Errorf("8002's JSON = %s, want %s", g.Raw, want)
	}
}

// Reloading unchanged files checks no guest again, also when two guests
// are written alike (the per-guest cache knows guests by their bytes, and
// keeps one of the two).
func TestLoader_unchangedTwins(t *testing.T) {
	lxc, vm := smallFiles(t)
	twin := `{"name": "twin", "template": "local:vztmpl/debian-12.tar.zst", "memory_mb": 512, "cores": 1, "storage_pool": "local-lvm", "storage_size_gb": 8}`
	lxc = bytes.Replace(lxc, []byte(`"lxc_configs": {`), []byte(`"lxc_configs": {"960": `+twin+`, "961": `+twin+`,`), 1)
	dir := caseDir(t, lxc, vm, hostile{})
	cache := NewLoader()
	c, err := cache.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Guest(960) == nil || c.Guest(961) == nil {
		t.Fatal("the twins 960 and 961 did not load")
	}
	if _, err := cache.Load(dir); err != nil {
		t.Fatal(err)
	}
	if h, m := cache.Stats(); h != len(c.IDs) || m != 0 {
		t.Errorf("unchanged reload of %d guests: %d hits, %d misses; want all hits", len(c.IDs), h, m)
	}
}

// A value only the schema refuses (the fast decoder leaves it to the
// schema check) is reported naming the guest and the field, list entries
// by their index, and only once: the guest is not checked further, so its
// MAC address, also 900's, is not reported as well.
func TestLoad_schemaProblemNamesField(t *testing.T) {
	tests := []struct {
		what string
		edit func(map[string]any)
		want []string
	}{
		{"below the minimum", setLXC("memory_mb", 0), []string{"953 memory_mb"}},
		{"below the minimum, with 900's MAC", func(g map[string]any) {
			g["memory_mb"] = 0
			g["mac_address"] = "52:54:00:00:00:10"
		}, []string{"953 memory_mb"}},
		{"first list entry of the wrong type", setLXC("features", []any{5}), []string{"953 features[0]"}},
		{"tenth list entry of the wrong type", setLXC("features", []any{"a", "b", "c", "d", "e", "f", "g", "h", "i", 5}), []string{"953 features[9]"}},
	}
	lxc, vm := smallFiles(t)
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			_, err := Load(caseDir(t, lxc, vm, hostile{lxc: tt.edit}))
			var inv *api.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Load = %v, want an invalid configuration", err)
			}
			if got := where(inv.Problems); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems at %q, want %q:\n%v", got, tt.want, err)
			}
		})
	}
}

// A guest that is not a JSON object is refused naming it, in either file.
func TestLoad_guestNotAnObject(t *testing.T) {
	lxc, vm := smallFiles(t)
	tests := []struct {
		what      string
		lxc, vm   []byte
		wantGuest string
	}{
		{"container", bytes.Replace(lxc, []byte(`"lxc_configs": {`), []byte(`"lxc_configs": {"960": 5,`), 1), vm, "960"},
		{"VM", lxc, bytes.Replace(vm, []byte(`"vms": [`), []byte(`"vms": [5,`), 1), "vms[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			_, err := Load(caseDir(t, tt.lxc, tt.vm, hostile{}))
			var inv *api.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Load = %v, want an invalid configuration", err)
			}
			if got := where(inv.Problems); !reflect.DeepEqual(got, []string{tt.wantGuest + " "}) {
				t.Errorf("problems at %q, want one on guest %s:\n%v", got, tt.wantGuest, err)
			}
		})
	}
}
