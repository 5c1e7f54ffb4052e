package reconcilers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// preflight checks, before a reconcile touches the host, that every script
// the plan's workflows will run exists and may be run, as the CLI does: a
// missing script would otherwise be found after define, start and snapshot
// had already run. On a problem the guest's Ready condition says
// ScriptsMissing naming each script (and the guest that needs it, for a
// dependency in the plan), the error is returned for the log and the
// failed-reconcile metric, and the reconcile is retried with backoff, so a
// script put in place is picked up without a restart. The scripts folder
// is looked at afresh each time (Deps.Scripts), as the workflows do.
func (r *reconciler) preflight(log logr.Logger, cfg *api.Config, g *api.Guest, p *plan.Plan) error {
	if r.Scripts == nil {
		return nil
	}
	scripts := r.Scripts()
	var lines []string
	seen := map[api.ID]bool{}
	for _, a := range p.Actions {
		if a.Action != plan.ActCreate || seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		for _, err := range scripts.Needed(cfg, a.Guest) {
			if a.ID == g.ID {
				lines = append(lines, err.Error())
			} else {
				lines = append(lines, fmt.Sprintf("%s %s (needed first): %v", a.Kind, a.ID, err))
			}
		}
	}
	if len(lines) == 0 {
		return nil
	}
	msg := fmt.Sprintf("preflight: %d script problem(s) in %s; nothing was done on the host: %s", len(lines), scripts.Dir, strings.Join(lines, "; "))
	now := r.now()
	if _, err := r.Status.Update(g.ID, g.Kind, func(s *api.Status) {
		s.Phase = api.PhaseFailed
		s.LastError = msg
		s.SetReady("False", api.ReasonScriptsMissing, msg, now)
	}); err != nil {
		return errors.Join(errors.New(msg), err)
	}
	err := fmt.Errorf("%s %s: %s", g.Kind, g.ID, msg)
	log.Error(err, "Preflight refused the guest's scripts", "problems", len(lines))
	return err
}

// refuseOtherKind stops a guest that is missing on the host as its kind
// while the host holds its ID as the other kind: it moved between the LXC
// and the VM file without a status file to tell (a fresh state dir, or a
// guest phoenix never made), or someone made it by hand. Nothing is done
// on the host; the guest's Ready condition says why, and the refusal holds
// until the files or the host change.
func (r *reconciler) refuseOtherKind(ctx context.Context, log logr.Logger, g *api.Guest) error {
	prob, err := plan.OtherKind(ctx, r.Host, g)
	if err != nil || prob == nil {
		return err
	}
	now := r.now()
	if _, err := r.Status.Update(g.ID, g.Kind, func(s *api.Status) {
		s.Phase = api.PhaseFailed
		s.LastError = prob.Msg
		s.SetReady("False", api.ReasonFailed, prob.Msg, now)
	}); err != nil {
		return err
	}
	log.Error(errors.New(prob.Msg), "Refusing a guest the host has as the other kind")
	return &api.InvalidError{Problems: []api.Problem{*prob}}
}
