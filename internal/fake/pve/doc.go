// Package pve is a fake of Proxmox VE's pct and qm, for testing
// internal/hypervisor/pve (and phoenix through it) without a Proxmox host.
//
// Installed as "pct" and "qm" (symlinks or copies: it looks at the base
// name of argv[0]; "fakepve pct ..." works too), it keeps guests as one
// JSON file each under $FAKEPVE_STATE/guests and behaves like the real
// tools where phoenix depends on them: the same argument shapes, output
// formats, error messages and exit codes (255 for a failed task), locks,
// the parameter verification of the Proxmox VE release played (every
// option of create, set, clone, resize, snapshot and template is checked
// against that release's API schema, internal/pveschema, and refused with
// "400 Parameter verification failed." and exit 255), refusals (start of a running guest, template of a guest with snapshots,
// shrinking a disk, destroying a running guest or a template that linked
// clones use) and the normalisation Proxmox applies to what it stores
// (net0 gains type=veth and a hwaddr, a new disk "pool:8" becomes
// "pool:subvol-101-disk-0,size=8G"), so that a reconciler comparing config
// values naively is caught here rather than on a real host.
//
// Every guest's config is also written, in Proxmox's own format, to
// $FAKEPVE_PVE_ETC/lxc/<id>.conf or $FAKEPVE_PVE_ETC/qemu-server/<id>.conf
// (description as '#' lines, keys sorted, raw lxc.* lines, lock:,
// template: 1, then one [snapshot] section per snapshot with parent: and
// snaptime:), so tests read what a real host's /etc/pve holds. Raw lxc.*
// lines found in a container's file are read back, which is how internal/hypervisor/pve sets keys pct set refuses. Writes of a
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
//	FAKEPVE_PVE_ETC        the guest config folder (default $FAKEPVE_STATE/etc/pve)
//	FAKEPVE_VERSION        the release played, 8.2, 8.3 or 9.0 (default):
//	                       its schema, and qm disk import's last line
//	                       ("Successfully imported disk as 'unused0:VOL'"
//	                       before 8.3, "unused0: successfully imported
//	                       disk 'VOL'" since)
//	FAKEPVE_DELAY          sleep this long in every call (Go duration), the
//	                       cost of a real pct/qm process, for benchmarks
//	FAKEPVE_AGENT_DELAY    a VM's guest agent answers (qm guest cmd ping,
//	                       qm guest exec) only this long after its start;
//	                       before, "QEMU guest agent is not running"
//	FAKEPVE_EXIT0_FAIL     verbs whose task fails while the tool exits 0
//	                       (same syntax as FAKEPVE_FAIL): nothing changes,
//	                       the error is on stderr only, as pct push, pct
//	                       resize, qm resize and qm template do
//	FAKEPVE_STORAGE        storage types, "id=zfspool|lvmthin|dir|nfs,...",
//	                       on top of local=dir, local-zfs=zfspool,
//	                       local-lvm=lvmthin, nfs=nfs; other IDs are
//	                       zfspool. Snapshots and linked clones of
//	                       containers need zfspool or lvmthin (VM disks on
//	                       dir/nfs are qcow2, which has both); a VM's full
//	                       clone from a snapshot is refused on zfspool
//	FAKEPVE_LXC_LOCK_DIR   config locks (default $FAKEPVE_STATE/run/lock/lxc)
//	FAKEPVE_CLONE_HOLD     how long a clone keeps its source locked (Go
//	                       duration, default 0): a second pct clone of the
//	                       same source meanwhile fails with "CT is locked
//	                       (disk)" (qm clone writes no lock on its source)
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
//	                       counts) that never return, to test timeouts;
//	                       create and clone hang once the new guest's
//	                       config holds its lock (create; qm clone: clone,
//	                       pct clone also "disk" on the source), which a
//	                       kill then leaves behind, as on Proxmox
//	FAKEPVE_IMAGE_SIZE     virtual size of images for qm disk import
//	                       (default 3584M)
//
// It does not run anything inside guests: pct exec and qm guest exec
// record the command in the guest's state, files pushed in are kept there
// too, and both succeed unless FAKEPVE_FAIL_EXEC says otherwise.
package pve
