package plan

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// chainPlan builds a plan of n actions where action i needs the actions
// listed in needs[i]; ids are 100+i.
func chainPlan(needs ...[]int) *Plan {
	p := &Plan{Verb: "test"}
	for i, n := range needs {
		p.Actions = append(p.Actions, &Action{ID: api.ID(100 + i), Kind: api.KindLXC, Action: ActCreate, Reason: ReasonTarget, Needs: n})
	}
	return p
}

func TestExecute_failureCancelsDependentsOnly(t *testing.T) {
	// 0 -> 1 -> 2, and 3 independent; 1 fails.
	p := chainPlan(nil, []int{0}, []int{1}, nil)
	run := func(ctx context.Context, a *Action, _ func(StepResult)) ActionResult {
		if a.ID == 101 {
			return ActionResult{Result: ResultFailed, Err: errors.New("boom")}
		}
		return ActionResult{Result: ResultOK}
	}
	out := Execute(context.Background(), p, 2, run, nil)
	var got []string
	for _, r := range out.Results {
		got = append(got, r.Result)
	}
	if want := []string{ResultOK, ResultFailed, ResultCancelled, ResultOK}; !reflect.DeepEqual(got, want) {
		t.Errorf("results = %v, want %v", got, want)
	}
	if out.OK() {
		t.Error("OK() = true with a failed action")
	}
}

func TestExecute_parallelOneKeepsPlanOrder(t *testing.T) {
	p := chainPlan(nil, nil, []int{0}, nil, []int{2, 3})
	var mu sync.Mutex
	var order []api.ID
	run := func(ctx context.Context, a *Action, _ func(StepResult)) ActionResult {
		mu.Lock()
		order = append(order, a.ID)
		mu.Unlock()
		return ActionResult{Result: ResultOK}
	}
	Execute(context.Background(), p, 1, run, nil)
	if want := []api.ID{100, 101, 102, 103, 104}; !reflect.DeepEqual(order, want) {
		t.Errorf("order = %v, want the listed order %v", order, want)
	}
}

func TestExecute_respectsDependenciesAndBound(t *testing.T) {
	// A wide fan-out under one root, run with parallel 3.
	needs := [][]int{nil}
	for i := 0; i < 12; i++ {
		needs = append(needs, []int{0})
	}
	p := chainPlan(needs...)
	var mu sync.Mutex
	running, peak := 0, 0
	rootDone := false
	run := func(ctx context.Context, a *Action, _ func(StepResult)) ActionResult {
		mu.Lock()
		if a.ID != 100 && !rootDone {
			t.Errorf("%s started before the action it needs", a.ID)
		}
		running++
		if running > peak {
			peak = running
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		running--
		if a.ID == 100 {
			rootDone = true
		}
		mu.Unlock()
		return ActionResult{Result: ResultOK}
	}
	out := Execute(context.Background(), p, 3, run, nil)
	if peak > 3 {
		t.Errorf("%d actions ran at once, want at most 3", peak)
	}
	if peak < 2 {
		t.Errorf("at most %d action ran at once; independent actions should overlap", peak)
	}
	if !out.OK() {
		t.Error("plan failed")
	}
}

func TestExecute_cancelledContextCancelsWhatHasNotStarted(t *testing.T) {
	p := chainPlan(nil, []int{0}, []int{1})
	ctx, cancel := context.WithCancel(context.Background())
	run := func(ctx context.Context, a *Action, _ func(StepResult)) ActionResult {
		cancel()
		return ActionResult{Result: ResultOK}
	}
	out := Execute(ctx, p, 1, run, nil)
	if out.Results[0].Result != ResultOK || out.Results[1].Result != ResultCancelled || out.Results[2].Result != ResultCancelled {
		t.Errorf("results = %+v, want ok then cancelled", out.Results)
	}
}

func TestCriticalPath(t *testing.T) {
	p := chainPlan(nil, []int{0}, nil, []int{1, 2})
	res := []ActionResult{{Duration: 10}, {Duration: 20}, {Duration: 50}, {Duration: 5}}
	// Longest chain: 2 (50) -> 3 (5) = 55, not 0 -> 1 -> 3 = 35.
	if got := criticalPath(p, res); got != 55 {
		t.Errorf("criticalPath = %d, want 55", got)
	}
}
