// Package leader elects one active phoenix controller among several that
// share a config (every node of a Proxmox cluster, or two processes on one
// machine).
//
// A Lock is the mutual exclusion itself. Two exist:
//
//   - Pmxcfs is the cluster-wide lock of the Proxmox cluster file system,
//     used the way pve-ha-manager elects its active manager: a directory
//     <pve-etc>/priv/lock/<name> that mkdir creates for exactly one node,
//     renewed by its holder with utime(0, now) within pmxcfs' fixed 120 s
//     lifetime, dropped by pmxcfs on request (utime(0, 0)) once expired,
//     and released by rmdir. Without quorum /etc/pve is read-only, so a node
//     cut off from the cluster cannot renew and loses the lock by itself.
//   - File is the same contract on one machine: a lease record in the state
//     dir, changed under flock, with a lease length of its own; a holder
//     that dies is noticed at once through a second flock it holds.
//
// An Elector campaigns for a Lock and, once it holds it, renews it in the
// background; the Term it returns says when a renewal failed, at which
// point the holder must stop acting at once.
package leader
