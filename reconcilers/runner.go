package reconcilers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

// StatusWriter records guest status; status.Store implements it.
type StatusWriter interface {
	Update(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error)
	Delete(id api.ID) error
}

// noSyncWriter is a StatusWriter that can also write without waiting for
// the disk (status.Store does). The Provisioning mark is written that way:
// it must survive a killed process, so that the next run finishes the
// guest, but the status it replaces is as safe to come back after a power
// cut (it makes the next run re-check the guest too). So only the outcome
// of a workflow waits for the disk: one fsync per guest, not two.
type noSyncWriter interface {
	UpdateNoSync(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error)
}

// asyncWriter is a StatusWriter that can queue a write for a group commit
// (status.Store does). A workflow's outcome is written that way when the
// caller gave a status.Batch in the context: the caller then reports the
// work once the batch is on disk, and meanwhile goes on with other work,
// so that many outcomes share one commit. Without a batch (the CLI), the
// outcome is on disk before the action returns.
type asyncWriter interface {
	UpdateAsync(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, *status.Pending, error)
}

// Runner carries out plan actions on a host and records each guest's
// status as it goes. The CLI and the controller share it.
type Runner struct {
	Workflows *Workflows
	Config    *api.Config
	Status    StatusWriter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC()
}

// Run carries out one action; it is a RunFunc. A panic inside it fails
// the action and records its guest Failed with reason InternalError.
func (r *Runner) Run(ctx context.Context, a *plan.Action, report func(plan.StepResult)) (res plan.ActionResult) {
	defer func() {
		if v := recover(); v != nil {
			err := fmt.Errorf("%s %s %s: %w", a.Action, a.Kind, a.ID, plan.Recovered(v))
			if a.Guest != nil {
				now := r.now()
				r.record(a.Guest, func(st *api.Status) {
					st.Phase = api.PhaseFailed
					st.LastError = err.Error()
					st.SetReady("False", api.ReasonInternalError, err.Error(), now)
				})
			}
			res = plan.ActionResult{Result: plan.ResultFailed, Err: err}
		}
	}()
	host := r.Workflows.Host()
	switch a.Action {
	case plan.ActSkip:
		return plan.ActionResult{Result: plan.ResultSkipped}
	case plan.ActCreate:
		return r.create(ctx, a, report)
	case plan.ActStart:
		return r.simple(ctx, a, report, "start", func(g *hypervisor.Guest) (bool, error) {
			if g.Running {
				return false, nil
			}
			return true, host.Start(ctx, a.Kind, a.ID)
		})
	case plan.ActStop:
		return r.simple(ctx, a, report, "stop", func(g *hypervisor.Guest) (bool, error) {
			if !g.Running {
				return false, nil
			}
			return true, host.Stop(ctx, a.Kind, a.ID)
		})
	case plan.ActRestart:
		return r.simple(ctx, a, report, "restart", func(g *hypervisor.Guest) (bool, error) {
			if g.Running {
				if err := host.Stop(ctx, a.Kind, a.ID); err != nil {
					return true, err
				}
			}
			return true, host.Start(ctx, a.Kind, a.ID)
		})
	case plan.ActDelete:
		res := r.simple(ctx, a, report, "delete", func(g *hypervisor.Guest) (bool, error) {
			if g.Running {
				if err := host.Stop(ctx, a.Kind, a.ID); err != nil {
					return true, err
				}
			}
			return true, host.Destroy(ctx, a.Kind, a.ID)
		})
		if res.Err == nil && r.Status != nil {
			if err := r.Status.Delete(a.ID); err != nil {
				res.Result, res.Err = plan.ResultFailed, err
			}
		}
		return res
	}
	return plan.ActionResult{Result: plan.ResultFailed, Err: fmt.Errorf("unknown action %q", a.Action)}
}

// simple runs a one-step action on an existing guest.
func (r *Runner) simple(ctx context.Context, a *plan.Action, report func(plan.StepResult), name string, fn func(*hypervisor.Guest) (bool, error)) plan.ActionResult {
	t0 := time.Now()
	g, err := r.Workflows.Host().Get(ctx, a.Kind, a.ID)
	did := false
	if err == nil {
		did, err = fn(g)
	}
	s := plan.StepResult{Name: name, Result: plan.StepOK, Duration: time.Since(t0)}
	switch {
	case err != nil:
		s.Result, s.Err = plan.StepFailed, err
	case !did:
		s.Result = plan.StepUnchanged
	}
	if report != nil {
		report(s)
	}
	if err != nil {
		return plan.ActionResult{Result: plan.ResultFailed, Steps: []plan.StepResult{s}, Err: fmt.Errorf("%s %s %s: %w", name, a.Kind, a.ID, err)}
	}
	if !did {
		return plan.ActionResult{Result: plan.ResultSkipped, Steps: []plan.StepResult{s}}
	}
	return plan.ActionResult{Result: plan.ResultOK, Steps: []plan.StepResult{s}}
}

func (r *Runner) create(ctx context.Context, a *plan.Action, report func(plan.StepResult)) plan.ActionResult {
	g := a.Guest
	provisioning := func(st *api.Status) {
		st.Phase = api.PhaseProvisioning
		st.SetReady("False", api.ReasonProgressing, "running the create workflow", r.now())
	}
	var werr error
	if w, ok := r.Status.(noSyncWriter); ok {
		if _, err := w.UpdateNoSync(g.ID, g.Kind, provisioning); err != nil {
			werr = fmt.Errorf("save status of %s %s: %w", g.Kind, g.ID, err)
		}
	} else {
		werr = r.record(g, provisioning)
	}
	if werr != nil {
		// Nothing was done yet: better not to start than to build a
		// guest whose status then lies.
		return plan.ActionResult{Result: plan.ResultFailed, Err: werr}
	}
	steps, err := r.Workflows.Apply(ctx, r.Config, g, report)
	records := make([]api.StepRecord, len(steps))
	for i, s := range steps {
		records[i] = api.StepRecord{Name: s.Name, Result: s.Result, DurationMS: s.Duration.Milliseconds()}
		if s.Err != nil {
			records[i].Error = s.Err.Error()
		}
	}
	now := r.now()
	if err != nil {
		if werr := r.recordOutcome(ctx, g, func(st *api.Status) {
			st.Phase = api.PhaseFailed
			st.LastError = err.Error()
			st.LastSteps = records
			st.SetReady("False", api.ReasonFailed, err.Error(), now)
		}); werr != nil {
			err = errors.Join(err, werr)
		}
		return plan.ActionResult{Result: plan.ResultFailed, Steps: steps, Err: err}
	}
	if err := r.recordOutcome(ctx, g, func(st *api.Status) {
		st.Phase = api.PhaseReady
		st.ObservedSpecHash = g.Hash
		st.LastAppliedAt = &now
		st.LastError = ""
		st.LastSteps = records
		st.SetReady("True", api.ReasonSucceeded, "create workflow finished", now)
	}); err != nil {
		// The host has the guest, but nothing says so: a run reported as
		// a success would leave "Ready" unsaved and the next run blind.
		return plan.ActionResult{Result: plan.ResultFailed, Steps: steps, Err: err}
	}
	return plan.ActionResult{Result: plan.ResultOK, Steps: steps}
}

// recordOutcome records a workflow's outcome: queued in the context's
// status.Batch when there is one and the writer can queue, else on disk
// before it returns.
func (r *Runner) recordOutcome(ctx context.Context, g *api.Guest, fn func(*api.Status)) error {
	b := status.BatchFrom(ctx)
	w, ok := r.Status.(asyncWriter)
	if b == nil || !ok {
		return r.record(g, fn)
	}
	_, p, err := w.UpdateAsync(g.ID, g.Kind, fn)
	if err != nil {
		return fmt.Errorf("save status of %s %s: %w", g.Kind, g.ID, err)
	}
	if p != nil {
		b.Add(p)
	}
	return nil
}

// record updates a status. A status that cannot be saved fails the action:
// phoenix never reports a step done whose record is missing.
func (r *Runner) record(g *api.Guest, fn func(*api.Status)) error {
	if r.Status == nil {
		return nil
	}
	if _, err := r.Status.Update(g.ID, g.Kind, fn); err != nil {
		return fmt.Errorf("save status of %s %s: %w", g.Kind, g.ID, err)
	}
	return nil
}

// UpToDate reports whether a create action is no longer needed because
// another worker or process did it meanwhile: the guest exists, is Ready
// and has the current spec hash (or, for a dependency planned as existing,
// simply exists). Callers check it under the guest's lock, which is how two
// plans sharing a missing dependency create it once. The host has the last
// word: a clone source whose template snapshot is gone is not up to date,
// whatever its status says.
func UpToDate(ctx context.Context, host hypervisor.Host, st plan.StatusReader, a *plan.Action) (bool, error) {
	g, exists, err := hypervisor.Probe(ctx, host, a.Kind, a.ID)
	if err != nil || !exists {
		return false, err
	}
	if unfinished, err := plan.Unfinished(ctx, host, a.Guest, g); err != nil || unfinished {
		return false, err
	}
	if a.Reason == plan.ReasonExists {
		return true, nil
	}
	rec, err := st.Get(a.ID, a.Kind)
	if err != nil {
		return false, nil
	}
	return rec.Phase == api.PhaseReady && rec.ObservedSpecHash == a.Guest.Hash, nil
}
