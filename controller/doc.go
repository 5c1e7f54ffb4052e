// Package controller is phoenix's reconcile loop (`phoenix controller`): it
// watches the config directory, diffs each valid reload against the last
// valid desired state per guest, queues the added and changed guests on a
// rate-limited client-go workqueue, and has workers drive the host toward
// the files with the same plans and workflows the CLI uses (package
// reconcilers). It serves Prometheus metrics and health endpoints and holds
// the state dir's one-writer lock (package statelock) while it runs.
//
// It never changes a guest because of a broken file: an invalid reload is
// reported and the last valid state stays in force. It never deletes a
// guest that left the files unless told to (--prune). It does not parse or
// validate the files itself (package api does) and it does not know how a
// guest is built (package reconcilers does).
package controller
