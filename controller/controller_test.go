package controller_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/controller/statelock"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

func TestController_initialSync(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.PProf = true }, nil)
	r.waitReady()
	if ok, why := l.allReady(exampleIDs); !ok {
		t.Fatalf("after the first sync: %s", why)
	}
	if code, _ := r.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := r.get("/debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("/debug/pprof/cmdline with --pprof: %d", code)
	}
	if got := r.metric("phoenix_config_valid", nil); got != 1 {
		t.Errorf("phoenix_config_valid = %v, want 1", got)
	}
	if got := r.metric("phoenix_guests", map[string]string{"phase": "Ready"}); got != float64(len(exampleIDs)) {
		t.Errorf("phoenix_guests{phase=Ready} = %v, want %d", got, len(exampleIDs))
	}
	if got := r.metric("phoenix_reconcile_total", map[string]string{"result": "success"}); got < float64(len(exampleIDs)) {
		t.Errorf("phoenix_reconcile_total{result=success} = %v, want >= %d", got, len(exampleIDs))
	}
	if got := r.metric("phoenix_step_duration_seconds", map[string]string{"kind": "lxc", "step": "define"}); got == 0 {
		t.Errorf("phoenix_step_duration_seconds{kind=lxc,step=define} has no samples")
	}

	code, body := r.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{
		`phoenix_reconcile_total{kind="vm",result="error"} 0`,
		"phoenix_reconcile_duration_seconds_bucket", "phoenix_step_duration_seconds_bucket",
		`phoenix_guests{kind="lxc",phase="Orphaned"} 0`, "phoenix_config_valid 1",
		`phoenix_config_reloads_total{result="success"}`, "phoenix_converge_total 0",
		`workqueue_depth{name="guests"}`, `workqueue_adds_total{name="guests"}`,
		`workqueue_queue_duration_seconds_bucket{name="guests"`, `workqueue_work_duration_seconds_bucket{name="guests"`,
		`workqueue_unfinished_work_seconds{name="guests"}`, `workqueue_longest_running_processor_seconds{name="guests"}`,
		`workqueue_retries_total{name="guests"}`, "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// promtool's own lint: a subtest, so that without promtool the skip
	// shows by name and the checks above still count.
	t.Run("promtool", func(t *testing.T) {
		cmd := exec.Command(findTool(t, "promtool", "PROMTOOL"), "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

func TestController_editOneGuest(t *testing.T) {
	l := newLab(t)
	r := l.start(nil, nil)
	r.waitReady()
	r.idle()
	before := map[api.ID]time.Time{}
	for _, id := range exampleIDs {
		before[id] = *l.status(id).LastAppliedAt
	}
	total := r.metric("phoenix_reconcile_total", nil)
	reconciling := len(r.logLines("Reconciling guest"))

	data := l.read(api.LXCFile)
	edited, err := sjson.SetBytes(data, "lxc_configs.941.memory_mb", 12288)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l.write(api.LXCFile, edited)
	waitFor(t, "941's new memory on the host", func() (bool, string) {
		g, _ := l.guest(api.KindLXC, 941)
		return g != nil && g.Config["memory"] == "12288", fmt.Sprint(g.Config["memory"])
	})
	t.Logf("edit-to-reconcile latency: %s (host shows the new memory; debounce 50ms)", time.Since(start))
	waitFor(t, "one more reconcile", func() (bool, string) {
		got := r.metric("phoenix_reconcile_total", nil)
		return got >= total+1, fmt.Sprint(got)
	})
	r.idle()
	if got := r.metric("phoenix_reconcile_total", nil); got != total+1 {
		t.Errorf("phoenix_reconcile_total moved by %v, want exactly 1", got-total)
	}
	lines := r.logLines("Reconciling guest")[reconciling:]
	if len(lines) != 1 || lines[0]["guest"] != float64(941) {
		t.Errorf("reconciles after the edit: %v, want one of 941", lines)
	}
	for _, id := range exampleIDs {
		after := *l.status(id).LastAppliedAt
		if moved := !after.Equal(before[id]); moved != (id == 941) {
			t.Errorf("guest %s: lastAppliedAt moved = %v", id, moved)
		}
	}
	if st := l.status(941); st.Phase != api.PhaseReady || st.ObservedSpecHash == "" {
		t.Errorf("941 status after the edit: %+v", st)
	}
}

func TestController_convergeAnnotation(t *testing.T) {
	l := newLab(t)
	r := l.start(nil, nil)
	r.waitReady()
	r.idle()
	before := map[api.ID]time.Time{}
	for _, id := range exampleIDs {
		before[id] = *l.status(id).LastAppliedAt
	}
	token := "2026-11-25T20:00:00Z"
	data, err := sjson.SetBytes(l.read(api.LXCFile), `lxc_configs.941.annotations.converge\.phoenix\.io/requestedAt`, token)
	if err != nil {
		t.Fatal(err)
	}
	l.write(api.LXCFile, data)
	waitFor(t, "941's token recorded", func() (bool, string) {
		st := l.status(941)
		return st.LastHandledConvergeAt == token, st.LastHandledConvergeAt
	})
	for _, id := range chain941 {
		if st := l.status(id); !st.LastAppliedAt.After(before[id]) || st.Phase != api.PhaseReady {
			t.Errorf("chain member %s: phase %s, lastAppliedAt %s (before %s)", id, st.Phase, st.LastAppliedAt, before[id])
		}
	}
	for _, id := range []api.ID{902, 8000, 956} {
		if st := l.status(id); !st.LastAppliedAt.Equal(before[id]) {
			t.Errorf("guest %s outside the chain was applied", id)
		}
	}
	if got := r.metric("phoenix_converge_total", nil); got != 1 {
		t.Errorf("phoenix_converge_total = %v, want 1", got)
	}

	// A restart does not converge again: the token is handled.
	r.shutdown()
	r2 := l.start(nil, nil)
	r2.waitReady()
	r2.idle()
	if got := r2.metric("phoenix_converge_total", nil); got != 0 {
		t.Errorf("after a restart phoenix_converge_total = %v, want 0", got)
	}
}

func TestController_invalidConfig(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		edit    func(t *testing.T, data []byte) []byte
		problem string
	}{
		{"malformed JSON", api.LXCFile, func(t *testing.T, data []byte) []byte {
			return append(data[:len(data)/2:len(data)/2], "\n  oops"...)
		}, "malformed JSON"},
		{"cycle", api.LXCFile, func(t *testing.T, data []byte) []byte {
			out, err := sjson.SetBytes(data, "lxc_configs.900.dependencies", []string{"941"})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, "cycle: "},
		{"unknown dependency", api.VMFile, func(t *testing.T, data []byte) []byte {
			out, err := sjson.SetBytes(data, "vms.2.dependencies", []int{953, 777})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, "unknown guest 777"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t)
			r := l.start(nil, nil)
			r.waitReady()
			r.idle()
			host := l.hostState()
			errors0 := r.metric("phoenix_config_reloads_total", map[string]string{"result": "error"})
			reconciles := r.metric("phoenix_reconcile_total", nil)

			good := l.read(tt.file)
			l.write(tt.file, tt.edit(t, good))
			waitFor(t, "phoenix_config_valid 0", func() (bool, string) {
				return r.metric("phoenix_config_valid", nil) == 0, ""
			})
			if got := r.metric("phoenix_config_reloads_total", map[string]string{"result": "error"}); got <= errors0 {
				t.Errorf("phoenix_config_reloads_total{result=error} did not move")
			}
			if !strings.Contains(r.logs.String(), tt.problem) {
				t.Errorf("log does not name the problem %q", tt.problem)
			}
			for _, line := range strings.Split(r.logs.String(), "\n") {
				if !strings.Contains(line, tt.problem) {
					continue
				}
				if strings.Contains(line, `"guest":""`) || strings.Contains(line, `"field":""`) {
					t.Errorf("log line with empty location keys: %s", line)
				}
				if tt.problem != "malformed JSON" && !strings.Contains(line, `"guest":"`) {
					t.Errorf("log line does not name the guest: %s", line)
				}
			}
			r.idle()
			if after := l.hostState(); !equalMaps(host, after) {
				t.Errorf("the host changed while the config was invalid")
			}

			l.write(tt.file, good)
			waitFor(t, "phoenix_config_valid 1", func() (bool, string) {
				return r.metric("phoenix_config_valid", nil) == 1, ""
			})
			r.idle()
			if after := l.hostState(); !equalMaps(host, after) {
				t.Errorf("the host changed after the fix")
			}
			if got := r.metric("phoenix_reconcile_total", nil); got != reconciles {
				t.Errorf("%v reconciles ran; want none", got-reconciles)
			}
		})
	}
}

func equalMaps[K comparable](a, b map[K]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestController_removedGuest(t *testing.T) {
	l := newLab(t)
	r := l.start(nil, nil)
	r.waitReady()
	r.idle()
	data, err := sjson.DeleteBytes(l.read(api.LXCFile), "lxc_configs.956")
	if err != nil {
		t.Fatal(err)
	}
	l.write(api.LXCFile, data)
	waitFor(t, "956 Orphaned", func() (bool, string) {
		st := l.status(956)
		return st.Phase == api.PhaseOrphaned, string(st.Phase)
	})
	if _, ok := l.guest(api.KindLXC, 956); !ok {
		t.Fatal("an orphan was deleted without --prune")
	}
	waitFor(t, "phoenix_guests{lxc,Orphaned} 1", func() (bool, string) {
		got := r.metric("phoenix_guests", map[string]string{"kind": "lxc", "phase": "Orphaned"})
		return got == 1, fmt.Sprint(got)
	})
	if got := r.metric("phoenix_guests", nil); got != float64(len(exampleIDs)) {
		t.Errorf("phoenix_guests sums to %v, want %d", got, len(exampleIDs))
	}
	r.shutdown()

	// A restart with --prune finds the orphan in the status files.
	r2 := l.start(func(o *controller.Options) { o.Prune, o.PruneGrace = true, 0 }, nil)
	r2.waitReady()
	waitFor(t, "956 destroyed", func() (bool, string) {
		_, ok := l.guest(api.KindLXC, 956)
		return !ok, ""
	})
	ids, err := l.store.IDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id == 956 {
			t.Error("a pruned guest kept its status file")
		}
	}
	if ok, why := l.allReady([]api.ID{902, 953, 955, 950}); !ok {
		t.Errorf("956's dependencies after the prune: %s", why)
	}
}

func TestController_resyncRecreatesDeletedGuest(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.Resync = 100 * time.Millisecond }, nil)
	r.waitReady()
	ctx := context.Background()
	if err := l.host.Stop(ctx, api.KindLXC, 956); err != nil {
		t.Fatal(err)
	}
	if err := l.host.Destroy(ctx, api.KindLXC, 956); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "956 recreated", func() (bool, string) {
		g, ok := l.guest(api.KindLXC, 956)
		return ok && g.Running, ""
	})
	waitFor(t, "956 Ready", func() (bool, string) { return l.allReady([]api.ID{956}) })
}

func TestController_secondControllerRefuses(t *testing.T) {
	l := newLab(t)
	r := l.start(nil, nil)
	r.waitReady()
	second := l.start(nil, nil)
	select {
	case err := <-second.done:
		var held *statelock.HeldError
		if !errors.As(err, &held) || held.PID != os.Getpid() {
			t.Fatalf("second controller: %v, want a HeldError naming pid %d", err, os.Getpid())
		}
		if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("message does not name the pid: %v", err)
		}
		close(second.done)
	case <-time.After(30 * time.Second):
		t.Fatal("second controller did not refuse")
	}
	if code, _ := r.get("/readyz"); code != http.StatusOK {
		t.Errorf("first controller is no longer ready")
	}
}

func TestController_shutdownMidChainAndRestart(t *testing.T) {
	l := newLab(t)
	slow, err := sim.New(sim.Options{Dir: l.host.Dir(), Latency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	r := l.start(func(o *controller.Options) { o.ShutdownTimeout = 0 }, slow)
	waitFor(t, "work in flight", func() (bool, string) {
		if r.c.Addr() == "" {
			return false, "not listening"
		}
		for _, id := range exampleIDs {
			if l.status(id).Phase == api.PhaseProvisioning {
				return true, ""
			}
		}
		return false, "nothing Provisioning yet"
	})
	if code, _ := r.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the first sync: %d, want 503", code)
	}
	if err := r.shutdown(); err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	ready := 0
	for _, id := range exampleIDs {
		st := l.status(id)
		switch st.Phase {
		case api.PhaseProvisioning:
			t.Errorf("guest %s left Provisioning after shutdown", id)
		case api.PhaseFailed:
			if st.LastError == "" {
				t.Errorf("guest %s Failed without an error", id)
			}
		case api.PhaseReady:
			ready++
		}
	}
	if ready == len(exampleIDs) {
		t.Log("every guest finished before the cancel; the restart has nothing to do")
	}

	// The lock went with the process: a restart takes it and finishes.
	r2 := l.start(nil, nil)
	r2.waitReady()
	if ok, why := l.allReady(exampleIDs); !ok {
		t.Fatalf("after the restart: %s", why)
	}
}

// TestController_provisioningAfterCrash: a status left Provisioning by a
// killed process is reconciled at start-up.
func TestController_provisioningAfterCrash(t *testing.T) {
	l := newLab(t)
	r := l.start(nil, nil)
	r.waitReady()
	r.shutdown()
	if _, err := l.store.Update(941, api.KindLXC, func(s *api.Status) { s.Phase = api.PhaseProvisioning }); err != nil {
		t.Fatal(err)
	}
	r2 := l.start(nil, nil)
	r2.waitReady()
	if st := l.status(941); st.Phase != api.PhaseReady {
		t.Fatalf("941 after restart: %s", st.Phase)
	}
	if n := len(r2.logLines("Reconciling guest")); n != 1 {
		t.Errorf("%d reconciles did work at start-up; want 1 (941)", n)
	}
}

// TestController_sharedMissingDependency: many guests share 953 and 900;
// every one is created exactly once.
func TestController_sharedMissingDependency(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.Workers = 8 }, nil)
	r.waitReady()
	data, err := os.ReadFile(l.host.Dir() + "/ops.log")
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && (f[1] == "create" || f[1] == "clone") {
			created[f[3]]++
		}
	}
	runs := workflowRuns(t, r.logs.String())
	for _, id := range exampleIDs {
		if created[id.String()] != 1 {
			t.Errorf("guest %s created %d times", id, created[id.String()])
		}
		// The workflow itself, not only the create/clone: a worker that
		// waited for the guest's lock must see it done and skip it.
		if runs[id.String()] != 1 {
			t.Errorf("guest %s: create workflow ran %d times, want 1", id, runs[id.String()])
		}
	}
	if got := r.metric("phoenix_reconcile_total", map[string]string{"result": "error"}); got != 0 {
		t.Errorf("%v reconciles failed", got)
	}
}

// TestController_failingGuestRetried: a failure is recorded in the status
// and retried with backoff until the host lets it through.
func TestController_failingGuestRetried(t *testing.T) {
	l := newLab(t)
	// A failed health check is retried at once, not after the example's
	// 5 s: the backoff under test is the queue's.
	lxc, err := sjson.SetBytes(l.read(api.LXCFile), "lxc_configs.952.health_check.interval", 0)
	if err != nil {
		t.Fatal(err)
	}
	l.write(api.LXCFile, lxc)
	flaky, err := sim.New(sim.Options{Dir: l.host.Dir(), FailRate: 0.2, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flaky.Close() })
	r := l.start(func(o *controller.Options) {
		o.RetryBaseDelay = 10 * time.Millisecond
		o.RetryMaxDelay = 200 * time.Millisecond
	}, flaky)
	r.waitReady()
	waitFor(t, "every guest Ready despite failures", func() (bool, string) { return l.allReady(exampleIDs) })
	if got := r.metric("phoenix_reconcile_total", map[string]string{"result": "error"}); got == 0 {
		t.Fatal("no reconcile failed; the fault injection did not bite")
	}
	if got := r.metric("workqueue_retries_total", map[string]string{"name": "guests"}); got == 0 {
		t.Error("workqueue_retries_total = 0 after failures")
	}
	if !strings.Contains(r.logs.String(), "injected failure") {
		t.Error("the failure is not in the log")
	}
}

func TestRequestConverge_keepsTheRestOfTheFile(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   api.ID
		file string
		path string
	}{
		{"lxc", 941, api.LXCFile, `lxc_configs.941.annotations.converge\.phoenix\.io/requestedAt`},
		{"vm", 8002, api.VMFile, `vms.2.annotations.converge\.phoenix\.io/requestedAt`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t)
			if err := os.Chmod(l.file(tt.file), 0o604); err != nil {
				t.Fatal(err)
			}
			cfg, err := desired.Load(l.cfgDir)
			if err != nil {
				t.Fatal(err)
			}
			before := l.read(tt.file)
			token := time.Now().UTC().Format(time.RFC3339Nano)
			if err := controller.RequestConverge([]*api.Guest{cfg.Guest(tt.id)}, token); err != nil {
				t.Fatal(err)
			}
			after := l.read(tt.file)
			if got := gjson.GetBytes(after, tt.path).String(); got != token {
				t.Fatalf("annotation = %q, want %q", got, token)
			}
			assertOnlyInsertion(t, before, after, token)
			if fi, _ := os.Stat(l.file(tt.file)); fi.Mode().Perm() != 0o604 {
				t.Errorf("mode %v, want 0604", fi.Mode().Perm())
			}
			cfg2, err := desired.Load(l.cfgDir)
			if err != nil {
				t.Fatal(err)
			}
			if g := cfg2.Guest(tt.id); g.ConvergeToken() != token || g.Hash != cfg.Guest(tt.id).Hash {
				t.Errorf("reloaded: token %q, hash changed %v", g.ConvergeToken(), g.Hash != cfg.Guest(tt.id).Hash)
			}
		})
	}
}

// assertOnlyInsertion checks that after is before with one contiguous run
// of bytes inserted, and that the run holds the annotation.
func assertOnlyInsertion(t *testing.T, before, after []byte, token string) {
	t.Helper()
	p := 0
	for p < len(before) && before[p] == after[p] {
		p++
	}
	s := 0
	for s < len(before)-p && before[len(before)-1-s] == after[len(after)-1-s] {
		s++
	}
	if p+s != len(before) {
		t.Fatalf("more than one place changed: common prefix %d + suffix %d of %d bytes", p, s, len(before))
	}
	inserted := string(after[p : len(after)-s])
	if !strings.Contains(inserted, token) || !strings.Contains(inserted, api.ConvergeAnnotation) {
		t.Fatalf("inserted %q, want the annotation", inserted)
	}
	// Whitespace aside (the key is indented like its neighbours), nothing
	// but the annotation.
	compact := strings.Join(strings.Fields(inserted), "")
	if len(compact) > len(api.ConvergeAnnotation)+len(token)+len(`,"annotations":{"":""}`)+8 {
		t.Errorf("inserted more than the annotation: %q", inserted)
	}
}

func TestController_startsWithInvalidConfig(t *testing.T) {
	l := newLab(t)
	good := l.read(api.LXCFile)
	l.write(api.LXCFile, []byte(`{"lxc_configs": {"900": {"name": 5}}}`))
	r := l.start(nil, nil)
	waitFor(t, "the invalid config reported", func() (bool, string) {
		return r.c.Addr() != "" && r.metric("phoenix_config_reloads_total", map[string]string{"result": "error"}) == 1, ""
	})
	if got := r.metric("phoenix_config_valid", nil); got != 0 {
		t.Errorf("phoenix_config_valid = %v, want 0", got)
	}
	if code, _ := r.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without a valid config: %d, want 503", code)
	}
	if code, _ := r.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d, want 200", code)
	}
	if len(l.hostState()) != 0 {
		t.Error("guests were created from an invalid config")
	}
	l.write(api.LXCFile, good)
	r.waitReady()
	if ok, why := l.allReady(exampleIDs); !ok {
		t.Fatal(why)
	}
}

// The workers take their next guest while the last outcomes are still
// being committed, but readiness and the reconcile metrics wait for the
// disk: once /readyz answers, every guest's Ready is in its file, as
// another process (a CLI `phoenix status`) reads it.
func TestController_readyOnlyOnceOutcomesAreOnDisk(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.Workers = 2 }, nil)
	r.waitReady()
	disk := status.NewReadOnlyStore(filepath.Join(l.stateDir, "status"))
	for _, id := range exampleIDs {
		st, err := disk.Get(id, kindOf(id))
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase != api.PhaseReady {
			t.Errorf("guest %s: its file says %s when the controller is ready, want Ready", id, st.Phase)
		}
	}
	if got := r.metric("phoenix_reconcile_total", map[string]string{"result": "success"}); got < float64(len(exampleIDs)) {
		t.Errorf("phoenix_reconcile_total{result=success} = %v, want >= %d", got, len(exampleIDs))
	}
}
