package reconcilers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// outcome is what a step function reports when it succeeds.
type outcome string

const (
	changed   outcome = plan.StepOK
	unchanged outcome = plan.StepUnchanged
	skipped   outcome = plan.StepSkipped
)

// step is one named, idempotent part of a workflow.
type step struct {
	name string
	fn   func(ctx context.Context, r *run) (outcome, error)
}

// run is the state one workflow run shares between its steps.
type run struct {
	w   *Workflows
	cfg *api.Config
	g   *api.Guest
	cur *hypervisor.Guest
	// started: this run started the guest (to provision it).
	started bool
}

// guest returns the guest as the host has it now, reading it again after a
// step changed it.
func (r *run) guest(ctx context.Context) (*hypervisor.Guest, error) {
	if r.cur != nil {
		return r.cur, nil
	}
	cur, err := r.w.host.Get(ctx, r.g.Kind, r.g.ID)
	if err != nil {
		return nil, err
	}
	r.cur = cur
	return cur, nil
}

// changed marks the cached host view stale.
func (r *run) changed() { r.cur = nil }

// Workflows runs the create workflows of both kinds against one host.
type Workflows struct {
	host    hypervisor.Host
	scripts Scripts
	// clones serializes clones per source: Proxmox locks the source for the
	// whole clone, so a second clone from it at once fails with "CT is
	// locked (disk)"; waiting here is cheaper than failing and retrying.
	clones lock.Keyed[api.ID]
}

// NewWorkflows returns the workflows for host, with scripts resolved in
// scripts.
func NewWorkflows(host hypervisor.Host, scripts Scripts) *Workflows {
	return &Workflows{host: host, scripts: scripts}
}

// Host is the host the workflows drive.
func (w *Workflows) Host() hypervisor.Host { return w.host }

// Apply runs the guest's full create workflow, calling report after each
// step. It stops at the first failing step; the error names the guest and
// the step.
func (w *Workflows) Apply(ctx context.Context, cfg *api.Config, g *api.Guest, report func(plan.StepResult)) ([]plan.StepResult, error) {
	steps := lxcSteps
	if g.Kind == api.KindVM {
		steps = vmSteps
	}
	r := &run{w: w, cfg: cfg, g: g}
	results := make([]plan.StepResult, 0, len(steps))
	for _, s := range steps {
		start := time.Now()
		out, err := s.fn(ctx, r)
		res := plan.StepResult{Name: s.name, Result: string(out), Duration: time.Since(start)}
		if err != nil {
			res.Result, res.Err = plan.StepFailed, err
		}
		results = append(results, res)
		if report != nil {
			report(res)
		}
		if err != nil {
			return results, &StepError{Guest: g.ID, Kind: g.Kind, Step: s.name, Err: err}
		}
	}
	return results, nil
}

// StepError is a failed workflow step.
type StepError struct {
	Guest api.ID
	Kind  api.Kind
	Step  string
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s %s: step %s: %v", e.Kind, e.Guest, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// FailedStep returns the name of the step an error came from, or "".
func FailedStep(err error) string {
	var se *StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return ""
}

// setDiff returns the keys of want whose value differs on the host, plus
// (as empty values, meaning delete) the keys of the families phoenix owns
// (mp0.., dev0..) that the host has and want does not.
func setDiff(have, want map[string]string, owned func(key string) bool) map[string]string {
	diff := map[string]string{}
	for k, v := range want {
		if !sameValue(k, have[k], v) {
			diff[k] = v
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok && owned != nil && owned(k) {
			diff[k] = ""
		}
	}
	return diff
}

// applyConfig sets what differs between the host and want.
func (r *run) applyConfig(ctx context.Context, want map[string]string, owned func(string) bool) (outcome, error) {
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	diff := setDiff(cur.Config, want, owned)
	if len(diff) == 0 {
		return unchanged, nil
	}
	if err := r.w.host.Set(ctx, r.g.Kind, r.g.ID, diff); err != nil {
		return "", err
	}
	r.changed()
	return changed, nil
}

func (r *run) start(ctx context.Context) (outcome, error) {
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	if cur.Running {
		return unchanged, nil
	}
	if err := r.w.host.Start(ctx, r.g.Kind, r.g.ID); err != nil {
		return "", err
	}
	r.started = true
	r.changed()
	return changed, nil
}

// stopUnlessBoot stops a guest with start_at_boot false (typically a clone
// source) that the workflow started only to provision it, so that it ends
// as it would after a reboot of the host, holding no GPU or memory. A
// guest that was already running is left running. A converge of it runs
// its features again, so it is started and stopped again each time.
func stopUnlessBoot(ctx context.Context, r *run) (outcome, error) {
	if r.g.StartsAtBoot() || !r.started {
		return skipped, nil
	}
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	if !cur.Running {
		return unchanged, nil
	}
	if err := r.w.host.Stop(ctx, r.g.Kind, r.g.ID); err != nil {
		return "", err
	}
	r.changed()
	return changed, nil
}

func (r *run) snapshot(ctx context.Context, name string) (outcome, error) {
	if name == "" {
		return skipped, nil
	}
	cur, err := r.guest(ctx)
	if err != nil {
		return "", err
	}
	if cur.HasSnapshot(name) {
		return unchanged, nil
	}
	if err := r.w.host.Snapshot(ctx, r.g.Kind, r.g.ID, name); err != nil {
		return "", err
	}
	r.changed()
	return changed, nil
}

func (r *run) features(ctx context.Context) (outcome, error) {
	scripts, err := r.w.scripts.Features(r.cfg, r.g)
	if err != nil {
		return "", err
	}
	if len(scripts) == 0 {
		return skipped, nil
	}
	for _, sc := range scripts {
		if err := r.runScript(ctx, sc); err != nil {
			return "", err
		}
	}
	return changed, nil
}

func (r *run) runScript(ctx context.Context, s hypervisor.Script) error {
	if err := r.w.host.Run(ctx, r.g.Kind, r.g.ID, s); err != nil {
		return fmt.Errorf("%s script %s: %w", s.Kind, s.Name, err)
	}
	return nil
}

// define clones the guest from its source or creates it from scratch.
func (r *run) define(ctx context.Context, create func(ctx context.Context) error) (outcome, error) {
	cur, exists, err := hypervisor.Exists(ctx, r.w.host, r.g.Kind, r.g.ID)
	if err != nil {
		return "", err
	}
	if exists {
		r.cur = cur
		return unchanged, nil
	}
	if src := r.g.CloneSource(); src != 0 {
		source := r.cfg.Guest(src)
		spec := hypervisor.CloneSpec{Name: r.g.Spec.Name}
		if source != nil && !source.Spec.IsTemplate {
			spec.Snapshot = source.Spec.TemplateSnapshotName
		}
		unlock, err := r.w.clones.Lock(ctx, src)
		if err != nil {
			return "", fmt.Errorf("clone %s from %s: wait for other clones of %s: %w", r.g.ID, src, src, err)
		}
		// The lock is released by defer: a panic in Clone, recovered as a
		// failed action, must not leave every later clone of src waiting.
		err = func() error {
			defer unlock()
			return r.w.host.Clone(ctx, r.g.Kind, src, r.g.ID, spec)
		}()
		if err != nil {
			return "", fmt.Errorf("clone %s from %s: %w", r.g.ID, src, err)
		}
	} else if err := create(ctx); err != nil {
		return "", fmt.Errorf("create %s: %w", r.g.ID, err)
	}
	r.changed()
	return changed, nil
}
