package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// Why a guest is reconciled, for logs.
const (
	whyConverge    = "converge requested"
	whyMissing     = "missing on the host"
	whySpecChanged = "spec changed"
	whyNotReady    = "not ready"
)

// reconcile brings one guest in line with the last valid desired state and
// returns its kind (for metrics). In order:
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
func (c *Controller) reconcile(ctx context.Context, id api.ID) (api.Kind, error) {
	cfg := c.cfg.Load()
	g := cfg.Guest(id)
	if g == nil {
		return c.reconcileRemoved(ctx, id)
	}
	log := c.log.WithValues("guest", id, "kind", g.Kind)
	st, err := c.store.Get(id, g.Kind)
	if err != nil {
		log.Error(err, "Unreadable status; treating the guest as never applied")
		st = &api.Status{ID: id.String(), Kind: g.Kind, Phase: api.PhasePending}
	}
	if st.Kind != "" && st.Kind != g.Kind {
		if err := c.refuseKindMove(ctx, log, g, st.Kind); err != nil {
			return g.Kind, err
		}
	}
	// Existence only: a guest that needs no work costs no config read.
	_, exists, err := hypervisor.Probe(ctx, c.host, g.Kind, id)
	if err != nil {
		return g.Kind, fmt.Errorf("look up %s %s: %w", g.Kind, id, err)
	}
	if !exists {
		if err := c.refuseOtherKind(ctx, log, g); err != nil {
			return g.Kind, err
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
		p, err = plan.Create(ctx, cfg, []api.ID{id}, plan.HostLookup(c.host, cfg, bookStatus{c.book, c.store}))
		if err != nil {
			return g.Kind, err
		}
		why = whyMissing
		if exists {
			why = whyNotReady
		}
	case st.ObservedSpecHash != g.Hash:
		p, why = plan.Apply(cfg, []api.ID{id}), whySpecChanged
	default:
		log.V(1).Info("Guest is up to date")
		return g.Kind, c.driftPass(ctx, log, g, st)
	}
	if err := c.preflight(log, g, p); err != nil {
		return g.Kind, err
	}
	if !converge {
		waitForExisting(p)
	} else {
		c.metrics.ConvergeTotal.Inc()
	}
	log.Info("Reconciling guest", "reason", why, "actions", len(p.Actions), "phase", st.Phase)

	runner := &reconcilers.Runner{Workflows: c.flows, Config: cfg, Status: c.store}
	start := time.Now()
	out := plan.Execute(ctx, p, c.opts.Parallel, c.runAction(runner, converge), &observer{c: c, log: log})
	if ctx.Err() != nil {
		return g.Kind, ctx.Err()
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
		now := time.Now().UTC()
		if _, werr := c.store.Update(id, g.Kind, func(s *api.Status) {
			if converge {
				s.LastHandledConvergeAt = token
			}
			if targetCancelled {
				s.Phase = api.PhaseFailed
				s.LastError = err.Error()
				s.SetReady("False", api.ReasonFailed, err.Error(), now)
			}
		}); werr != nil {
			return g.Kind, errors.Join(err, werr)
		}
	}
	if err != nil {
		return g.Kind, err
	}
	if err := c.clearDrift(g); err != nil {
		return g.Kind, err
	}
	log.Info("Reconciled guest", "reason", why, "duration", time.Since(start).Round(time.Millisecond).String())
	return g.Kind, nil
}

// waitForExisting turns a create plan's "skip, exists" actions into ones
// the controller runs: under the guest's lock, so that a dependency
// another worker is building right now is finished before its dependents
// use it. runAction skips them once they hold the lock.
func waitForExisting(p *plan.Plan) {
	for _, a := range p.Actions {
		if a.Action == plan.ActSkip && a.Reason == plan.ReasonExists {
			a.Action = plan.ActCreate
		}
	}
}

// runAction runs plan actions the controller's way: each under its
// guest's lock, and, unless converging, a create is skipped when another
// worker already did it while this one waited (the guest exists, is Ready
// and has the current spec hash). That is how two guests sharing a missing
// dependency create it once.
func (c *Controller) runAction(runner *reconcilers.Runner, converge bool) plan.RunFunc {
	return func(ctx context.Context, a *plan.Action, report func(plan.StepResult)) plan.ActionResult {
		unlock, err := c.locks.Lock(ctx, a.ID)
		if err != nil {
			return plan.ActionResult{Result: plan.ResultCancelled, Err: fmt.Errorf("%s %s: %w", a.Action, a.ID, err)}
		}
		defer unlock()
		if !converge && a.Action == plan.ActCreate {
			done, err := c.upToDate(ctx, a)
			if err != nil {
				return plan.ActionResult{Result: plan.ResultFailed, Err: fmt.Errorf("look up %s %s: %w", a.Kind, a.ID, err)}
			}
			if done {
				return plan.ActionResult{Result: plan.ResultSkipped}
			}
		}
		return runner.Run(ctx, a, report)
	}
}

// upToDate re-checks, under the guest's lock, whether a create is still
// needed.
func (c *Controller) upToDate(ctx context.Context, a *plan.Action) (bool, error) {
	return reconcilers.UpToDate(ctx, c.host, c.store, a)
}

// reconcileRemoved handles a guest that left the files: a guest gone from
// the host too only loses its status file; one still there is marked
// Orphaned and left alone, or with --prune stopped and destroyed.
func (c *Controller) reconcileRemoved(ctx context.Context, id api.ID) (api.Kind, error) {
	c.mu.Lock()
	kind, ok := c.removed[id]
	c.mu.Unlock()
	if !ok {
		return "", nil
	}
	log := c.log.WithValues("guest", id, "kind", kind)
	unlock, err := c.locks.Lock(ctx, id)
	if err != nil {
		return kind, err
	}
	defer unlock()
	_, exists, err := hypervisor.Probe(ctx, c.host, kind, id)
	if err != nil {
		return kind, fmt.Errorf("look up %s %s: %w", kind, id, err)
	}
	forget := func() {
		c.mu.Lock()
		delete(c.removed, id)
		c.mu.Unlock()
		c.book.remove(id)
		c.metrics.DriftedGuests.WithLabelValues(string(kind)).Set(float64(c.drift.set(id, kind, false)))
	}
	switch {
	case !exists:
		if err := c.store.Delete(id); err != nil {
			return kind, err
		}
		forget()
		log.Info("Guest left the files and is gone from the host; dropped its status")
		return kind, nil
	case c.opts.Prune && c.pruneAllowed(log, id):
		runner := &reconcilers.Runner{Workflows: c.flows, Status: c.store}
		a := &plan.Action{ID: id, Kind: kind, Action: plan.ActDelete, Reason: plan.ReasonTarget}
		log.Info("Pruning guest removed from the files", "absentFor", c.absentFor(id).Round(time.Second).String())
		r := runner.Run(ctx, a, func(s plan.StepResult) { (&observer{c: c, log: log}).StepDone(a, s) })
		if r.Err != nil {
			c.metrics.PrunesTotal.WithLabelValues(metrics.ResultError).Inc()
			return kind, r.Err
		}
		c.metrics.PrunesTotal.WithLabelValues(metrics.ResultSuccess).Inc()
		forget()
		c.mu.Lock()
		delete(c.removedAt, id)
		c.mu.Unlock()
		log.Info("Pruned guest removed from the files")
		return kind, nil
	}
	st, err := c.store.Get(id, kind)
	if err == nil && st.Phase == api.PhaseOrphaned {
		c.book.set(id, kind, api.PhaseOrphaned)
		return kind, nil
	}
	now := time.Now().UTC()
	if _, err := c.store.Update(id, kind, func(s *api.Status) {
		s.Phase = api.PhaseOrphaned
		s.SetReady("False", api.ReasonOrphaned, "removed from the config files; phoenix leaves it alone (--prune deletes it)", now)
	}); err != nil {
		return kind, err
	}
	log.Info("Guest left the files; marked Orphaned and left alone")
	return kind, nil
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

// observer logs actions and feeds phoenix_step_duration_seconds.
type observer struct {
	c   *Controller
	log logr.Logger
}

var _ plan.Observer = (*observer)(nil)

func (o *observer) ActionStarted(a *plan.Action) {
	o.log.V(1).Info("Action started", "action", a.Action, "id", a.ID, "reason", a.Reason)
}

func (o *observer) StepDone(a *plan.Action, s plan.StepResult) {
	if s.Result != plan.StepSkipped {
		o.c.metrics.StepDuration.WithLabelValues(string(a.Kind), s.Name).Observe(s.Duration.Seconds())
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

// absentFor is how long a removed guest has been gone from the files.
func (c *Controller) absentFor(id api.ID) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.removedAt[id]
	if !ok {
		return 0
	}
	return time.Since(at)
}

// pruneAllowed reports whether --prune may destroy id now: it has been gone
// from a present, valid file for --prune-grace, and no more guests are
// waiting to be pruned than --prune-max (a file emptied by accident must
// not take every guest with it). When not, the guest is marked Orphaned
// like without --prune and, within the grace, queued again for its end.
func (c *Controller) pruneAllowed(log logr.Logger, id api.ID) bool {
	if wait := c.opts.PruneGrace - c.absentFor(id); wait > 0 {
		log.Info("Guest left the files; pruning it once the grace has passed", "in", wait.Round(time.Second).String())
		c.queue.AddAfter(id, wait)
		return false
	}
	c.mu.Lock()
	n := len(c.removed)
	c.mu.Unlock()
	if c.opts.PruneMax > 0 && n > c.opts.PruneMax {
		c.metrics.PrunesTotal.WithLabelValues(metrics.ResultRefused).Inc()
		log.Error(fmt.Errorf("%d guests left the files, more than --prune-max %d", n, c.opts.PruneMax),
			"Not pruning; check the files, then raise --prune-max (0: no bound) to prune them all")
		return false
	}
	return true
}

// refuseKindMove stops a guest ID that moved between the LXC and the VM
// file while the host still has the guest of the old kind: acting on it
// would destroy one guest to build another under its ID. The status keeps
// the old kind, so the refusal holds until the ID moves back or the old
// guest is gone.
func (c *Controller) refuseKindMove(ctx context.Context, log logr.Logger, g *api.Guest, was api.Kind) error {
	_, exists, err := hypervisor.Exists(ctx, c.host, was, g.ID)
	if err != nil {
		return fmt.Errorf("look up %s %s: %w", was, g.ID, err)
	}
	if !exists {
		return nil
	}
	msg := fmt.Sprintf("guest %s moved from the %s file to the %s file, but the host has it as %s; phoenix does not replace a guest by one of another kind: move it back, or destroy the %s first (%s destroy %s)", g.ID, was, g.Kind, was, was, tool(was), g.ID)
	now := time.Now().UTC()
	if _, err := c.store.Update(g.ID, was, func(s *api.Status) {
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
