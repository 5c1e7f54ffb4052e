// Package status stores each guest's status as <state-dir>/status/<id>.json,
// the record shared by the CLI and the controller. Files are written whole
// (in .tmp/, then renamed into place), so a reader or a killed process
// never leaves or sees half a file; every read-modify-write holds a file
// lock, so that two phoenix processes never lose each other's update.
//
// Update returns once the status is on disk. Writers that update at the
// same time commit as a group (commit.go): each writes its new file, then
// one of them fdatasyncs the group's files at once, renames them and fsyncs
// the folder once for all. UpdateAsync queues the write for the next group
// and returns: its Pending's Wait returns once the file is on disk, and the
// store reads the queued status meanwhile (the controller goes on with its
// next guest, so that groups grow). UpdateNoSync is for marks whose loss in
// a power cut is safe. DeferFrees keeps replaced files and unlinks them in
// a batch when the store is idle (trash.go says why); DelayGroups lets a
// group of a few writes wait a moment for more. JournalFirsts makes
// the first status of a guest without a file (the Provisioning mark of its
// first create) a line of one journal, .firsts, until the outcome's file
// is written (firsts.go); every store reads it for guests without a file.
// The store remembers what it last read or wrote per guest with the
// identity of the file, so that reading a status it wrote itself costs a
// stat rather than a read and a decode.
package status
