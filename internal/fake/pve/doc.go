// Command fakepve is a fake of Proxmox VE's pct and qm, for testing
// internal/hypervisor/pve (and phoenix through it) without a Proxmox host.
//
// Installed as "pct" and "qm" (symlinks or copies: it looks at the base
// name of argv[0]; "fakepve pct ..." works too), it keeps guests as one
// JSON file each under $FAKEPVE_STATE/guests and behaves like the real
// tools where phoenix depends on them: the same argument shapes, output
// formats, error messages and exit codes (255 for a failed task), locks,
// refusals (start of a running guest, template of a guest with snapshots,
// shrinking a disk, destroying a running guest or a template that linked
// clones use) and the normalisation Proxmox applies to what it stores
// (net0 gains type=veth and a hwaddr, a new disk "pool:8" becomes
// "pool:subvol-101-disk-0,size=8G"), so that a reconciler comparing config
// values naively is caught here rather than on a real host.
//
// Container configs are also written, in Proxmox's format, to
// $FAKEPVE_LXC_CONF_DIR/<id>.conf, and raw lxc.* lines found there are read
// back, which is how internal/hypervisor/pve sets keys pct set refuses. Writes of a
// container's state hold $FAKEPVE_LXC_LOCK_DIR/pve-config-<id>.lock, as pct
// does. Every invocation holds an flock on $FAKEPVE_STATE/.lock while it
// reads and writes state, except while a clone holds its source's lock.
//
// Environment:
//
//	FAKEPVE_STATE          state folder (required)
//	FAKEPVE_LOG            append one JSON line per invocation:
//	                       {"tool":"pct","argv":["start","101"]}
//	FAKEPVE_NODE           node name in messages (default pve)
//	FAKEPVE_LXC_CONF_DIR   container configs (default $FAKEPVE_STATE/etc/pve/lxc)
//	FAKEPVE_LXC_LOCK_DIR   config locks (default $FAKEPVE_STATE/run/lock/lxc)
//	FAKEPVE_CLONE_HOLD     how long a clone keeps its source locked (Go
//	                       duration, default 0): a second clone of the same
//	                       source meanwhile fails with "CT is locked (disk)"
//	                       or "VM is locked (clone)"
//	FAKEPVE_FAIL           subcommands that fail with exit 255, comma
//	                       separated: "clone", "pct start", "guest exec",
//	                       each optionally ":N" to fail only the first N
//	                       times (counted in the state folder)
//	FAKEPVE_FAIL_MSG       stderr of those failures ("{id}" is replaced by
//	                       the guest ID), e.g. a lock timeout
//	FAKEPVE_FAIL_EXEC      pct exec / qm guest exec of a command with an
//	                       argument containing this string fails: exit 1
//	                       (pct) or exitcode 1 (qm), with some output
//	FAKEPVE_FAIL_EXEC_CODE that exit code instead of 1
//	FAKEPVE_HANG           subcommands (same syntax as FAKEPVE_FAIL, without
//	                       counts) that never return, to test timeouts
//	FAKEPVE_IMAGE_SIZE     virtual size of images for qm disk import
//	                       (default 3584M)
//
// It does not run anything inside guests: pct exec and qm guest exec
// record the command in the guest's state, files pushed in are kept there
// too, and both succeed unless FAKEPVE_FAIL_EXEC says otherwise.
package main
