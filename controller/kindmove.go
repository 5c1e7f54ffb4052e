package controller

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// refuseOtherKind stops a guest that is missing on the host as its kind
// while the host holds its ID as the other kind: it moved between the LXC
// and the VM file without a status file to tell (a fresh state dir, or a
// guest phoenix never made), or someone made it by hand. Nothing is done
// on the host; the guest's Ready condition says why, and the refusal holds
// until the files or the host change.
func (c *Controller) refuseOtherKind(ctx context.Context, log logr.Logger, g *api.Guest) error {
	prob, err := plan.OtherKind(ctx, c.host, g)
	if err != nil || prob == nil {
		return err
	}
	now := time.Now().UTC()
	if _, err := c.store.Update(g.ID, g.Kind, func(s *api.Status) {
		s.Phase = api.PhaseFailed
		s.LastError = prob.Msg
		s.SetReady("False", api.ReasonFailed, prob.Msg, now)
	}); err != nil {
		return err
	}
	log.Error(errors.New(prob.Msg), "Refusing a guest the host has as the other kind")
	return &api.InvalidError{Problems: []api.Problem{*prob}}
}
