package desired

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func copyLab(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, n := range []string{api.HypervisorFile, api.LXCFile, api.VMFile} {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, n), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Loader.Load gives what Load gives, load after load, while files change
// under it: guests edited, made invalid, fixed again, vm_defaults changed.
func TestLoader_sameAsLoad(t *testing.T) {
	dir := copyLab(t, "../../config/examples/lab")
	cache := NewLoader()
	edit := func(file, old, new string) {
		t.Helper()
		p := filepath.Join(dir, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(old)) {
			t.Fatalf("%s has no %q", file, old)
		}
		if err := os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	same := func(step string) {
		t.Helper()
		want, wantErr := Load(dir)
		got, gotErr := cache.Load(dir)
		if !reflect.DeepEqual(wantErr, gotErr) {
			t.Fatalf("%s: errors differ:\n got %v\nwant %v", step, gotErr, wantErr)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%s: configs differ", step)
		}
	}
	same("first load")
	same("unchanged")
	if h, m := cache.Stats(); m != 0 || h == 0 {
		t.Errorf("unchanged reload: %d hits, %d misses; want all hits", h, m)
	}
	edit(api.LXCFile, `"memory_mb": `, `"memory_mb": 1`)
	same("memory edited")
	if _, m := cache.Stats(); m != 1 {
		t.Errorf("one guest edited: %d misses, want 1", m)
	}
	edit(api.LXCFile, `"cores": `, `"cores": "x", "c0res": `)
	same("invalid guest")
	same("invalid again")
	edit(api.LXCFile, `"cores": "x", "c0res": `, `"cores": `)
	same("fixed")
	edit(api.VMFile, `"vm_defaults": {`, `"vm_defaults": {"swap_mb": 64, `)
	same("vm_defaults changed")
	edit(api.VMFile, `"vm_defaults": {"swap_mb": 64, `, `"vm_defaults": {"swap_mb": "bad", `)
	same("vm_defaults invalid")
	same("vm_defaults invalid, again")
	edit(api.VMFile, `"vm_defaults": {"swap_mb": "bad", `, `"vm_defaults": {`)
	same("vm_defaults fixed")
	same("unchanged again")
	if h, m := cache.Stats(); m != 0 || h == 0 {
		t.Errorf("unchanged reload: %d hits, %d misses; want all hits", h, m)
	}
	lxc, _ := os.ReadFile(filepath.Join(dir, api.LXCFile))
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), lxc[:len(lxc)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	same("LXC file cut in half")
	same("LXC file cut in half, again")
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), lxc, 0o600); err != nil {
		t.Fatal(err)
	}
	same("LXC file whole again")
	// A guest ID used in both files: a problem of the pair, not of either
	// file, found again when only one file changes.
	edit(api.VMFile, `"vmid": `, `"vmid": 1`)
	same("VM ID edited")
	data, _ := os.ReadFile(filepath.Join(dir, api.VMFile))
	var doc struct {
		VMs []struct {
			VMID int `json:"vmid"`
		} `json:"vms"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	taken := strconv.Itoa(doc.VMs[0].VMID)
	edit(api.LXCFile, `"lxc_configs": {`, `"lxc_configs": {"`+taken+`": {"template": "t"},`)
	same("ID in both files")
	same("ID in both files, again")
	edit(api.LXCFile, `"lxc_configs": {"`+taken+`": {"template": "t"},`, `"lxc_configs": {`)
	same("ID in one file again")
}
