// Package reconcilers holds the per-kind workflows (LXC, VM) that bring one
// guest in line with its spec, and the Runner that the plan executor calls
// for each action.
//
// A workflow is an ordered list of named steps; each step looks at the
// guest on the host first and does nothing when it is already as wanted, so
// running a workflow twice changes nothing the second time except the steps
// that must always run (features, application script, health check).
// Which guests a verb touches, and in what order, is package plan's job.
package reconcilers
