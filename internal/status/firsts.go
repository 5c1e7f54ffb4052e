package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// firsts keeps the first status of guests that have no status file yet,
// as lines of one append-only file, .firsts in the status folder. The
// controller's first sync of a new lab marks every guest Provisioning
// before its create workflow starts: a file of its own per mark meant
// 10,000 file creations, each replaced seconds later by the outcome's, and
// creating and freeing that many inodes is what the sync spent most of its
// system time on (docs/benchmarks.md). A line costs one write(2).
//
// A mark must survive a killed process (so that the next run finishes the
// guest), not a power cut: a line in the page cache is as safe as the
// unsynced file it replaces. A status file, once there, wins over the
// guest's line; Delete adds a line that clears it.
//
// Every process reads the journal (Get falls back to it when a guest has
// no file); only a store that JournalFirsts was called on writes marks
// there, and it compacts the journal at Close. Lines are whole JSON
// documents; a line cut short by a kill is skipped, and the next writer
// starts on a line of its own.
type firsts struct {
	path string

	// writer: this is the store JournalFirsts was called on, the only
	// one that replaces the journal (at Close).
	writer bool

	mu sync.Mutex
	w  *os.File // opened for appends when first needed
	// The journal as last read: its inode, the end of the last complete
	// line read, and each guest's last line.
	ino  uint64
	off  int64
	seen map[api.ID]*api.Status
}

const firstsName = ".firsts"

// firstLine is a line of the journal: a guest's first status, or the
// clearing of its line.
type firstLine struct {
	api.Status
	Gone bool `json:"gone,omitempty"`
}

// maxFirsts bounds what a reader reads of the journal: a status is a few
// hundred bytes, and a compacted journal holds only guests without a file.
const maxFirsts = 256 << 20

func newFirsts(dir string) *firsts { return &firsts{path: filepath.Join(dir, firstsName)} }

// get returns the guest's status from the journal.
func (j *firsts) get(id api.ID) (*api.Status, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.refresh(); err != nil {
		return nil, false, err
	}
	st, ok := j.seen[id]
	if !ok {
		return nil, false, nil
	}
	return clone(st), true, nil
}

// ids returns the guests the journal holds a status of.
func (j *firsts) ids() ([]api.ID, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.refresh(); err != nil {
		return nil, err
	}
	out := make([]api.ID, 0, len(j.seen))
	for id := range j.seen {
		out = append(out, id)
	}
	return out, nil
}

// add appends st as its guest's status.
func (j *firsts) add(st *api.Status) error {
	return j.append(firstLine{Status: *st})
}

// clear makes the journal forget the guest, if it holds it.
func (j *firsts) clear(id api.ID) error {
	j.mu.Lock()
	if err := j.refresh(); err != nil {
		j.mu.Unlock()
		return err
	}
	_, ok := j.seen[id]
	j.mu.Unlock()
	if !ok {
		return nil
	}
	return j.append(firstLine{Status: api.Status{ID: id.String()}, Gone: true})
}

func (j *firsts) append(l firstLine) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.openForAppend(); err != nil {
		return fmt.Errorf("status journal %s: %w", j.path, err)
	}
	// One write on an O_APPEND file: lines of concurrent writers, in this
	// process or another, never mix.
	if _, err := j.w.Write(data); err != nil {
		return fmt.Errorf("status journal %s: %w", j.path, err)
	}
	return nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// openForAppend opens the journal for appends, creating it, and ends a
// line that a killed writer left cut short, so that the next line stands
// on its own. j.mu is held.
func (j *firsts) openForAppend() error {
	if j.w != nil {
		if j.writer {
			return nil
		}
		if fi, err := os.Stat(j.path); err == nil && sameFile(fi, j.w) {
			return nil
		}
		// Compacted by another process since: append to the new file.
		j.w.Close()
		j.w = nil
	}
	f, err := fsutil.OpenNoFollow(j.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fsutil.ErrNotRegular
	}
	if err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
		}
	}
	if err != nil {
		f.Close()
		return err
	}
	j.w = f
	return nil
}

func sameFile(fi os.FileInfo, f *os.File) bool {
	ofi, err := f.Stat()
	return err == nil && os.SameFile(fi, ofi)
}

// refresh reads what was appended since the last read, or the whole
// journal when it was replaced or cut. j.mu is held.
func (j *firsts) refresh() error {
	if j.writer && j.w != nil && j.seen != nil {
		// Only the writer's Close replaces the journal: what others did
		// is appended to the file it has open.
		fi, err := j.w.Stat()
		if err != nil {
			return fmt.Errorf("status journal %s: %w", j.path, err)
		}
		if fi.Size() == j.off {
			return nil
		}
		return j.readFrom(j.w, fi)
	}
	f, err := fsutil.OpenNoFollow(j.path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		j.ino, j.off, j.seen = 0, 0, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("status journal %s: %w", j.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("status journal %s: %w", j.path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("status journal %s: %w", j.path, fsutil.ErrNotRegular)
	}
	return j.readFrom(f, fi)
}

// readFrom reads the journal f, whose information is fi, from where the
// last read ended, or from its start when it is another file or shorter.
// j.mu is held.
func (j *firsts) readFrom(f *os.File, fi os.FileInfo) error {
	if ino := inode(fi); ino != j.ino || fi.Size() < j.off || j.seen == nil {
		j.ino, j.off, j.seen = ino, 0, map[api.ID]*api.Status{}
	}
	if fi.Size()-j.off > maxFirsts {
		return fmt.Errorf("status journal %s: %d bytes to read, more than a journal of first statuses holds", j.path, fi.Size()-j.off)
	}
	off, err := fsutil.ReadLines(f, j.off, fi.Size(), func(_ int64, line []byte) { j.apply(line) })
	j.off = off
	if err != nil {
		return fmt.Errorf("status journal %s: %w", j.path, err)
	}
	return nil
}

// apply takes one line into seen; a line that is not a status (cut short
// by a kill) is skipped.
func (j *firsts) apply(data []byte) {
	var l firstLine
	if len(data) == 0 || json.Unmarshal(data, &l) != nil {
		return
	}
	id, err := api.ParseID(l.ID)
	if err != nil {
		return
	}
	if l.Gone {
		delete(j.seen, id)
		return
	}
	st := l.Status
	j.seen[id] = &st
}

// compact rewrites the journal with the lines of guests that still need
// one (live), and removes it when none does. The caller is the journal's
// one writer (JournalFirsts), at Close.
func (j *firsts) compact(live func(api.ID) bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.refresh(); err != nil {
		return err
	}
	if j.seen == nil {
		return nil
	}
	var buf bytes.Buffer
	for id, st := range j.seen {
		if !live(id) {
			continue
		}
		data, err := json.Marshal(firstLine{Status: *st})
		if err != nil {
			return err
		}
		buf.Write(data)
		buf.WriteByte('\n')
	}
	j.closeWriter()
	j.seen = nil
	if buf.Len() == 0 {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("status journal %s: %w", j.path, err)
		}
		return nil
	}
	if err := fsutil.WriteFileNoSync(j.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("status journal %s: %w", j.path, err)
	}
	return nil
}

func (j *firsts) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closeWriter()
}

// closeWriter closes the append handle, if open; j.mu is held.
func (j *firsts) closeWriter() {
	if w := j.w; w != nil {
		w.Close()
	}
	j.w = nil
}
