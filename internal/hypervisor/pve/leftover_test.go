package pve

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// killMidway runs the fake tool with args, hanging once the new guest's
// config holds its lock, and kills it there: what a phoenix killed during
// pct create or qm clone leaves on the host.
func (e *env) killMidway(t *testing.T, confPath string, tool string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.bin, tool), args...)
	cmd.Env = append(os.Environ(), "FAKEPVE_HANG="+args[0])
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if data, _ := os.ReadFile(confPath); strings.Contains(string(data), "lock:") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s %v never locked %s", tool, args, confPath)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	e.newCalls(t)
}

// plant writes an intent record for guest id as some other process
// would: mod changes this process's own record.
func plant(t *testing.T, x *lock.Intents, dir string, kind api.Kind, id api.ID, op, lk string, mod func(*lock.Intent)) {
	t.Helper()
	p, err := x.Begin(kind, id, op, lk)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, id.String())
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p.Done()
	var rec lock.Intent
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	// By default the command it started is gone too.
	rec.PGID = deadPID(t)
	mod(&rec)
	data, _ = json.Marshal(rec)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no `true` to run:", err)
	}
	return cmd.Process.Pid
}

// livingGroup is the process group of a process that runs until the test
// ends: a pct that goes on after the phoenix that started it was killed.
func livingGroup(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skip("no `sleep` to run:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

func TestHost_leftoverCreateLock(t *testing.T) {
	dead := deadPID(t)
	living := livingGroup(t)
	for _, tt := range []struct {
		name string
		// rec changes the planted record; nil plants none.
		rec     func(*lock.Intent)
		cleared bool
	}{
		{"process gone", func(r *lock.Intent) { r.PID = dead }, true},
		{"pid reused by another process", func(r *lock.Intent) { r.Start++ }, true},
		{"process alive", func(r *lock.Intent) {}, false},
		{"phoenix gone, its pct still running", func(r *lock.Intent) { r.PID, r.PGID = dead, living }, false},
		{"phoenix gone before its pct started", func(r *lock.Intent) { r.PID, r.PGID = dead, 0 }, false},
		{"no record", nil, false},
		{"record of another node", func(r *lock.Intent) { r.PID, r.Host = dead, "pve2" }, false},
		{"record of another lock", func(r *lock.Intent) { r.PID, r.Lock = dead, "backup" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			x, err := lock.NewIntents(dir)
			if err != nil {
				t.Fatal(err)
			}
			var notices []string
			e := newEnv(t, func(o *Options) {
				o.Intents = x
				o.Notice = func(m string) { notices = append(notices, m) }
			})
			e.killMidway(t, filepath.Join(e.conf, "101.conf"), "pct", "create", "101", "local:vztmpl/debian-12.tar.zst", "--storage", "local-zfs")
			if tt.rec != nil {
				plant(t, x, dir, api.KindLXC, 101, "create", "create", tt.rec)
			}
			ctx := context.Background()
			g, err := e.h.Get(ctx, api.KindLXC, 101)
			calls := e.newCalls(t)
			if !tt.cleared {
				if err != nil || g.Config["lock"] != "create" {
					t.Fatalf("Get = %v, %v; want the locked guest, left alone", g, err)
				}
				err := e.h.Start(ctx, api.KindLXC, 101)
				if !errors.Is(err, hypervisor.ErrLocked) || !strings.Contains(err.Error(), "`pct unlock 101`") {
					t.Errorf("Start of a guest locked by someone else = %v; want ErrLocked with the unlock command", err)
				}
				if slices.ContainsFunc(e.newCalls(t), func(c []string) bool { return slices.Contains(c, "unlock") || slices.Contains(c, "destroy") }) || len(notices) > 0 {
					t.Errorf("a lock that is not phoenix's own of a dead process was cleared: %v", notices)
				}
				if tt.rec != nil {
					if _, err := os.Stat(filepath.Join(dir, "101")); err != nil {
						t.Errorf("record removed: %v", err)
					}
				}
				return
			}
			if !errors.Is(err, hypervisor.ErrNotFound) {
				t.Fatalf("Get of a guest half-made by a dead phoenix = %v, %v; want not found (cleared and destroyed)", g, err)
			}
			want := [][]string{{"pct", "unlock", "101"}, {"pct", "destroy", "101", "--purge", "--destroy-unreferenced-disks", "1"}}
			if !slices.EqualFunc(calls, want, slices.Equal) {
				t.Errorf("calls = %q; want %q", calls, want)
			}
			if len(notices) != 2 || !strings.Contains(notices[0], "`pct unlock 101`") {
				t.Errorf("notices = %q", notices)
			}
			if _, err := os.Stat(filepath.Join(dir, "101")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("record kept after the lock was cleared: %v", err)
			}
			// The next create finishes, and leaves no record behind.
			if err := e.h.Create(ctx, api.KindLXC, 101, hypervisor.CreateSpec{Source: "local:vztmpl/debian-12.tar.zst", Storage: "local-zfs", DiskGB: 8}); err != nil {
				t.Fatal(err)
			}
			g, err = e.h.Get(ctx, api.KindLXC, 101)
			if err != nil || g.Config["lock"] != "" || g.DiskGB != 8 {
				t.Errorf("after the create: %+v, %v", g, err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("records left after a finished create: %v", ents)
			}
		})
	}
}

// A clone killed midway leaves the new guest locked, and for pct the
// source too ("disk"): both are phoenix's, and the next clone clears both
// and finishes.
func TestHost_leftoverCloneLocks(t *testing.T) {
	dead := deadPID(t)
	for _, kind := range []api.Kind{api.KindLXC, api.KindVM} {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			x, err := lock.NewIntents(dir)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, func(o *Options) { o.Intents = x })
			ctx := context.Background()
			tool, conf := "pct", e.conf
			if kind == api.KindVM {
				tool, conf = "qm", filepath.Join(e.opts.PVEEtc, "qemu-server")
				e.fake(t, "qm", "create", "900", "--scsi0", "local-zfs:4", "--memory", "1024")
			} else {
				e.fake(t, "pct", "create", "900", "local:vztmpl/debian-12.tar.zst", "--storage", "local-zfs")
			}
			e.fake(t, tool, "template", "900")
			e.killMidway(t, filepath.Join(conf, "901.conf"), tool, "clone", "900", "901")
			lk := cloneLock(kind)
			plant(t, x, dir, kind, 901, "clone", lk, func(r *lock.Intent) { r.PID = dead })
			if kind == api.KindLXC {
				plant(t, x, dir, kind, 900, "clone", lockDisk, func(r *lock.Intent) { r.PID = dead })
			}
			if g, err := e.h.Get(ctx, kind, 901); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Fatalf("Get of the half-made clone = %v, %v; want not found", g, err)
			}
			if err := e.h.Clone(ctx, kind, 900, 901, hypervisor.CloneSpec{Name: "c901"}); err != nil {
				t.Fatalf("clone after the killed one: %v", err)
			}
			for _, id := range []api.ID{900, 901} {
				g, err := e.h.Get(ctx, kind, id)
				if err != nil || g.Config["lock"] != "" {
					t.Errorf("%s %s after the clone: lock %q, %v", kind, id, g.Config["lock"], err)
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("records left: %v", ents)
			}
		})
	}
}

// Without intent records (a read-only run) a lock is never touched.
func TestHost_leftoverReadOnly(t *testing.T) {
	e := newEnv(t)
	e.killMidway(t, filepath.Join(e.conf, "101.conf"), "pct", "create", "101", "local:vztmpl/debian-12.tar.zst")
	g, err := e.h.Get(context.Background(), api.KindLXC, 101)
	if err != nil || g.Config["lock"] != "create" {
		t.Fatalf("Get = %+v, %v", g, err)
	}
	if calls := e.newCalls(t); slices.ContainsFunc(calls, func(c []string) bool { return slices.Contains(c, "unlock") }) {
		t.Errorf("read-only Get unlocked: %q", calls)
	}
}
