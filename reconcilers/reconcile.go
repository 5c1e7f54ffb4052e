package reconcilers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// Why a guest is reconciled, for logs.
const (
	whyConverge    = "converge requested"
	whyMissing     = "missing on the host"
	whySpecChanged = "spec changed"
	whyNotReady    = "not ready"
)

// reconcile brings one guest in line with the desired state in force. In
// order:
//
//   - the guest left the files: mark it Orphaned, or prune it;
//   - its converge token is new: converge its whole chain, then record the
//     token (also when the converge failed: the request was handled, and
//     the status says how it went);
//   - it is missing on the host, or its last workflow did not finish
//     (Pending, Provisioning after a crash, Failed): create its chain,
//     existing dependencies satisfied and unfinished ones finished;
//   - its spec changed: run its create workflow, on it alone;
//   - else no host change: only keys changed on the host behind phoenix's
//     back are reported (checkDrift), with a status write only when that
//     report changes.
func (r *reconciler) reconcile(ctx context.Context, req Request) (Result, error) {
	id := req.ID
	cfg := r.Desired.Desired()
	if cfg == nil {
		// Before the first valid load nothing is known of any guest: not
		// even that it left the files.
		return Result{}, errors.New("no valid desired state loaded yet")
	}
	g := cfg.Guest(id)
	if g == nil {
		return r.reconcileRemoved(ctx, id)
	}
	if g.Kind != r.kind {
		// The files moved it to the other kind since it was queued.
		return Result{Requeue: true}, nil
	}
	log := r.Log.WithValues("guest", id, "kind", g.Kind)
	st, err := r.Status.Get(id, g.Kind)
	if err != nil {
		log.Error(err, "Unreadable status; treating the guest as never applied")
		st = &api.Status{ID: id.String(), Kind: g.Kind, Phase: api.PhasePending}
	}
	if st.Kind != "" && st.Kind != g.Kind {
		if err := r.refuseKindMove(ctx, log, g, st.Kind); err != nil {
			return Result{}, err
		}
	}
	// Existence only: a guest that needs no work costs no config read.
	_, exists, err := hypervisor.Probe(ctx, r.Host, g.Kind, id)
	if err != nil {
		return Result{}, fmt.Errorf("look up %s %s: %w", g.Kind, id, err)
	}
	if !exists {
		if err := r.refuseOtherKind(ctx, log, g); err != nil {
			return Result{}, err
		}
	}

	token := g.ConvergeToken()
	converge := token != "" && token != st.LastHandledConvergeAt
	var p *plan.Plan
	var why string
	switch {
	case converge:
		p, why = plan.Converge(cfg, []api.ID{id}), whyConverge
	case !exists || st.Phase != api.PhaseReady:
		// Missing, or its last workflow did not finish: create what is
		// missing or unfinished in its chain, then the guest itself.
		p, err = plan.Create(ctx, cfg, []api.ID{id}, plan.HostLookup(r.Host, cfg, r.Phases))
		if err != nil {
			return Result{}, err
		}
		why = whyMissing
		if exists {
			why = whyNotReady
		}
	case st.ObservedSpecHash != g.Hash:
		p, why = plan.Apply(cfg, []api.ID{id}), whySpecChanged
	default:
		log.V(1).Info("Guest is up to date")
		return Result{}, r.driftPass(ctx, log, g, st)
	}
	if err := r.preflight(log, cfg, g, p); err != nil {
		return Result{}, err
	}
	if !converge {
		waitForExisting(p)
	} else {
		r.Recorder.ConvergeStarted(g.Kind)
	}
	log.Info("Reconciling guest", "reason", why, "actions", len(p.Actions), "phase", st.Phase)

	runner := &Runner{Workflows: r.Workflows, Config: cfg, Status: r.Status, Now: r.Now}
	start := time.Now()
	out := plan.Execute(ctx, p, r.Parallel, r.runAction(runner, converge), &observer{rec: r.Recorder, log: log})
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	err = outcomeErr(out)
	var target plan.ActionResult
	for i, a := range p.Actions {
		if a.ID == id {
			target = out.Results[i]
		}
	}
	// The target never ran because something it needs failed: its status
	// must still say so, or a converge waiting on it would read "Ready".
	targetCancelled := target.Result == plan.ResultCancelled && err != nil
	if converge || targetCancelled {
		now := r.now()
		if _, werr := r.Status.Update(id, g.Kind, func(s *api.Status) {
			if converge {
				s.LastHandledConvergeAt = token
			}
			if targetCancelled {
				s.Phase = api.PhaseFailed
				s.LastError = err.Error()
				s.SetReady("False", api.ReasonFailed, err.Error(), now)
			}
		}); werr != nil {
			return Result{}, errors.Join(err, werr)
		}
	}
	if err != nil {
		return Result{}, err
	}
	if err := r.clearDrift(g); err != nil {
		return Result{}, err
	}
	log.Info("Reconciled guest", "reason", why, "duration", time.Since(start).Round(time.Millisecond).String())
	return Result{}, nil
}

// waitForExisting turns a create plan's "skip, exists" actions into ones
// the reconciler runs: under the guest's lock, so that a dependency
// another worker is building right now is finished before its dependents
// use it. runAction skips them once they hold the lock.
func waitForExisting(p *plan.Plan) {
	for _, a := range p.Actions {
		if a.Action == plan.ActSkip && a.Reason == plan.ReasonExists {
			a.Action = plan.ActCreate
		}
	}
}

// runAction runs plan actions the reconciler's way: each under its guest's
// lock, and, unless converging, a create is skipped when another worker
// already did it while this one waited (the guest exists, is Ready and has
// the current spec hash). That is how two guests sharing a missing
// dependency create it once.
//
// A dependency that existed when the plan was made is checked under the
// shared lock first: thousands of clones of one template check it side by
// side, where the exclusive lock made them queue one behind the other.
// Only if it needs work does the action take the exclusive lock (and check
// again, as someone may have done the work in between).
func (r *reconciler) runAction(runner *Runner, converge bool) plan.RunFunc {
	return func(ctx context.Context, a *plan.Action, report func(plan.StepResult)) plan.ActionResult {
		check := !converge && a.Action == plan.ActCreate
		if check && a.Reason == plan.ReasonExists {
			if res, done := r.checkShared(ctx, a); done {
				return res
			}
		}
		unlock, err := r.Locks.Lock(ctx, a.ID)
		if err != nil {
			return plan.ActionResult{Result: plan.ResultCancelled, Err: fmt.Errorf("%s %s: %w", a.Action, a.ID, err)}
		}
		defer unlock()
		if check {
			if res, done := r.upToDate(ctx, a); done {
				return res
			}
		}
		return runner.Run(ctx, a, report)
	}
}

// checkShared checks a's guest under the guest's shared lock; done means
// the action is over, with res.
func (r *reconciler) checkShared(ctx context.Context, a *plan.Action) (res plan.ActionResult, done bool) {
	unlock, err := r.Locks.RLock(ctx, a.ID)
	if err != nil {
		return plan.ActionResult{Result: plan.ResultCancelled, Err: fmt.Errorf("%s %s: %w", a.Action, a.ID, err)}, true
	}
	defer unlock()
	return r.upToDate(ctx, a)
}

// upToDate checks whether a's create is done already; the guest's lock is
// held.
func (r *reconciler) upToDate(ctx context.Context, a *plan.Action) (res plan.ActionResult, done bool) {
	ok, err := UpToDate(ctx, r.Host, r.Status, a)
	if err != nil {
		return plan.ActionResult{Result: plan.ResultFailed, Err: fmt.Errorf("look up %s %s: %w", a.Kind, a.ID, err)}, true
	}
	if ok {
		return plan.ActionResult{Result: plan.ResultSkipped}, true
	}
	return plan.ActionResult{}, false
}

// outcomeErr joins the errors of the actions that failed.
func outcomeErr(out *plan.Outcome) error {
	if out.OK() {
		return nil
	}
	var errs []error
	for _, r := range out.Results {
		if r.Result == plan.ResultFailed {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) == 0 {
		for _, r := range out.Results {
			if r.Err != nil {
				errs = append(errs, r.Err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// observer logs actions and reports step durations to the Recorder.
type observer struct {
	rec Recorder
	log logr.Logger
}

var _ plan.Observer = (*observer)(nil)

func (o *observer) ActionStarted(a *plan.Action) {
	o.log.V(1).Info("Action started", "action", a.Action, "id", a.ID, "reason", a.Reason)
}

func (o *observer) StepDone(a *plan.Action, s plan.StepResult) {
	if s.Result != plan.StepSkipped {
		o.rec.StepDone(a.Kind, s.Name, s.Duration)
	}
	o.log.V(2).Info("Step done", "id", a.ID, "step", s.Name, "result", s.Result, "duration", s.Duration.String())
}

func (o *observer) ActionDone(a *plan.Action, r plan.ActionResult) {
	if r.Result == plan.ResultFailed {
		var pe *plan.PanicError
		if errors.As(r.Err, &pe) {
			o.log.Error(r.Err, "Action failed", "action", a.Action, "id", a.ID, "reason", a.Reason, "stack", string(pe.Stack))
			return
		}
		o.log.Error(r.Err, "Action failed", "action", a.Action, "id", a.ID, "reason", a.Reason)
		return
	}
	o.log.V(1).Info("Action done", "action", a.Action, "id", a.ID, "reason", a.Reason, "result", r.Result,
		"duration", r.Duration.Round(time.Millisecond).String())
}

// refuseKindMove stops a guest ID that moved between the LXC and the VM
// file while the host still has the guest of the old kind: acting on it
// would destroy one guest to build another under its ID. The status keeps
// the old kind, so the refusal holds until the ID moves back or the old
// guest is gone.
func (r *reconciler) refuseKindMove(ctx context.Context, log logr.Logger, g *api.Guest, was api.Kind) error {
	_, exists, err := hypervisor.Exists(ctx, r.Host, was, g.ID)
	if err != nil {
		return fmt.Errorf("look up %s %s: %w", was, g.ID, err)
	}
	if !exists {
		return nil
	}
	msg := fmt.Sprintf("guest %s moved from the %s file to the %s file, but the host has it as %s; phoenix does not replace a guest by one of another kind: move it back, or destroy the %s first (%s destroy %s)", g.ID, was, g.Kind, was, was, tool(was), g.ID)
	now := r.now()
	if _, err := r.Status.Update(g.ID, was, func(s *api.Status) {
		s.Phase = api.PhaseFailed
		s.LastError = msg
		s.SetReady("False", api.ReasonFailed, msg, now)
	}); err != nil {
		return err
	}
	log.Error(errors.New(msg), "Refusing a guest that changed kind")
	return &api.InvalidError{Problems: []api.Problem{{File: g.File, Guest: g.ID.String(), Msg: msg}}}
}

func tool(k api.Kind) string {
	if k == api.KindVM {
		return "qm"
	}
	return "pct"
}
