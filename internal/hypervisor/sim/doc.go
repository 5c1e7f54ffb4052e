// Package sim is an embedded simulated Proxmox node: the default backend
// where no real host is at hand. The node's state is one append-only log
// (state.log, a JSON line per change holding the guest's whole new record),
// shared by every phoenix process on the state dir and compacted when most
// of it is history, so that an operation costs one small append rather than
// a file replaced; a separate append-only ops.log records every change in
// one readable line for tests and for people who want to see what
// happened. Each process keeps the records decoded in memory and reads the
// log again only when the change counter in state.lock says another
// process changed it, so reads cost no system call. The writers of one
// process change different guests side by side and share the flock on
// state.lock (taken by the first, let go by the last, with a break every
// 100 ms for other processes); only the write of a line is one at a time.
//
// Latency and failure injection make it usable for benchmarks and fault
// tests. It models what the workflows need (config, running state,
// snapshots, templates, clones from snapshots, scripts run inside) and
// refuses what Proxmox refuses (starting a running guest, stopping a stopped
// one, destroying a running one, shrinking a disk, converting a running
// guest to a template).
package sim
