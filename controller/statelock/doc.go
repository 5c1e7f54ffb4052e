// Package statelock is the "one writer" lock of a phoenix state dir: the
// file <state-dir>/controller.lock, locked with flock(2).
//
// The controller holds it exclusively for as long as it runs and writes its
// pid (and the config dir it watches) into it, so that a second controller
// and the CLI can say who holds it. One-shot CLI verbs that change guests
// hold it shared for the length of their run: any number of them may run
// side by side, but never beside a controller, and a controller never starts
// while one runs (it waits for them to finish).
//
// The kernel drops a flock when its holder dies, so a crashed controller
// never leaves a stale lock behind; a stale pid in the file is ignored.
//
// It does not serialize the status files or the simulated host: those have
// their own locks (package status, package sim).
package statelock
