package sim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// A node opened read-only reads what a writer recorded, refuses every
// change, and creates nothing: not its folder, not a lock file.
func TestSim_readOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := newSim(t, Options{Dir: dir})
	if err := w.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "tpl", DiskGB: 8, Config: map[string]string{"hostname": "a"}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	os.Remove(filepath.Join(dir, lockName))
	before, _ := os.ReadDir(dir)

	r := newSim(t, Options{Dir: dir, ReadOnly: true})
	defer r.Close()
	if g, err := r.Get(ctx, api.KindLXC, 900); err != nil || g.Config["hostname"] != "a" {
		t.Fatalf("Get = %+v, %v", g, err)
	}
	if err := r.Start(ctx, api.KindLXC, 900); !errors.Is(err, errReadOnly) {
		t.Errorf("Start on a read-only node = %v; want errReadOnly", err)
	}
	if err := r.EnsureDir(ctx, "/srv/x", 0, 0); err == nil {
		t.Error("EnsureDir on a read-only node succeeded")
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("files %v; want %v", after, before)
	}

	missing := filepath.Join(t.TempDir(), "none")
	e := newSim(t, Options{Dir: missing, ReadOnly: true})
	defer e.Close()
	if _, err := e.Get(ctx, api.KindLXC, 900); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Get on an empty node = %v", err)
	}
	if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read-only node created its folder: %v", err)
	}
}
