package cli

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// progress prints one line per action and step as they happen.
type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) ActionStarted(a *plan.Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "==> %s %s %s (%s)\n", a.Action, a.Kind, a.ID, a.Reason)
}

func (p *progress) StepDone(a *plan.Action, s plan.StepResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("    %s %-22s %-9s %s", a.ID, s.Name, s.Result, dur(s.Duration))
	if s.Err != nil {
		line += "  " + s.Err.Error()
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) ActionDone(a *plan.Action, r plan.ActionResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.Result {
	case plan.ResultSkipped:
		if a.Action == plan.ActSkip {
			fmt.Fprintf(p.w, "--- skip %s %s (%s)\n", a.Kind, a.ID, a.Reason)
			return
		}
		fmt.Fprintf(p.w, "<== %s %s %s: nothing to do\n", a.Action, a.Kind, a.ID)
	case plan.ResultCancelled:
		fmt.Fprintf(p.w, "xxx %s %s %s cancelled: %v\n", a.Action, a.Kind, a.ID, r.Err)
	case plan.ResultFailed:
		fmt.Fprintf(p.w, "!!! %s %s %s failed after %s: %v\n", a.Action, a.Kind, a.ID, dur(r.Duration), r.Err)
		var pe *plan.PanicError
		if errors.As(r.Err, &pe) {
			fmt.Fprintf(p.w, "%s\n", pe.Stack)
		}
	default:
		fmt.Fprintf(p.w, "<== %s %s %s: %s in %s\n", a.Action, a.Kind, a.ID, r.Result, dur(r.Duration))
	}
}

func summarize(w io.Writer, o *plan.Outcome) {
	counts := map[string]int{}
	for _, r := range o.Results {
		counts[r.Result]++
	}
	verdict := "ok"
	if !o.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "%s %s: %d actions (%d ok, %d skipped, %d failed, %d cancelled) in %s, critical path %s\n",
		o.Plan.Verb, verdict, len(o.Results), counts[plan.ResultOK], counts[plan.ResultSkipped],
		counts[plan.ResultFailed], counts[plan.ResultCancelled], dur(o.Elapsed), dur(o.CriticalPath))
}

func dur(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
