package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// Reconciler reconciles one guest of one kind; reconcilers.LXC and
// reconcilers.VM implement it.
type Reconciler interface {
	Reconcile(ctx context.Context, req reconcilers.Request) (reconcilers.Result, error)
}

// newReconcilers builds the reconciler of each kind on the controller's
// host, status store, locks and metrics.
func (c *Controller) newReconcilers() map[api.Kind]Reconciler {
	d := reconcilers.Deps{
		Host:      c.host,
		Status:    c.store,
		Phases:    bookStatus{c.book, c.store},
		Workflows: c.flows,
		Locks:     c.locks,
		Desired:   c,
		Recorder:  recorder{c},
		Scripts: func() reconcilers.Scripts {
			return reconcilers.DetectScripts(c.opts.ConfigDir, c.opts.ScriptsDir)
		},
		Parallel: c.opts.Parallel,
		Log:      c.log,
	}
	if c.opts.Prune {
		d.Prune = prunePolicy{c}
	}
	return map[api.Kind]Reconciler{
		api.KindLXC: reconcilers.NewLXC(d),
		api.KindVM:  reconcilers.NewVM(d),
	}
}

// reconcile hands one guest to the reconciler of its kind (its kind in the
// files, or, for a guest that left them, the kind it had) and returns that
// kind, for metrics. What the result asks of the loop is done here.
func (c *Controller) reconcile(ctx context.Context, id api.ID) (api.Kind, error) {
	var kind api.Kind
	if g := c.cfg.Load().Guest(id); g != nil {
		kind = g.Kind
	} else {
		c.mu.Lock()
		k, ok := c.removed[id]
		c.mu.Unlock()
		if !ok {
			return "", nil
		}
		kind = k
	}
	r, ok := c.reconcilers[kind]
	if !ok {
		return kind, fmt.Errorf("guest %s: no reconciler for kind %q", id, kind)
	}
	res, err := r.Reconcile(ctx, reconcilers.Request{ID: id})
	if res.Forget {
		c.forget(id, kind)
	}
	if res.Requeue {
		c.queue.Add(id)
	}
	if res.RequeueAfter > 0 {
		c.queue.AddAfter(id, res.RequeueAfter)
	}
	return kind, err
}

// forget drops what the loop keeps about a guest that left the files and
// is gone from the host.
func (c *Controller) forget(id api.ID, kind api.Kind) {
	c.mu.Lock()
	delete(c.removed, id)
	delete(c.removedAt, id)
	c.mu.Unlock()
	c.book.remove(id)
	c.metrics.DriftedGuests.WithLabelValues(string(kind)).Set(float64(c.drift.set(id, kind, false)))
}

// recorder feeds the reconcilers' reports to the controller's metrics.
type recorder struct{ c *Controller }

var _ reconcilers.Recorder = recorder{}

func (r recorder) ConvergeStarted(api.Kind) { r.c.metrics.ConvergeTotal.Inc() }

func (r recorder) StepDone(kind api.Kind, step string, d time.Duration) {
	r.c.metrics.StepDuration.WithLabelValues(string(kind), step).Observe(d.Seconds())
}

func (r recorder) Drifted(id api.ID, kind api.Kind, drifted bool) {
	r.c.metrics.DriftedGuests.WithLabelValues(string(kind)).Set(float64(r.c.drift.set(id, kind, drifted)))
}

func (r recorder) Pruned(_ api.Kind, err error) {
	result := metrics.ResultSuccess
	if err != nil {
		result = metrics.ResultError
	}
	r.c.metrics.PrunesTotal.WithLabelValues(result).Inc()
}
