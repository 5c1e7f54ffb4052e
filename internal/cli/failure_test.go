package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyScripts copies the example scripts into a temp folder.
func copyScripts(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "scripts")
	if out, err := exec.Command("cp", "-a", "../../config/examples/scripts", dst).CombinedOutput(); err != nil {
		t.Fatalf("copy scripts: %v: %s", err, out)
	}
	return dst
}

// A missing script is found by the preflight, before any guest is
// touched (exit 2), not after the guests before it were made.
func TestCreate_missingScriptRefusedBeforeAnyChange(t *testing.T) {
	h := newHarness(t, exampleLab)
	scripts := copyScripts(t)
	h.extra = []string{"--scripts-dir", scripts}
	os.Remove(filepath.Join(scripts, "features", "vllm.sh"))
	code, _, stderr := h.run("create", "941", "952")
	if code != 2 || !strings.Contains(stderr, "lxc 920: features script \"vllm\"") {
		t.Fatalf("create with a missing feature script: exit %d, want 2 naming 920's vllm\n%s", code, stderr)
	}
	if ops := h.ops(); len(ops) != 0 {
		t.Errorf("the preflight let the host change: %v", ops)
	}
}

func TestCreate_failedStepCancelsDependentsAndRerunFinishes(t *testing.T) {
	p := newPVEHarness(t, exampleLab)
	h := p.harness
	// 920's chain needs the vllm feature; make it fail in the guest.
	t.Setenv("FAKEPVE_FAIL_EXEC", "features-vllm")
	code, doc, stderr := h.runJSON("create", "941", "952")
	if code != 1 || doc.OK {
		t.Fatalf("create with a failing feature script: exit %d, ok %v; want exit 1\n%s", code, doc.OK, stderr)
	}
	got := actionsByID(doc)
	if a := got["920"]; a.Result != "failed" || !strings.Contains(a.Error, "step features") || !strings.Contains(a.Error, "vllm") {
		t.Errorf("920 = %+v, want failed in step features naming the vllm script", a)
	}
	for _, id := range []string{"921", "941"} {
		if got[id].Result != "cancelled" {
			t.Errorf("%s = %s, want cancelled (it needs 920)", id, got[id].Result)
		}
	}
	for _, id := range []string{"900", "902", "953", "952"} {
		if got[id].Result != "ok" {
			t.Errorf("%s = %s, want ok (independent of 920)", id, got[id].Result)
		}
	}
	if !strings.Contains(stderr, "920 failed") {
		t.Errorf("stderr does not name the failure: %s", stderr)
	}
	if st := h.phase(t, "920"); st != "Failed" {
		t.Errorf("920 phase = %s, want Failed", st)
	}

	t.Setenv("FAKEPVE_FAIL_EXEC", "")
	code, doc, stderr = h.runJSON("create", "941", "952")
	if code != 0 || !doc.OK {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	got = actionsByID(doc)
	if got["920"].Reason != "missing-dependency" || got["920"].Action != "create" {
		t.Errorf("rerun 920 = %+v, want it finished", got["920"])
	}
	if got["900"].Action != "skip" {
		t.Errorf("rerun 900 = %+v, want skip: it was created the first time", got["900"])
	}
}

func TestCreate_injectedFaultsFailCleanlyAndRerunFinishes(t *testing.T) {
	h := newHarness(t, exampleLab)
	h.extra = []string{"--sim-fail-rate", "0.3", "--sim-seed", "7"}
	code, doc, _ := h.runJSON("create", "956")
	if code != 1 {
		t.Fatalf("create under a 30%% fault rate: exit %d, want 1 (seed 7 fails early)", code)
	}
	failed := 0
	for _, a := range doc.Actions {
		if a.Result == "failed" {
			failed++
			if !strings.Contains(a.Error, "step ") || !strings.Contains(a.Error, "injected failure") {
				t.Errorf("%s failed without naming the step: %s", a.ID, a.Error)
			}
		}
	}
	if failed == 0 {
		t.Fatal("no failed action although the run failed")
	}
	h.extra = nil
	for i := 0; i < 3; i++ {
		if code, _, _ = h.run("create", "956"); code == 0 {
			break
		}
	}
	if code != 0 {
		t.Fatal("reruns without faults did not finish the job")
	}
	if h.state(t, "956") != "running" {
		t.Error("956 is not running after the rerun")
	}
}

func (h *harness) phase(t *testing.T, id string) string {
	t.Helper()
	_, out, _ := h.run("status", id, "-o", "json")
	i := strings.Index(out, `"phase": "`)
	if i < 0 {
		t.Fatalf("no phase in %s", out)
	}
	rest := out[i+len(`"phase": "`):]
	return rest[:strings.IndexByte(rest, '"')]
}
