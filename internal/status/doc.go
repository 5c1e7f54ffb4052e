// Package status stores each guest's status as <state-dir>/status/<id>.json,
// the record shared by the CLI and the controller. Files are written whole
// (in .tmp/, then renamed into place), so a reader or a killed process
// never leaves or sees half a file; every read-modify-write holds a file
// lock, so that two phoenix processes never lose each other's update.
// Update waits until the status is on disk (file and folder fsync'd, the
// folder fsync shared by writers that finish together); UpdateNoSync is for
// marks whose loss in a power cut is safe.
package status
