package reconcilers

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// Request names the guest to reconcile, as controller-runtime's
// reconcile.Request names an object: the reconciler reads everything else
// (its spec, its status, the host) itself.
type Request struct {
	ID api.ID
}

// Result tells the loop what to do with the guest next.
type Result struct {
	// Requeue asks for the guest again now: its kind changed since it was
	// queued, so the other kind's reconciler is the one to run.
	Requeue bool
	// RequeueAfter, when positive, asks for the guest again after this
	// long: a prune waiting out its grace.
	RequeueAfter time.Duration
	// Forget: the guest left the files and is gone from the host (or was
	// pruned). The loop drops what it keeps about it.
	Forget bool
}

// StatusStore is the per-guest status record a reconciler reads and writes;
// status.Store implements it.
type StatusStore interface {
	plan.StatusReader
	StatusWriter
}

// Locker serializes work on one guest across concurrent reconciles;
// *lock.Keyed[api.ID] implements it. The reconcilers of both kinds must
// share one: a chain can cross kinds.
type Locker interface {
	Lock(ctx context.Context, id api.ID) (unlock func(), err error)
	// RLock is shared with other RLocks: checking a guest that exists.
	RLock(ctx context.Context, id api.ID) (unlock func(), err error)
}

// DesiredState gives the desired state in force: the last valid one
// loaded.
type DesiredState interface {
	Desired() *api.Config
}

// Recorder hears what reconciles did, for metrics. The controller feeds
// Prometheus with it; reconcilers do not import the metrics package.
type Recorder interface {
	// ConvergeStarted: a new converge token started a full-chain converge.
	ConvergeStarted(kind api.Kind)
	// StepDone: a workflow step ran (it was not skipped) and took d.
	StepDone(kind api.Kind, step string, d time.Duration)
	// Drifted: whether the guest differs on the host from its spec now.
	Drifted(id api.ID, kind api.Kind, drifted bool)
	// Pruned: a guest that left the files was destroyed (err nil), or
	// destroying it failed.
	Pruned(kind api.Kind, err error)
}

// PrunePolicy decides when a guest that left the files, and that the host
// still has, may be destroyed. How long it has been gone and how many are
// waiting are the loop's knowledge, not a single guest's.
type PrunePolicy interface {
	// MayPrune reports whether id may be destroyed now; when not, a
	// positive wait asks for it again after that long, and the guest is
	// marked Orphaned meanwhile.
	MayPrune(log logr.Logger, id api.ID) (ok bool, wait time.Duration)
}

// Deps are what a reconciler works with. Host, Status, Workflows, Locks and
// Desired are required.
type Deps struct {
	Host hypervisor.Host
	// Status is where every status read and write of a reconcile goes.
	Status StatusStore
	// Phases answers planning's reads of the dependencies' phases (the
	// controller answers them from memory); nil reads Status.
	Phases    plan.StatusReader
	Workflows *Workflows
	Locks     Locker
	Desired   DesiredState
	// Prune nil leaves guests that left the files Orphaned (no --prune).
	Prune PrunePolicy
	// Recorder nil records nothing.
	Recorder Recorder
	// Scripts gives the scripts folder as it is now, for the preflight
	// before a plan runs; nil skips the preflight.
	Scripts func() Scripts
	// Parallel bounds how many actions of one plan run at once.
	Parallel int
	Log      logr.Logger
	// Now is the clock of status timestamps; nil is time.Now in UTC.
	Now func() time.Time
}

// LXC reconciles one container at a time.
type LXC struct{ r *reconciler }

// NewLXC returns the container reconciler working with d.
func NewLXC(d Deps) *LXC { return &LXC{newReconciler(api.KindLXC, d)} }

// Reconcile brings one container in line with the desired state (see
// reconciler.reconcile for the order of decisions).
func (l *LXC) Reconcile(ctx context.Context, req Request) (Result, error) {
	return l.r.reconcile(ctx, req)
}

// VM reconciles one virtual machine at a time.
type VM struct{ r *reconciler }

// NewVM returns the VM reconciler working with d.
func NewVM(d Deps) *VM { return &VM{newReconciler(api.KindVM, d)} }

// Reconcile brings one VM in line with the desired state.
func (v *VM) Reconcile(ctx context.Context, req Request) (Result, error) {
	return v.r.reconcile(ctx, req)
}

// reconciler is what LXC and VM share: the decision is the same for both
// kinds; the workflows they run differ (lxc.go, vm.go).
type reconciler struct {
	Deps
	kind api.Kind
}

func newReconciler(kind api.Kind, d Deps) *reconciler {
	if d.Phases == nil {
		d.Phases = d.Status
	}
	if d.Recorder == nil {
		d.Recorder = nopRecorder{}
	}
	return &reconciler{Deps: d, kind: kind}
}

func (r *reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC()
}

type nopRecorder struct{}

func (nopRecorder) ConvergeStarted(api.Kind)                 {}
func (nopRecorder) StepDone(api.Kind, string, time.Duration) {}
func (nopRecorder) Drifted(api.ID, api.Kind, bool)           {}
func (nopRecorder) Pruned(api.Kind, error)                   {}
