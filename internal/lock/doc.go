// Package lock holds phoenix's locks: a mutex per key inside one process
// (Keyed) and flock(2) locks between processes that share a state dir
// (Flock, Dir); and the intent records (Intents) that tell a Proxmox
// guest lock left by an interrupted phoenix from anyone else's.
//
// Waiting always honours a context. flock itself cannot be interrupted, so
// a waiting caller polls with LOCK_NB; the kernel drops a flock when its
// process dies, which is what makes these locks safe after a crash.
package lock
