// Package api holds phoenix's types: guest IDs and kinds, a guest's spec as
// the configuration files describe it, the whole desired state (Config) and
// the dependency graph between its guests, the per-guest status record with
// its phases and conditions, and the problems a desired state can have.
//
// It holds no I/O: reading and checking the files is internal/desired's job,
// talking to a hypervisor internal/hypervisor's.
package api
