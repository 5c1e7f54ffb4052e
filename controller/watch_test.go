package controller_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func (l *lab) waitMemory(id api.ID, want string) {
	l.t.Helper()
	waitFor(l.t, fmt.Sprintf("%d's memory %s on the host", id, want), func() (bool, string) {
		g, _ := l.guest(api.KindLXC, id)
		if g == nil {
			return false, "absent"
		}
		return g.Config["memory"] == want, g.Config["memory"]
	})
}

func withMemory(t *testing.T, data []byte, id string, mb int) []byte {
	t.Helper()
	out, err := sjson.SetBytes(data, "lxc_configs."+id+".memory_mb", mb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The config folder deleted and made again (a redeploy, a remount): the
// watch comes back and an edit made afterwards reaches the host.
func TestWatch_folderDeletedAndMadeAgain(t *testing.T) {
	l := newLab(t)
	r := l.start(nil, nil)
	r.waitReady()
	r.idle()
	files := map[string][]byte{}
	for _, f := range []string{api.LXCFile, api.VMFile} {
		files[f] = l.read(f)
	}
	if err := os.RemoveAll(l.cfgDir); err != nil {
		t.Fatal(err)
	}
	reads := len(r.logLines("Config read"))
	waitFor(t, "a reload after the folder went", func() (bool, string) {
		return len(r.logLines("Config read")) > reads, "none"
	})
	if err := os.Mkdir(l.cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, data := range files {
		l.write(f, data)
	}
	r.idle()
	l.write(api.LXCFile, withMemory(t, files[api.LXCFile], "941", 3072))
	l.waitMemory(941, "3072")
}

// Kubernetes mounts a ConfigMap as symlinks through "..data", which an
// update swaps to a new folder in one rename.
func TestWatch_configMapDataSwap(t *testing.T) {
	l := newLab(t)
	// Lay the folder out as the kubelet does.
	orig := map[string][]byte{}
	for _, f := range []string{api.LXCFile, api.VMFile} {
		orig[f] = l.read(f)
	}
	v1 := filepath.Join(l.cfgDir, "..2026_12_01_v1")
	if err := os.Mkdir(v1, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, data := range orig {
		if err := os.WriteFile(filepath.Join(v1, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(l.file(f))
		if err := os.Symlink(filepath.Join("..data", f), l.file(f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(v1), filepath.Join(l.cfgDir, "..data")); err != nil {
		t.Fatal(err)
	}
	r := l.start(nil, nil)
	r.waitReady()
	r.idle()
	v2 := filepath.Join(l.cfgDir, "..2026_12_01_v2")
	if err := os.Mkdir(v2, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, data := range orig {
		if f == api.LXCFile {
			data = withMemory(t, data, "941", 5120)
		}
		if err := os.WriteFile(filepath.Join(v2, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(l.cfgDir, "..data_tmp")
	if err := os.Symlink(filepath.Base(v2), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(l.cfgDir, "..data")); err != nil {
		t.Fatal(err)
	}
	l.waitMemory(941, "5120")
}

// A config file that is a symlink to a file elsewhere: editing the target
// (as an editor does, new file and rename) reaches the host.
func TestWatch_symlinkedFileTargetEdited(t *testing.T) {
	l := newLab(t)
	elsewhere := t.TempDir()
	data := l.read(api.LXCFile)
	target := filepath.Join(elsewhere, "containers.json")
	if err := os.WriteFile(target, data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(l.file(api.LXCFile))
	if err := os.Symlink(target, l.file(api.LXCFile)); err != nil {
		t.Fatal(err)
	}
	r := l.start(nil, nil)
	r.waitReady()
	r.idle()
	tmp := target + ".swp"
	if err := os.WriteFile(tmp, withMemory(t, data, "941", 6144), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	l.waitMemory(941, "6144")
}
