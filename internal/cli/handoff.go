package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/controller/statelock"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

// The one-writer rule. A running controller holds <state-dir>/controller.lock
// exclusively. Verbs that change guests (create, converge, start, stop,
// restart, delete, LetsGo, setup) hold it shared while they run, so any
// number of them may run side by side but never beside a controller: while
// one runs they refuse with exit 2, or with --wait-lock D wait up to D for it
// to stop. converge is the exception: it hands its request to the controller
// through the converge annotation (--handoff=false makes it refuse like the
// others). Read-only verbs (status, validate, graph) and --dry-run take no
// lock and always work.

// writerLock takes the state dir's lock for a verb that changes guests.
func (a *app) writerLock(ctx context.Context, verb string) (release func(), err error) {
	l, err := statelock.AcquireShared(ctx, a.opts.StateDir, a.opts.WaitLock)
	var held *statelock.HeldError
	if errors.As(err, &held) {
		if a.opts.WaitLock > 0 {
			return nil, usageErr("%s: gave up after --wait-lock %s: %v", verb, a.opts.WaitLock, held)
		}
		return nil, usageErr("%s refused: %v. While it runs the controller is the only writer: edit the JSON files (it follows them) or use phoenix converge; or pass --wait-lock DURATION to wait until it stops", verb, held)
	}
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release() }, nil
}

// bindWaitLock adds --wait-lock to a verb that changes guests.
func (a *app) bindWaitLock(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&a.opts.WaitLock, "wait-lock", 0, "when a phoenix controller runs on the state dir, wait up to this long for it to stop instead of refusing")
}

// handoffFlags are converge's flags for the hand-off to a controller.
type handoffFlags struct {
	enabled bool
	noWait  bool
	timeout time.Duration
}

// handOffConverge makes converge hand its request to a running controller.
func (a *app) handOffConverge(cmd *cobra.Command) {
	h := &handoffFlags{}
	cmd.Flags().BoolVar(&h.enabled, "handoff", true, "when a phoenix controller runs on the state dir, ask it to converge (set the converge annotation) instead of refusing")
	cmd.Flags().BoolVar(&h.noWait, "no-wait", false, "with a controller: return as soon as the request is written")
	cmd.Flags().DurationVar(&h.timeout, "timeout", 10*time.Minute, "with a controller: how long to wait for it to handle the request")
	inner := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if a.opts.DryRun || !h.enabled {
			return inner(cmd, args)
		}
		holder, running, err := statelock.Running(a.opts.StateDir)
		if err != nil || !running {
			return inner(cmd, args)
		}
		return a.handOff(cmd.Context(), args, holder, h)
	}
}

// handOff sets the converge annotation of each target to a fresh token and
// waits until the controller records that token as handled.
func (a *app) handOff(ctx context.Context, args []string, holder statelock.Holder, h *handoffFlags) error {
	cfg, err := a.loadConfig("converge")
	if err != nil {
		return err
	}
	targets, err := parseTargets(cfg, args)
	if err != nil {
		a.fail("converge", err)
		return err
	}
	who := "the phoenix controller"
	if holder.PID > 0 {
		who = fmt.Sprintf("the phoenix controller (pid %d)", holder.PID)
	}
	if holder.ConfigDir != "" && !sameDir(holder.ConfigDir, cfg.Dir) {
		err := usageErr("converge: %s on this state dir watches %s, not %s; run converge with --config-dir %s", who, holder.ConfigDir, cfg.Dir, holder.ConfigDir)
		a.fail("converge", err)
		return err
	}
	st, err := status.NewStore(filepath.Join(a.opts.StateDir, "status"))
	if err != nil {
		return err
	}
	guests := make([]*api.Guest, len(targets))
	before := make([]string, len(targets))
	for i, id := range targets {
		guests[i] = cfg.Guest(id)
		if s, err := st.Get(id, guests[i].Kind); err == nil {
			before[i] = s.LastHandledConvergeAt
		}
	}
	token := convergeToken()
	requested := time.Now()
	if err := controller.RequestConverge(guests, token); err != nil {
		return fmt.Errorf("converge: hand-off to %s: %w", who, err)
	}
	// In json mode stdout carries only the result document.
	var note io.Writer = a.stdout
	if a.opts.Output == "json" {
		note = a.stderr
	}
	fmt.Fprintf(note, "converge: handed off to %s: %s=%s on %v\n", who, api.ConvergeAnnotation, token, targets)
	if h.noWait {
		fmt.Fprintf(note, "converge: not waiting; follow it with phoenix status\n")
		return nil
	}
	start := time.Now()
	deadline := time.NewTimer(h.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	final := make([]*api.Status, len(targets))
	for {
		done := true
		for i, id := range targets {
			if final[i] != nil {
				continue
			}
			s, err := st.Get(id, cfg.Guest(id).Kind)
			// Provisioning: a retry began after the converge was handled;
			// its end is the outcome.
			if err == nil && handled(s.LastHandledConvergeAt, before[i], token) && s.Phase != api.PhaseProvisioning {
				final[i] = s
				continue
			}
			done = false
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("converge: stopped waiting (%v); %s will still converge %v", ctx.Err(), who, targets)
		case <-deadline.C:
			return fmt.Errorf("converge: timed out after %s waiting for %s to converge %v (token %s); it may still be queued or running: see phoenix status", h.timeout, who, targets, token)
		case <-tick.C:
			if _, running, err := statelock.Running(a.opts.StateDir); err == nil && !running {
				return fmt.Errorf("converge: %s stopped before it handled the request for %v; the annotation stays and the next controller will converge", who, targets)
			}
		}
	}
	return a.reportHandOff(cfg, st, targets, final, requested, time.Since(start))
}

// handled reports whether the recorded token covers ours: the same token,
// or a newly recorded later timestamp (a newer request, converged after
// ours was made).
func handled(recorded, before, token string) bool {
	if recorded == token {
		return true
	}
	if recorded == before {
		return false
	}
	r, err1 := time.Parse(time.RFC3339Nano, recorded)
	t, err2 := time.Parse(time.RFC3339Nano, token)
	return err1 == nil && err2 == nil && !r.Before(t)
}

// reportHandOff reports what the controller did for the request: in text,
// one line per target; in json, the same document a run without the
// controller prints, with every action of the converged chains, each with
// the steps the controller recorded in the guest's status.
func (a *app) reportHandOff(cfg *api.Config, st *status.Store, targets []api.ID, final []*api.Status, requested time.Time, elapsed time.Duration) error {
	failed := false
	for i, id := range targets {
		s := final[i]
		if s.Phase == api.PhaseFailed {
			failed = true
		}
		if a.opts.Output == "text" {
			if s.LastError != "" && s.Phase == api.PhaseFailed {
				fmt.Fprintf(a.stdout, "converge %s: %s: %s\n", id, a.colors().red(string(s.Phase)), s.LastError)
			} else {
				fmt.Fprintf(a.stdout, "converge %s: %s (%s)\n", id, s.Phase, elapsed.Round(time.Millisecond))
			}
		}
	}
	if a.opts.Output == "json" {
		p := plan.Converge(cfg, targets)
		out := &plan.Outcome{Plan: p, Results: make([]plan.ActionResult, len(p.Actions)), Elapsed: elapsed}
		for i, act := range p.Actions {
			s := finalFor(targets, final, act.ID)
			if s == nil {
				s, _ = st.Get(act.ID, act.Kind)
			}
			out.Results[i] = handedOffResult(s, requested, failed)
		}
		out.CriticalPath = plan.CriticalPath(p, out.Results)
		if err := a.writeJSON(plan.Doc(p, out)); err != nil {
			return err
		}
	}
	if failed {
		return errFailed
	}
	return nil
}

func finalFor(targets []api.ID, final []*api.Status, id api.ID) *api.Status {
	for i, t := range targets {
		if t == id {
			return final[i]
		}
	}
	return nil
}

// handedOffResult reads one action's result from the status the controller
// recorded: failed, applied since the request (ok, with its steps), or else
// not run for this request: cancelled when the chain failed, skipped when
// it did not.
func handedOffResult(s *api.Status, requested time.Time, chainFailed bool) plan.ActionResult {
	if s == nil {
		s = &api.Status{}
	}
	r := plan.ActionResult{Result: plan.ResultSkipped}
	switch {
	case s.Phase == api.PhaseFailed:
		r.Result, r.Err = plan.ResultFailed, errors.New(s.LastError)
	case s.LastAppliedAt != nil && !s.LastAppliedAt.Before(requested):
		r.Result = plan.ResultOK
	case chainFailed:
		r.Result = plan.ResultCancelled
		return r
	default:
		return r
	}
	for _, rec := range s.LastSteps {
		d := time.Duration(rec.DurationMS) * time.Millisecond
		sr := plan.StepResult{Name: rec.Name, Result: rec.Result, Duration: d}
		if rec.Error != "" {
			sr.Err = errors.New(rec.Error)
		}
		r.Steps = append(r.Steps, sr)
		r.Duration += d
	}
	return r
}

func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		aa, _ := filepath.Abs(a)
		bb, _ := filepath.Abs(b)
		return aa == bb
	}
	ra, _ = filepath.Abs(ra)
	rb, _ = filepath.Abs(rb)
	return ra == rb
}
