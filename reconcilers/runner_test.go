package reconcilers

import (
	"context"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// start, stop, restart and delete act only when the guest is not already
// as asked, report "unchanged" otherwise, and name the guest when the host
// refuses; delete takes the status file with the guest.
func TestRunner_simpleActions(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941) // 941 runs: it starts at boot
	runner := &Runner{Workflows: NewWorkflows(f.host, Scripts{}), Config: f.Desired(), Status: f.store}
	ctx := context.Background()
	run := func(action string) plan.ActionResult {
		t.Helper()
		a := &plan.Action{ID: 941, Kind: api.KindLXC, Action: action, Reason: plan.ReasonTarget, Guest: f.Desired().Guest(941)}
		var steps []plan.StepResult
		r := runner.Run(ctx, a, func(s plan.StepResult) { steps = append(steps, s) })
		if len(steps) != 1 || steps[0].Name != action {
			t.Errorf("%s reported steps %+v, want one named %s", action, steps, action)
		}
		return r
	}
	running := func() bool {
		g, err := f.sim.Get(ctx, api.KindLXC, 941)
		if err != nil {
			t.Fatal(err)
		}
		return g.Running
	}
	for _, tt := range []struct {
		action      string
		want        string // action result
		wantRunning bool
		wantCalls   []string
	}{
		{plan.ActStart, plan.ResultSkipped, true, nil},
		{plan.ActStop, plan.ResultOK, false, nil},
		{plan.ActStop, plan.ResultSkipped, false, nil},
		{plan.ActStart, plan.ResultOK, true, []string{"start 941"}},
		{plan.ActRestart, plan.ResultOK, true, []string{"start 941"}},
		{plan.ActStop, plan.ResultOK, false, nil},
		{plan.ActRestart, plan.ResultOK, true, []string{"start 941"}},
	} {
		f.calls()
		r := run(tt.action)
		if r.Result != tt.want || r.Err != nil {
			t.Errorf("%s: %s %v, want %s", tt.action, r.Result, r.Err, tt.want)
		}
		if running() != tt.wantRunning {
			t.Errorf("after %s: running %v, want %v", tt.action, running(), tt.wantRunning)
		}
		if c := f.calls(); strings.Join(c, ",") != strings.Join(tt.wantCalls, ",") {
			t.Errorf("%s: host calls %v, want %v", tt.action, c, tt.wantCalls)
		}
	}

	if r := run(plan.ActDelete); r.Result != plan.ResultOK || r.Err != nil {
		t.Fatalf("delete: %s %v", r.Result, r.Err)
	}
	if f.exists(api.KindLXC, 941) {
		t.Error("941 is still on the host after delete")
	}
	if st := f.status(941); st.Phase != api.PhasePending {
		t.Errorf("941's status after delete: %s, want none (Pending)", st.Phase)
	}
	r := run(plan.ActStart)
	if r.Result != plan.ResultFailed || r.Err == nil || !strings.Contains(r.Err.Error(), "start lxc 941") {
		t.Errorf("start of a guest that is gone: %s %v, want failed naming it", r.Result, r.Err)
	}
	if r := runner.Run(ctx, &plan.Action{ID: 941, Kind: api.KindLXC, Action: "reboot"}, nil); r.Result != plan.ResultFailed {
		t.Errorf("an unknown action: %s, want failed", r.Result)
	}
}
