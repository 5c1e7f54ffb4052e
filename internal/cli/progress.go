package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// progress prints one line per action and step as they happen. Step lines
// are columns (ID, step, result, duration) padded to the widest ID of the
// plan, so they line up whatever the IDs' lengths.
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	pal palette
	idW int
}

// stepNameWidth fits the longest step name, snapshot-preconfigured.
const stepNameWidth = 22

func newProgress(w io.Writer, pal palette, p *plan.Plan) *progress {
	pr := &progress{w: w, pal: pal}
	for _, a := range p.Actions {
		pr.idW = max(pr.idW, len(a.ID.String()))
	}
	return pr
}

func (p *progress) ActionStarted(a *plan.Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s %s %s (%s)\n", p.pal.cyan("==>"), a.Action, a.Kind, a.ID, a.Reason)
}

func (p *progress) StepDone(a *plan.Action, s plan.StepResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Pad before colouring: escape codes have no width on screen.
	line := fmt.Sprintf("    %-*s %-*s %s %s", p.idW, a.ID, stepNameWidth, s.Name,
		p.pal.result(fmt.Sprintf("%-9s", s.Result)), dur(s.Duration))
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
		fmt.Fprintf(p.w, "%s %s %s %s: nothing to do\n", p.pal.cyan("<=="), a.Action, a.Kind, a.ID)
	case plan.ResultCancelled:
		fmt.Fprintf(p.w, "%s %s %s %s %s: %s\n", p.pal.yellow("xxx"), a.Action, a.Kind, a.ID, p.pal.yellow("cancelled"), cancelReason(a, r.Err))
	case plan.ResultFailed:
		fmt.Fprintf(p.w, "%s %s %s %s %s after %s: %v\n", p.pal.red("!!!"), a.Action, a.Kind, a.ID, p.pal.red("failed"), dur(r.Duration), r.Err)
		var pe *plan.PanicError
		if errors.As(r.Err, &pe) {
			fmt.Fprintf(p.w, "%s\n", pe.Stack)
		}
	default:
		fmt.Fprintf(p.w, "%s %s %s %s: %s in %s\n", p.pal.cyan("<=="), a.Action, a.Kind, a.ID, p.pal.result(r.Result), dur(r.Duration))
	}
}

// cancelReason is why an action was cancelled, without the "create 941
// cancelled:" the executor's error starts with, which the line already says.
func cancelReason(a *plan.Action, err error) string {
	if err == nil {
		return "cancelled"
	}
	msg := err.Error()
	for _, prefix := range []string{"%s %s cancelled: ", "%s %s: "} {
		msg = strings.TrimPrefix(msg, fmt.Sprintf(prefix, a.Action, a.ID))
	}
	return msg
}

func summarize(w io.Writer, pal palette, o *plan.Outcome) {
	counts := map[string]int{}
	for _, r := range o.Results {
		counts[r.Result]++
	}
	verdict := pal.green("ok")
	if !o.OK() {
		verdict = pal.red("FAILED")
	}
	fmt.Fprintf(w, "%s %s: %s (%d ok, %d skipped, %d failed, %d cancelled) in %s, critical path %s\n",
		o.Plan.Verb, verdict, plural(len(o.Results), "action"), counts[plan.ResultOK], counts[plan.ResultSkipped],
		counts[plan.ResultFailed], counts[plan.ResultCancelled], dur(o.Elapsed), dur(o.CriticalPath))
}

func dur(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
