package api

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func copyLab(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, n := range []string{HypervisorFile, LXCFile, VMFile} {
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

// LoadCached gives what Load gives, load after load, while files change
// under it: guests edited, made invalid, fixed again, vm_defaults changed.
func TestLoadCached_sameAsLoad(t *testing.T) {
	dir := copyLab(t, "../config/examples/lab")
	cache := NewCache()
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
		got, gotErr := LoadCached(dir, cache)
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
	edit(LXCFile, `"memory_mb": `, `"memory_mb": 1`)
	same("memory edited")
	if _, m := cache.Stats(); m != 1 {
		t.Errorf("one guest edited: %d misses, want 1", m)
	}
	edit(LXCFile, `"cores": `, `"cores": "x", "c0res": `)
	same("invalid guest")
	same("invalid again")
	edit(LXCFile, `"cores": "x", "c0res": `, `"cores": `)
	same("fixed")
	edit(VMFile, `"vm_defaults": {`, `"vm_defaults": {"swap_mb": 64, `)
	same("vm_defaults changed")
	edit(VMFile, `"vm_defaults": {"swap_mb": 64, `, `"vm_defaults": {"swap_mb": "bad", `)
	same("vm_defaults invalid")
}
