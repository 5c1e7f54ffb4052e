package lock

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func TestProcStart_commandNameWithParens(t *testing.T) {
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	// Field 2 is the command name, which may hold ") " itself.
	stat := "4242 (evil) R 1 2 3) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n"
	if err := os.MkdirAll(filepath.Join(root, "4242"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "4242", "stat"), []byte(stat), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := procStart(4242)
	if err != nil || got != 987654 {
		t.Errorf("procStart = %d, %v; want 987654", got, err)
	}
}

func TestIntents(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	dir := t.TempDir()
	x, err := NewIntents(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := x.Begin(api.KindLXC, 101, "create", "create")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "101")
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record: %v, %v", fi, err)
	}
	rec, v, err := x.Check(api.KindLXC, 101, "create")
	if err != nil || v != Alive || rec.Op != "create" {
		t.Errorf("own record of this live process: %v %v %v", rec, v, err)
	}
	// The command's group, once it ran; a group with no process left.
	if err := p.Started(1 << 22); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		kind api.Kind
		lock string
	}{{api.KindVM, "create"}, {api.KindLXC, "backup"}} {
		if _, v, _ := x.Check(tt.kind, 101, tt.lock); v != OtherLock {
			t.Errorf("Check(%s, %s) = %v; want %v", tt.kind, tt.lock, v, OtherLock)
		}
	}
	if _, v, _ := x.Check(api.KindLXC, 102, "create"); v != NoRecord {
		t.Errorf("no record: %v", v)
	}

	// The same pid with another start time is another process.
	var r Intent
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	r.Start++
	other, _ := json.Marshal(r)
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := x.Check(api.KindLXC, 101, "create"); v != Dead {
		t.Errorf("reused pid: %v; want %v", v, Dead)
	}
	// Done leaves a record another process wrote meanwhile.
	p.Done()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("done removed a record that was not its own: %v", err)
	}
	p2, _ := x.Begin(api.KindLXC, 101, "create", "create")
	p2.Started(1 << 22)
	p2.Done()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("done kept its own record: %v", err)
	}

	// A record of another live process (here: pid 1, whose start time
	// is read) is not replaced: its lock stays its own.
	st1, err := procStart(1)
	if err == nil {
		other := Intent{PID: 1, Start: st1, Boot: bootID(), Host: "h", Op: "clone", Kind: api.KindLXC, Lock: "disk"}
		data, _ := json.Marshal(other)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p4, err := x.Begin(api.KindLXC, 101, "clone", "disk")
		if err != nil || p4 != nil {
			t.Errorf("Begin over a live process's record = %v, %v; want no record of its own", p4, err)
		}
		p4.Started(1 << 22)
		p4.Done()
		if got, _ := os.ReadFile(path); string(got) != string(data) {
			t.Errorf("the live process's record was changed: %s", got)
		}
		os.Remove(path)
	}

	// A symlink planted as the record is not followed when written.
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	p3, err := x.Begin(api.KindLXC, 101, "create", "create")
	if err != nil {
		t.Fatal(err)
	}
	p3.Done()
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// BenchmarkIntent is the cost phoenix adds to every pct/qm create and
// clone: the record written (fsync'd, so that it survives a crash of the
// machine, when a lock is most likely left), its process group added, and
// the record removed.
func BenchmarkIntent(b *testing.B) {
	x, err := NewIntents(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p, err := x.Begin(api.KindLXC, 101, "create", "create")
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Started(os.Getpid()); err != nil {
			b.Fatal(err)
		}
		p.Done()
	}
}
