// Package fsutil holds phoenix's file-system safety rules in one place:
// writes that a reader never sees half of (temp file and rename), opens in
// the state dir that never follow a symlink, the check that refuses a state
// dir another user could turn against a root process, bounded reads of
// config files that a FIFO or a device cannot hang, and the reads of
// complete lines of the append-only logs that processes share.
package fsutil
