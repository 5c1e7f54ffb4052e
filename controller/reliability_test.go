package controller_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
)

// TestController_badCorpusKeepsLastValidState feeds every broken config of
// testdata/bad to a running controller: it stays up, reports the config
// invalid, and the host does not change.
func TestController_badCorpusKeepsLastValidState(t *testing.T) {
	if testing.Short() {
		// 15 s of debounced reloads, and every mutant of the controller
		// pays it; TestController_invalidConfig keeps a rejected reload
		// covered under -short.
		t.Skip("slow end-to-end run")
	}
	dirs, _ := filepath.Glob("../testdata/bad/*")
	if len(dirs) < 25 {
		t.Fatalf("found %d bad configs, want at least 25", len(dirs))
	}
	l := newLab(t)
	// Both files of a case are written well within one debounce, so the
	// controller never sees half a case.
	r := l.start(func(o *controller.Options) { o.Debounce = 300 * time.Millisecond }, nil)
	r.waitReady()
	r.idle()
	before := l.hostState()
	good := map[string][]byte{api.LXCFile: l.read(api.LXCFile), api.VMFile: l.read(api.VMFile)}
	for _, dir := range dirs {
		errs := r.metric("phoenix_config_reloads_total", map[string]string{"result": "error"})
		for _, f := range []string{api.LXCFile, api.VMFile} {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			l.write(f, data)
		}
		waitFor(t, filepath.Base(dir)+" rejected", func() (bool, string) {
			return r.metric("phoenix_config_reloads_total", map[string]string{"result": "error"}) > errs, ""
		})
		if v := r.metric("phoenix_config_valid", nil); v != 0 {
			t.Errorf("%s: phoenix_config_valid = %v, want 0", filepath.Base(dir), v)
		}
		if code, _ := r.get("/healthz"); code != 200 {
			t.Fatalf("%s: controller unhealthy (%d)", filepath.Base(dir), code)
		}
	}
	r.idle()
	if after := l.hostState(); !equalMaps(before, after) {
		t.Error("broken configs changed the host")
	}
	for f, data := range good {
		l.write(f, data)
	}
	waitFor(t, "phoenix_config_valid 1", func() (bool, string) {
		return r.metric("phoenix_config_valid", nil) == 1, ""
	})
	r.idle()
	if after := l.hostState(); !equalMaps(before, after) {
		t.Error("restoring the config changed the host")
	}
	t.Logf("%d broken configs fed to a running controller; host unchanged", len(dirs))
}

// TestController_readyDespiteInjectedFaults runs the controller against a
// host where 30% of operations fail: retries with backoff bring every guest
// to Ready, no guest is created twice, and a Ready guest is left alone.
func TestController_readyDespiteInjectedFaults(t *testing.T) {
	if testing.Short() {
		// TestController_failingGuestRetried covers retries under -short.
		t.Skip("slow end-to-end run")
	}
	l := newLab(t)
	faulty, err := sim.New(sim.Options{Dir: filepath.Join(l.stateDir, "sim"), FailRate: 0.3, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := l.start(func(o *controller.Options) {
		o.RetryBaseDelay = 20 * time.Millisecond
		o.RetryMaxDelay = 500 * time.Millisecond
	}, faulty)
	waitFor(t, "every guest Ready despite faults", func() (bool, string) { return l.allReady(exampleIDs) })
	elapsed := time.Since(start)
	r.idle()
	retries := r.metric("workqueue_retries_total", map[string]string{"name": "guests"})
	if retries == 0 {
		t.Error("no retries recorded although operations failed")
	}
	ops := simOps(t, l)
	created := map[string]int{}
	for _, op := range ops {
		switch op[0] {
		case "create", "clone":
			created[op[2]]++
		}
	}
	for id, n := range created {
		if n != 1 {
			t.Errorf("guest %s was defined %d times", id, n)
		}
	}
	if len(created) != len(exampleIDs) {
		t.Errorf("%d guests defined, want %d", len(created), len(exampleIDs))
	}
	// Once everything is Ready nothing runs again.
	n := len(ops)
	time.Sleep(300 * time.Millisecond)
	if more := simOps(t, l)[n:]; len(more) > 0 {
		t.Errorf("Ready guests were touched again: %v", more)
	}
	failed := int(r.metric("phoenix_reconcile_total", map[string]string{"result": "error"}))
	t.Logf("fail rate 0.3: every guest Ready after %s, %v queue retries, %d failed reconciles", elapsed.Round(time.Millisecond), retries, failed)
}

// simOps returns the sim's ops.log as [op, kind, id] triples.
func simOps(t *testing.T, l *lab) [][3]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.stateDir, "sim", "ops.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][3]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 {
			out = append(out, [3]string{f[1], f[2], f[3]})
		}
	}
	return out
}
