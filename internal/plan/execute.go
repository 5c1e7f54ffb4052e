package plan

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Action results, as in the -o json document.
const (
	ResultOK        = "ok"
	ResultSkipped   = "skipped"
	ResultFailed    = "failed"
	ResultCancelled = "cancelled"
	ResultPlanned   = "planned"
)

// ActionResult is what running one action did.
type ActionResult struct {
	Result   string
	Duration time.Duration
	Steps    []StepResult
	Err      error
}

// RunFunc carries out one action, reporting each workflow step as it ends.
type RunFunc func(ctx context.Context, a *Action, report func(StepResult)) ActionResult

// Observer hears about progress as it happens. Calls come from many
// goroutines; implementations serialize themselves.
type Observer interface {
	ActionStarted(a *Action)
	StepDone(a *Action, s StepResult)
	ActionDone(a *Action, r ActionResult)
}

// Outcome is a plan run to the end.
type Outcome struct {
	Plan    *Plan
	Results []ActionResult
	Elapsed time.Duration
	// CriticalPath is the longest chain of dependent action durations: the
	// floor for any amount of parallelism.
	CriticalPath time.Duration
}

// OK reports whether no action failed or was cancelled.
func (o *Outcome) OK() bool {
	for _, r := range o.Results {
		if r.Result == ResultFailed || r.Result == ResultCancelled {
			return false
		}
	}
	return true
}

// Execute runs the plan with at most parallel actions at once. An action
// starts as soon as all it needs is done; among ready actions the one
// listed first goes first, so parallel 1 runs the plan in its listed order.
// A failed action cancels everything that needs it, directly or not;
// independent branches run to the end.
func Execute(ctx context.Context, p *Plan, parallel int, run RunFunc, obs Observer) *Outcome {
	if parallel < 1 {
		parallel = 1
	}
	n := len(p.Actions)
	out := &Outcome{Plan: p, Results: make([]ActionResult, n)}
	start := time.Now()
	waiting := make([]int, n)
	dependents := make([][]int, n)
	failedDep := make([]string, n)
	for i, a := range p.Actions {
		waiting[i] = len(a.Needs)
		for _, j := range a.Needs {
			dependents[j] = append(dependents[j], i)
		}
	}
	var ready []int
	for i := range p.Actions {
		if waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	type done struct {
		i int
		r ActionResult
	}
	doneCh := make(chan done)
	running, finished := 0, 0

	finish := func(i int, r ActionResult) {
		out.Results[i] = r
		finished++
		if obs != nil {
			obs.ActionDone(p.Actions[i], r)
		}
		for _, d := range dependents[i] {
			if (r.Result == ResultFailed || r.Result == ResultCancelled) && failedDep[d] == "" {
				failedDep[d] = p.Actions[i].ID.String()
			}
			waiting[d]--
			if waiting[d] == 0 {
				ready = append(ready, d)
			}
		}
	}

	for finished < n {
		sort.Ints(ready)
		for len(ready) > 0 {
			i := ready[0]
			a := p.Actions[i]
			switch {
			case failedDep[i] != "":
				ready = ready[1:]
				finish(i, ActionResult{Result: ResultCancelled, Err: fmt.Errorf("%s %s cancelled: it needs %s, which did not finish", a.Action, a.ID, failedDep[i])})
				continue
			case ctx.Err() != nil:
				ready = ready[1:]
				finish(i, ActionResult{Result: ResultCancelled, Err: fmt.Errorf("%s %s cancelled: %w", a.Action, a.ID, ctx.Err())})
				continue
			case a.Action == ActSkip:
				ready = ready[1:]
				finish(i, ActionResult{Result: ResultSkipped})
				continue
			case running >= parallel:
			default:
				ready = ready[1:]
				running++
				if obs != nil {
					obs.ActionStarted(a)
				}
				go func(i int, a *Action) {
					t0 := time.Now()
					report := func(s StepResult) {
						if obs != nil {
							obs.StepDone(a, s)
						}
					}
					r := runSafely(ctx, a, run, report)
					r.Duration = time.Since(t0)
					doneCh <- done{i, r}
				}(i, a)
				continue
			}
			break
		}
		if finished == n {
			break
		}
		d := <-doneCh
		running--
		finish(d.i, d.r)
	}
	out.Elapsed = time.Since(start)
	out.CriticalPath = criticalPath(p, out.Results)
	return out
}

// runSafely runs one action; a panic in it fails that action alone (as
// controller-runtime's RecoverPanic does), so that Execute still hears of
// it and independent actions go on.
func runSafely(ctx context.Context, a *Action, run RunFunc, report func(StepResult)) (r ActionResult) {
	defer func() {
		if v := recover(); v != nil {
			r = ActionResult{Result: ResultFailed, Err: fmt.Errorf("%s %s %s: %w", a.Action, a.Kind, a.ID, Recovered(v))}
		}
	}()
	return run(ctx, a, report)
}

// CriticalPath is the longest chain of dependent action durations of
// results, one per action of p: for a run phoenix learned of afterwards
// (the controller's, after a converge hand-off).
func CriticalPath(p *Plan, results []ActionResult) time.Duration { return criticalPath(p, results) }

// criticalPath is the longest chain of dependent action durations. Plans
// list actions in a valid order, so one pass suffices.
func criticalPath(p *Plan, results []ActionResult) time.Duration {
	end := make([]time.Duration, len(p.Actions))
	var longest time.Duration
	for i, a := range p.Actions {
		var before time.Duration
		for _, j := range a.Needs {
			if end[j] > before {
				before = end[j]
			}
		}
		end[i] = before + results[i].Duration
		if end[i] > longest {
			longest = end[i]
		}
	}
	return longest
}
