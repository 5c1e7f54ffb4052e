// Package reconcilers holds what happens to one guest: the reconcilers the
// controller calls per guest (LXC and VM, Reconcile(ctx, Request) (Result,
// error) as in controller-runtime), the per-kind workflows that bring a
// guest in line with its spec, and the Runner that the plan executor calls
// for each action, for the CLI and the reconcilers alike.
//
// A reconciler reads the guest's spec, status and presence on the host and
// decides: converge its chain on a new converge token; create what is
// missing or unfinished in its chain, taking existing dependencies as they
// are; apply a changed spec; report drift; mark a guest that left the
// files Orphaned, or prune it when the controller's PrunePolicy allows.
// It tells the controller what to do next through its Result and reports
// metrics through a Recorder, so the dependency points from controller to
// reconcilers and never back.
//
// A workflow is an ordered list of named steps; each step looks at the
// guest on the host first and does nothing when it is already as wanted, so
// running a workflow twice changes nothing the second time except the steps
// that must always run (features, application script, health check).
// Which guests a verb touches, and in what order, is package plan's job.
package reconcilers
