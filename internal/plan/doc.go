// Package plan turns a verb and its target guests into a plan, and runs it.
//
// A plan is a DAG of actions (create, skip, start, stop, restart, delete),
// each with the reason it is there: a named target, a missing dependency, a
// dependency that exists already, part of a converged chain. Planning reads
// the host only through a Lookup, so the CLI and the controller plan alike.
//
// Execute runs a plan with bounded parallelism, starting an action the
// moment everything it needs is done, cancelling the dependents of a failed
// action and letting independent branches finish. What an action does is
// the caller's RunFunc: the per-kind workflows of package reconcilers.
// Doc renders a plan and its outcome as the -o json document.
package plan
