package reconcilers

import (
	"context"
	"strings"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// driftPass reads an up-to-date guest in full and checks it for drift. A
// backend that lists the whole host cheaply (hypervisor.StateReader: the
// pve-api backend's one /cluster/resources request per pass) is not read
// guest by guest on every resync: there the pass stays at one request, and
// `phoenix diff` shows drift on demand (docs/controller.md, "Drift").
func (r *reconciler) driftPass(ctx context.Context, log logr.Logger, g *api.Guest, st *api.Status) error {
	if _, listed := r.Host.(hypervisor.StateReader); listed {
		return nil
	}
	cur, exists, err := hypervisor.Exists(ctx, r.Host, g.Kind, g.ID)
	if err != nil || !exists {
		// Gone since the probe: the next pass creates it again.
		return err
	}
	return r.checkDrift(log, g, cur, st)
}

// checkDrift compares a guest that is up to date with its spec against
// the host, as phoenix diff does, and reports keys changed behind
// phoenix's back: a log line naming them when they change, the Drifted
// condition, and the Recorder. It changes nothing on the host: repairing
// is a converge (or an edit of the files), so a hand-made change is never
// undone without someone asking.
func (r *reconciler) checkDrift(log logr.Logger, g *api.Guest, cur *hypervisor.Guest, st *api.Status) error {
	var keys []string
	for _, ch := range Changes(g, cur) {
		keys = append(keys, ch.Key)
	}
	r.Recorder.Drifted(g.ID, g.Kind, len(keys) > 0)
	status, reason, msg := "False", api.ReasonInSync, "the host matches the desired state"
	if len(keys) > 0 {
		status, reason = "True", api.ReasonHostDrift
		msg = "changed on the host: " + strings.Join(keys, ", ") + " (phoenix diff " + g.ID.String() + " shows how; phoenix converge " + g.ID.String() + " puts them back)"
	}
	prev := st.Condition(api.ConditionDrifted)
	if prev == nil && len(keys) == 0 {
		return nil // never drifted: no status write on every resync
	}
	if prev != nil && prev.Status == status && prev.Message == msg {
		return nil
	}
	if len(keys) > 0 {
		log.Info("Guest drifted on the host", "keys", keys)
	} else {
		log.Info("Guest no longer drifted on the host")
	}
	now := r.now()
	_, err := r.Status.Update(g.ID, g.Kind, func(s *api.Status) {
		s.SetCondition(api.ConditionDrifted, status, reason, msg, now)
	})
	return err
}

// clearDrift forgets a guest's drift once a workflow re-applied it.
func (r *reconciler) clearDrift(g *api.Guest) error {
	r.Recorder.Drifted(g.ID, g.Kind, false)
	st, err := r.Status.Get(g.ID, g.Kind)
	if err != nil {
		return err
	}
	if cond := st.Condition(api.ConditionDrifted); cond == nil || cond.Status != "True" {
		return nil
	}
	now := r.now()
	_, err = r.Status.Update(g.ID, g.Kind, func(s *api.Status) {
		s.SetCondition(api.ConditionDrifted, "False", api.ReasonInSync, "re-applied", now)
	})
	return err
}
