package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pve/fakepvetest"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// killedCreate leaves what a phoenix killed during `pct create 900` leaves:
// the fake's create hangs once 900.conf holds "lock: create" and is killed
// there; rec, when not nil, changes the intent record of that phoenix
// (written as this process, then edited) before it is planted.
func (p *pveHarness) killedCreate(rec func(*lock.Intent)) {
	t := p.t
	t.Helper()
	cmd := exec.Command("pct", "create", "900", "local:vztmpl/debian-12.tar.zst", "--storage", "local-lvm")
	cmd.Env = append(os.Environ(), "FAKEPVE_HANG=create")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(fakepvetest.LXCConfDir(p.fakeState), "900.conf")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if data, _ := os.ReadFile(conf); strings.Contains(string(data), "lock: create") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake pct create never locked 900")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	p.calls()
	if rec == nil {
		return
	}
	dir := filepath.Join(p.stateDir, "locks")
	x, err := lock.NewIntents(dir)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := x.Begin(api.KindLXC, 900, "create", "create")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "900"))
	pending.Done()
	var r lock.Intent
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	rec(&r)
	data, _ = json.Marshal(r)
	if err := os.WriteFile(filepath.Join(dir, "900"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A guest left locked "create" by a phoenix that was killed is cleared and
// made again by the next create; a lock that is not provably phoenix's own
// of a dead process is refused with the command for the operator, and the
// guest is left as it is.
func TestPVE_leftoverCreateLock(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct {
		name    string
		rec     func(*lock.Intent)
		cleared bool
	}{
		{"phoenix killed", func(r *lock.Intent) { r.PID, r.PGID = gone.Process.Pid, gone.Process.Pid }, true},
		{"phoenix still running", func(r *lock.Intent) {}, false},
		{"no record", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPVEHarness(t, "../../testdata/small")
			p.killedCreate(tt.rec)
			code, stdout, stderr := p.run("create", "900", "--pve-lock-retries", "-1")
			stderr = stdout + stderr
			calls := strings.Join(p.calls(), "\n")
			conf, _ := os.ReadFile(filepath.Join(fakepvetest.LXCConfDir(p.fakeState), "900.conf"))
			t.Logf("phoenix create 900: exit %d\n%s", code, stderr)
			if !tt.cleared {
				if code != 1 || !strings.Contains(stderr, "`pct unlock 900`") {
					t.Errorf("exit %d; want 1 with the unlock command:\n%s", code, stderr)
				}
				if strings.Contains(calls, "unlock") || strings.Contains(calls, "destroy") || !strings.Contains(string(conf), "lock: create") {
					t.Errorf("a lock that may be someone else's was touched:\n%s\n%s", calls, conf)
				}
				return
			}
			if code != 0 {
				t.Fatalf("create after a killed create: exit %d\n%s", code, stderr)
			}
			for _, w := range []string{"pct unlock 900", "pct destroy 900 --purge --destroy-unreferenced-disks 1", "pct create 900"} {
				if !strings.Contains(calls, w) {
					t.Errorf("calls lack %q:\n%s", w, calls)
				}
			}
			if !strings.Contains(stderr, "cleared the create lock left by an interrupted phoenix create") {
				t.Errorf("the cleared lock is not reported:\n%s", stderr)
			}
			if strings.Contains(string(conf), "lock:") || !strings.Contains(string(conf), "rootfs:") {
				t.Errorf("900.conf after the create:\n%s", conf)
			}
			if ents, _ := os.ReadDir(filepath.Join(p.stateDir, "locks")); len(ents) != 1 || ents[0].Name() != "guest-900.lock" {
				t.Errorf("intent records left: %v", ents)
			}
		})
	}
}

// The whole story with a real phoenix process: killed with SIGKILL while
// its pct create hangs, the pct goes on (its own process group) and holds
// the lock rightly, so the next run refuses; once the pct is gone too, the
// next run clears the lock and makes the guest.
func TestPVE_killedPhoenixMidCreate(t *testing.T) {
	p := newPVEHarness(t, "../../testdata/small")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config-dir", p.cfgDir, "--state-dir", p.stateDir, "--backend", "sim"}, p.extra...)
	args = append(args, "create", "900")
	cmd := exec.Command(exe, "-test.run=^TestHelperCLI$")
	cmd.Env = append(os.Environ(), cliEnv+"="+strings.Join(args, "\x1f"), "FAKEPVE_HANG=create")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(p.stateDir, "locks", "900")
	var rec lock.Intent
	for deadline := time.Now().Add(60 * time.Second); rec.PGID == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("phoenix never recorded its pct create")
		}
		if data, err := os.ReadFile(record); err == nil {
			json.Unmarshal(data, &rec)
		}
	}
	conf := filepath.Join(fakepvetest.LXCConfDir(p.fakeState), "900.conf")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if data, _ := os.ReadFile(conf); strings.Contains(string(data), "lock: create") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake pct create never locked 900")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Cleanup(func() { syscall.Kill(-rec.PGID, syscall.SIGKILL) })
	p.calls()

	code, stdout, stderr := p.run("create", "900", "--pve-lock-retries", "-1")
	if code != 1 || !strings.Contains(stdout+stderr, "`pct unlock 900`") || strings.Contains(strings.Join(p.calls(), "\n"), "unlock") {
		t.Fatalf("while the killed phoenix's pct still runs: exit %d; want 1 with the unlock command and no unlock\n%s%s", code, stdout, stderr)
	}

	syscall.Kill(-rec.PGID, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-rec.PGID, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hung pct did not die")
		}
	}
	code, stdout, stderr = p.run("create", "900")
	if code != 0 || !strings.Contains(stderr, "cleared the create lock") {
		t.Fatalf("once the pct is gone too: exit %d; want 0 with the lock cleared\n%s%s", code, stdout, stderr)
	}
	if data, _ := os.ReadFile(conf); strings.Contains(string(data), "lock:") {
		t.Errorf("900.conf still locked:\n%s", data)
	}
}
