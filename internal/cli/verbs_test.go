package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

// provisioned returns a harness on the reference lab with every guest
// created, as after `phoenix LetsGo`.
func provisioned(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, referenceLab)
	h.mustRun("LetsGo")
	return h
}

func TestCreate_provisionedStackActsOnTargetOnly(t *testing.T) {
	h := provisioned(t)
	before := len(h.ops())
	code, doc, stderr := h.runJSON("create", "941")
	if code != 0 || !doc.OK {
		t.Fatalf("create 941: exit %d, ok %v\n%s", code, doc.OK, stderr)
	}
	want := map[string][3]string{
		"900": {"skip", "exists", "skipped"}, "901": {"skip", "exists", "skipped"},
		"921": {"skip", "exists", "skipped"}, "953": {"skip", "exists", "skipped"},
		"941": {"create", "target", "ok"},
	}
	got := actionsByID(doc)
	if len(got) != len(want) {
		t.Fatalf("actions = %+v, want exactly 900, 901, 921, 953, 941", doc.Actions)
	}
	for id, w := range want {
		a := got[id]
		if [3]string{a.Action, a.Reason, a.Result} != w {
			t.Errorf("%s: %s/%s/%s, want %v", id, a.Action, a.Reason, a.Result, w)
		}
	}
	if ids := touched(h.ops()[before:]); !reflect.DeepEqual(ids, []string{"941"}) {
		t.Errorf("host operations touched %v, want only 941", ids)
	}
}

func TestCreate_missingDependencyIsCreated(t *testing.T) {
	h := provisioned(t)
	h.mustRun("delete", "921", "--force")
	before := len(h.ops())
	code, doc, stderr := h.runJSON("create", "941")
	if code != 0 {
		t.Fatalf("create 941: exit %d\n%s", code, stderr)
	}
	var order []string
	for _, a := range doc.Actions {
		if a.Action == "create" {
			order = append(order, a.ID+":"+a.Reason)
		} else if a.Action != "skip" || a.Reason != "exists" {
			t.Errorf("%s: %s/%s, want skip/exists", a.ID, a.Action, a.Reason)
		}
	}
	if want := []string{"921:missing-dependency", "941:target"}; !reflect.DeepEqual(order, want) {
		t.Errorf("created %v, want %v", order, want)
	}
	if ids := touched(h.ops()[before:]); !reflect.DeepEqual(ids, []string{"921", "941"}) {
		t.Errorf("host operations touched %v, want 921 and 941", ids)
	}
}

func TestCreate_emptyHostBuildsTheChain(t *testing.T) {
	h := newHarness(t, referenceLab)
	_, doc, _ := h.runJSON("create", "941")
	got := actionsByID(doc)
	for _, id := range []string{"900", "901", "921", "953"} {
		if a := got[id]; a.Action != "create" || a.Reason != "missing-dependency" || a.Result != "ok" {
			t.Errorf("%s: %+v, want create/missing-dependency/ok", id, a)
		}
	}
	if a := got["941"]; a.Action != "create" || a.Reason != "target" {
		t.Errorf("941: %+v, want create/target", a)
	}
}

func TestConverge_runsTheWorkflowOnTheWholeChain(t *testing.T) {
	h := provisioned(t)
	host, _ := sim.New(sim.Options{Dir: filepath.Join(h.stateDir, "sim")})
	runsBefore := map[api.ID]int{}
	chain := []api.ID{900, 901, 921, 953, 941}
	for _, id := range chain {
		for _, n := range host.Runs(id) {
			runsBefore[id] += n
		}
	}
	code, doc, stderr := h.runJSON("converge", "941")
	if code != 0 {
		t.Fatalf("converge 941: exit %d\n%s", code, stderr)
	}
	if len(doc.Actions) != len(chain) {
		t.Fatalf("actions = %+v, want the five guests of the chain", doc.Actions)
	}
	pos := map[string]int{}
	for i, a := range doc.Actions {
		pos[a.ID] = i
		if a.Action != "create" || a.Result != "ok" {
			t.Errorf("%s: %s/%s, want create/ok", a.ID, a.Action, a.Result)
		}
	}
	// A valid order: every guest after what it clones from and depends on.
	for _, edge := range [][2]string{{"900", "901"}, {"901", "921"}, {"921", "941"}, {"953", "941"}, {"900", "953"}} {
		if pos[edge[0]] > pos[edge[1]] {
			t.Errorf("%s ran after %s, which needs it", edge[0], edge[1])
		}
	}
	for _, id := range chain {
		after := 0
		for _, n := range host.Runs(id) {
			after += n
		}
		if after <= runsBefore[id] {
			t.Errorf("converge did not re-run the features of %s (%d runs before, %d after)", id, runsBefore[id], after)
		}
	}
}

func TestCreate_everyNamedTargetIsFinal(t *testing.T) {
	h := provisioned(t)
	_, doc, _ := h.runJSON("create", "941", "950")
	got := actionsByID(doc)
	for _, id := range []string{"941", "950"} {
		if got[id].Action != "create" || got[id].Reason != "target" {
			t.Errorf("%s: %+v, want create/target (the old tool only treated the last one so)", id, got[id])
		}
	}
	if got["920"].Action != "skip" {
		t.Errorf("920: %+v, want skip", got["920"])
	}
}

func TestHelp_listsConverge(t *testing.T) {
	h := newHarness(t, smallLab)
	_, out, _ := h.run("--help")
	if !strings.Contains(out, "converge") || !strings.Contains(out, "forcefully re-applies all configurations and features") {
		t.Errorf("--help does not describe converge:\n%s", out)
	}
}

func TestStart_startsDependenciesNotCloneSources(t *testing.T) {
	h := provisioned(t)
	h.mustRun("stop", "941", "953")
	_, doc, _ := h.runJSON("start", "941")
	var got []string
	for _, a := range doc.Actions {
		got = append(got, a.ID+":"+a.Action+":"+a.Reason)
	}
	if want := []string{"953:start:dependency", "941:start:target"}; !reflect.DeepEqual(got, want) {
		t.Errorf("start 941 = %v, want %v", got, want)
	}
	_, doc, _ = h.runJSON("start", "941")
	for _, a := range doc.Actions {
		if a.Action != "skip" || a.Reason != "running" {
			t.Errorf("second start: %s %s/%s, want skip/running", a.ID, a.Action, a.Reason)
		}
	}
}

func TestStopRestart_namedGuestsOnly(t *testing.T) {
	h := provisioned(t)
	_, doc, _ := h.runJSON("stop", "941")
	if len(doc.Actions) != 1 || doc.Actions[0].ID != "941" || doc.Actions[0].Result != "ok" {
		t.Fatalf("stop 941 = %+v, want one ok action on 941", doc.Actions)
	}
	if state := h.state(t, "941"); state != "stopped" {
		t.Errorf("941 is %s after stop", state)
	}
	if state := h.state(t, "953"); state != "running" {
		t.Errorf("953 is %s after stop 941; stop must not touch dependencies", state)
	}
	_, doc, _ = h.runJSON("stop", "941")
	if doc.Actions[0].Reason != "stopped" || doc.Actions[0].Result != "skipped" {
		t.Errorf("stop of a stopped guest: %+v, want skip/stopped", doc.Actions[0])
	}
	_, doc, _ = h.runJSON("restart", "941", "953")
	for _, a := range doc.Actions {
		if a.Action != "restart" || a.Result != "ok" {
			t.Errorf("restart: %+v", a)
		}
	}
	if state := h.state(t, "941"); state != "running" {
		t.Errorf("941 is %s after restart", state)
	}
}

func TestDelete_refusesWhileNeededUnlessForced(t *testing.T) {
	h := provisioned(t)
	before := h.hostSnapshot()
	state921 := h.state(t, "921")
	code, _, stderr := h.run("delete", "953")
	if code != 2 || !strings.Contains(stderr, "refusing to delete 953") || !strings.Contains(stderr, "941") {
		t.Fatalf("delete 953: exit %d, %q; want exit 2 naming the guests that need it", code, stderr)
	}
	if !reflect.DeepEqual(before, h.hostSnapshot()) {
		t.Error("a refused delete changed the host")
	}
	_, doc, _ := h.runJSON("delete", "941")
	if len(doc.Actions) != 1 || doc.Actions[0].Result != "ok" {
		t.Fatalf("delete 941 = %+v", doc.Actions)
	}
	if state := h.state(t, "941"); state != "absent" {
		t.Errorf("941 is %s after delete", state)
	}
	if state := h.state(t, "921"); state != state921 {
		t.Errorf("921 is %s, was %s; delete must touch the named guest only", state, state921)
	}
	code, doc, _ = h.runJSON("delete", "953", "--force")
	if code != 0 || doc.Actions[0].Result != "ok" {
		t.Errorf("delete 953 --force: exit %d, %+v", code, doc.Actions)
	}
}

// state returns a guest's live state through `phoenix status ID -o json`,
// checked against the status schema.
func (h *harness) state(t *testing.T, id string) string {
	t.Helper()
	code, out, stderr := h.run("status", id, "-o", "json")
	if code != 0 {
		t.Fatalf("status %s: exit %d: %s", id, code, stderr)
	}
	testlab.ValidateJSON(t, "testdata/status.schema.json", out)
	var v StatusView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	return v.State
}

func TestStatus_reportsLiveStateAndPhase(t *testing.T) {
	h := newHarness(t, referenceLab)
	code, out, _ := h.run("status", "941", "-o", "json")
	testlab.ValidateJSON(t, "testdata/status.schema.json", out)
	if code != 0 || !strings.Contains(out, `"phase": "Pending"`) || !strings.Contains(out, `"state": "absent"`) {
		t.Fatalf("status of a never-applied guest: exit %d\n%s", code, out)
	}
	h.mustRun("create", "941")
	_, out, _ = h.run("status", "941", "-o", "json")
	var v StatusView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Exists || v.State != "running" || v.Phase != api.PhaseReady || v.LastAppliedAt == nil || v.ObservedSpecHash == "" {
		t.Errorf("status after create = %+v, want existing, running, Ready, applied, with a spec hash", v)
	}
	out = h.mustRun("status")
	if !strings.Contains(out, "granite-new") || !strings.Contains(out, "Ready") || !strings.Contains(out, "Pending") {
		t.Errorf("status table lacks guests:\n%s", out)
	}
}

func TestLetsGo_createsEverythingAndStartsByBootOrder(t *testing.T) {
	h := newHarness(t, exampleLab)
	code, doc, stderr := h.runJSON("LetsGo")
	if code != 0 || !doc.OK {
		t.Fatalf("LetsGo: exit %d\n%s", code, stderr)
	}
	cfg, err := desired.Load(h.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	creates, lastOrder := 0, -1
	for _, a := range doc.Actions {
		switch a.Action {
		case "create":
			creates++
		case "start":
			g := cfg.Guest(mustID(t, a.ID))
			if g.IsTemplateSource() || !g.StartsAtBoot() {
				t.Errorf("LetsGo starts %s, a template or start_at_boot=false guest", a.ID)
			}
			if g.BootRank() < lastOrder {
				t.Errorf("start of %s (boot_order %d) listed after boot_order %d", a.ID, g.BootRank(), lastOrder)
			}
			lastOrder = g.BootRank()
		}
	}
	if creates != len(cfg.IDs) {
		t.Errorf("LetsGo created %d guests, want all %d", creates, len(cfg.IDs))
	}
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		if state := h.state(t, id.String()); state == "absent" || (!g.IsTemplateSource() && g.StartsAtBoot() && state != "running") {
			t.Errorf("%s is %s after LetsGo", id, state)
		}
	}
	_, out, _ := h.run("up", "--dry-run")
	if !strings.Contains(out, "dry run") {
		t.Errorf("the up alias does not run LetsGo:\n%s", out)
	}
}

func mustID(t *testing.T, s string) api.ID {
	t.Helper()
	id, err := api.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDryRun_changesNothing(t *testing.T) {
	h := newHarness(t, referenceLab)
	for _, verb := range [][]string{{"create", "941"}, {"converge", "941"}, {"LetsGo"}} {
		code, doc, _ := h.runJSON(append(verb, "--dry-run")...)
		if code != 0 || !doc.DryRun || len(doc.Actions) == 0 {
			t.Fatalf("%v --dry-run: exit %d, %+v", verb, code, doc)
		}
		for _, a := range doc.Actions {
			if a.Result != "planned" {
				t.Errorf("%v --dry-run: %s result %s, want planned", verb, a.ID, a.Result)
			}
		}
	}
	if ops := h.ops(); len(ops) != 0 {
		t.Errorf("dry runs changed the host: %v", ops)
	}
	out := h.mustRun("create", "941", "--dry-run")
	if !strings.Contains(out, "create  941") || !strings.Contains(out, "missing-dependency") {
		t.Errorf("dry-run text lacks the plan:\n%s", out)
	}
}

func TestUsageErrors_exit2(t *testing.T) {
	h := newHarness(t, referenceLab)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"create", "942"}, "unknown guest 942"},
		{[]string{"create", "abc"}, `guest ID "abc"`},
		{[]string{"create"}, "at least one guest ID"},
		{[]string{"explode", "941"}, "unknown command"},
		{[]string{"create", "941", "--parallel", "0"}, "--parallel"},
		{[]string{"create", "941", "--no-such-flag"}, "unknown flag"},
		{[]string{"LetsGo", "941"}, "unknown command"},
	}
	for _, tt := range tests {
		code, _, stderr := h.run(tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("phoenix %v: exit %d, stderr %q; want exit 2 with %q", tt.args, code, stderr, tt.want)
		}
	}
	if ops := h.ops(); len(ops) != 0 {
		t.Errorf("usage errors changed the host: %v", ops)
	}
}

// TestBadConfig_everyVerbExits2 feeds every broken config of testdata/bad
// to every verb: exit 2, the problem named by file, guest and field, no
// panic, and the host exactly as it was.
func TestBadConfig_everyVerbExits2(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/bad/*")
	if len(dirs) < 25 {
		t.Fatalf("found %d bad configs, want at least 25", len(dirs))
	}
	h := newHarness(t, smallLab)
	h.mustRun("LetsGo")
	before := h.hostSnapshot()
	verbs := [][]string{
		{"validate"}, {"create", "941"}, {"converge", "941"}, {"start", "941"}, {"stop", "941"},
		{"restart", "941"}, {"delete", "941"}, {"status"}, {"status", "941"}, {"LetsGo"}, {"setup"},
		{"graph"}, {"create", "941", "--dry-run"},
	}
	for _, dir := range dirs {
		want, err := os.ReadFile(filepath.Join(dir, "want"))
		if err != nil {
			t.Fatal(err)
		}
		h.copyConfig(dir)
		for _, verb := range verbs {
			code, _, stderr := h.run(verb...)
			if code != 2 {
				t.Errorf("%s: phoenix %v exit %d, want 2", filepath.Base(dir), verb, code)
			}
			for _, w := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				if !strings.Contains(stderr, w) {
					t.Errorf("%s: phoenix %v: stderr lacks %q:\n%s", filepath.Base(dir), verb, w, stderr)
				}
			}
		}
	}
	if after := h.hostSnapshot(); !reflect.DeepEqual(before, after) {
		t.Error("bad configs changed the host or the status files")
	}
}

func TestJSONOutput_onConfigError(t *testing.T) {
	h := newHarness(t, "../../testdata/bad/cycle-short")
	code, doc, _ := h.runJSON("create", "941")
	if code != 2 || doc.OK || !strings.Contains(doc.Error, "cycle: 941 -> 953 -> 941") {
		t.Errorf("create on a cyclic config: exit %d, %+v", code, doc)
	}
}
