// Package status stores each guest's status as <state-dir>/status/<id>.json,
// the record shared by the CLI and the controller. Files are written
// atomically (temp file, fsync, rename) and every read-modify-write holds a
// file lock, so that two phoenix processes never lose each other's update.
package status
