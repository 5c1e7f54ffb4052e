// Package controller is phoenix's reconcile loop (`phoenix controller`): it
// watches the config directory, diffs each valid reload against the last
// valid desired state per guest, queues the added and changed guests on a
// rate-limited client-go workqueue, and has workers hand each guest to the
// reconciler of its kind (reconcilers.LXC, reconcilers.VM), which decides
// what the guest needs and carries it out with the same plans and
// workflows the CLI uses. The loop keeps what spans guests: which were
// removed and since when (the prune policy, --prune-grace and --prune-max),
// the phase and drift books behind the metrics, the per-guest locks the
// reconcilers share. It serves Prometheus metrics and health endpoints and
// holds the state dir's one-writer lock (package statelock) while it runs.
//
// It never changes a guest because of a broken file: an invalid reload is
// reported and the last valid state stays in force. It never deletes a
// guest that left the files unless told to (--prune). It does not parse or
// validate the files itself (package desired does) and it does not decide
// or know how a guest is built (package reconcilers does).
package controller
