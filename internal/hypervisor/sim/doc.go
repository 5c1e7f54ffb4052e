// Package sim is an embedded simulated Proxmox node: the default backend
// where no real host is at hand. Guests live as one JSON file each under
// its folder, so that separate phoenix commands see the same host and one
// operation rewrites one small file; an append-only ops.log records every
// change for tests and for people who want to see what happened.
//
// Latency and failure injection make it usable for benchmarks and fault
// tests. It models what the workflows need (config, running state,
// snapshots, templates, clones from snapshots, scripts run inside) and
// refuses what Proxmox refuses (starting a running guest, stopping a stopped
// one, destroying a running one, shrinking a disk, converting a running
// guest to a template).
package sim
