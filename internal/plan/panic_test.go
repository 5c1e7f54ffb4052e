package plan

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestExecute_panicFailsItsActionOnly(t *testing.T) {
	// 0 -> 1 -> 2, and 3 independent; 1 panics.
	p := chainPlan(nil, []int{0}, []int{1}, nil)
	run := func(ctx context.Context, a *Action, _ func(StepResult)) ActionResult {
		if a.ID == 101 {
			var m map[string]int
			//lint:ignore SA5000 the test needs a runtime panic from a real bug, not a panic("...") call
			m["boom"]++
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
	var pe *PanicError
	if !errors.As(out.Results[1].Err, &pe) || !strings.Contains(string(pe.Stack), "panic_test.go") {
		t.Fatalf("error of the panicking action: %v (want a PanicError with the stack)", out.Results[1].Err)
	}
	if want := "create lxc 101: internal error: panic: assignment to entry in nil map"; out.Results[1].Err.Error() != want {
		t.Errorf("error %q, want %q", out.Results[1].Err, want)
	}
}
