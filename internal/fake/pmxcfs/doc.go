// Package pmxcfs is a fake of the part of the Proxmox cluster file system
// (/etc/pve) that cluster-wide locks use: the directories under
// priv/lock, shared by several nodes, with pmxcfs' rules.
//
//   - mkdir of a lock succeeds for one node; it fails with EEXIST while
//     the lock exists.
//   - utime(path, 0, t) with t > 0 renews the lock: only the node that
//     wrote it last may, and never to an older time (EACCES otherwise).
//     Every write restarts the lock's 120 s lifetime.
//   - utime(path, 0, 0) is an unlock request: pmxcfs drops the lock when
//     nobody wrote it for longer than the lifetime. The call itself fails
//     either way (ENOENT once dropped, EACCES while it stays).
//   - rmdir drops a lock.
//   - A node without quorum sees /etc/pve read-only: every write fails
//     with EACCES.
//
// These rules come from pmxcfs' memdb (memdb_mtime, memdb_lock_expired)
// and cfs-plug-memdb's utimens. pmxcfs knows nodes, not processes: every
// process on one node is the same writer. Files and any folder other than
// priv/lock are not modelled; writes to them fail.
package pmxcfs
