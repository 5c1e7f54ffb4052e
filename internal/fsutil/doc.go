// Package fsutil writes files so that a reader never sees half of one: the
// state and status files phoenix shares between processes, and that a crash
// must not corrupt.
package fsutil
