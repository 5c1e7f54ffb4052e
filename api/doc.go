// Package api holds phoenix's desired state: the guest types, the loading of
// the three configuration files, their validation, the per-guest status
// record, and the dependency graph between guests.
//
// It never talks to a hypervisor and never writes configuration; the loaders
// are pure functions of the files they read.
package api
