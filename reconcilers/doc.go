// Package reconcilers holds the per-kind create workflows (LXC, VM) and the
// plan/execute engine that the CLI and the controller share.
//
// A workflow is an ordered list of named steps; each step looks at the
// guest on the host first and does nothing when it is already as wanted, so
// running a workflow twice changes nothing the second time except the steps
// that must always run (features, application script, health check).
//
// A plan is a DAG of actions with the reason for each; Execute runs it with
// bounded parallelism, starting an action the moment everything it needs is
// done, cancelling the dependents of a failed action and letting independent
// branches finish.
package reconcilers
