package reconcilers

import (
	"context"
	"fmt"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// reconcileRemoved handles a guest of the reconciler's kind that left the
// files: a guest gone from the host too only loses its status file; one
// still there is marked Orphaned and left alone, or, when the PrunePolicy
// allows, stopped and destroyed.
func (r *reconciler) reconcileRemoved(ctx context.Context, id api.ID) (Result, error) {
	kind := r.kind
	log := r.Log.WithValues("guest", id, "kind", kind)
	unlock, err := r.Locks.Lock(ctx, id)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	_, exists, err := hypervisor.Probe(ctx, r.Host, kind, id)
	if err != nil {
		return Result{}, fmt.Errorf("look up %s %s: %w", kind, id, err)
	}
	if !exists {
		if err := r.Status.Delete(id); err != nil {
			return Result{}, err
		}
		log.Info("Guest left the files and is gone from the host; dropped its status")
		return Result{Forget: true}, nil
	}
	var res Result
	if r.Prune != nil {
		ok, wait := r.Prune.MayPrune(log, id)
		if ok {
			return r.prune(ctx, id)
		}
		res.RequeueAfter = wait
	}
	st, err := r.Status.Get(id, kind)
	if err == nil && st.Phase == api.PhaseOrphaned {
		return res, nil
	}
	now := r.now()
	if _, err := r.Status.Update(id, kind, func(s *api.Status) {
		s.Phase = api.PhaseOrphaned
		s.SetReady("False", api.ReasonOrphaned, "removed from the config files; phoenix leaves it alone (--prune deletes it)", now)
	}); err != nil {
		return res, err
	}
	log.Info("Guest left the files; marked Orphaned and left alone")
	return res, nil
}

// prune stops and destroys a guest that left the files, and drops its
// status. The caller holds the guest's lock; the PrunePolicy that allowed
// it logged why.
func (r *reconciler) prune(ctx context.Context, id api.ID) (Result, error) {
	log := r.Log.WithValues("guest", id, "kind", r.kind)
	runner := &Runner{Workflows: r.Workflows, Status: r.Status, Now: r.Now}
	a := &plan.Action{ID: id, Kind: r.kind, Action: plan.ActDelete, Reason: plan.ReasonTarget}
	obs := &observer{rec: r.Recorder, log: log}
	res := runner.Run(ctx, a, func(s plan.StepResult) { obs.StepDone(a, s) })
	r.Recorder.Pruned(r.kind, res.Err)
	if res.Err != nil {
		return Result{}, res.Err
	}
	log.Info("Pruned guest removed from the files")
	return Result{Forget: true}, nil
}
