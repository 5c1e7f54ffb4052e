package status

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A status write replaces a file, and replacing frees the old file's
// inode. ext4 without a journal (this project's build machines; not
// Proxmox's default) skips an inode freed in the last 60 seconds (6
// minutes while its inode table block is not written back) when it
// allocates one, and each allocation scans past all of them from the start
// of its group: in a first sync of 10,000 guests, each guest's
// Provisioning mark, freed by its outcome, made every later file creation
// slower, and file creation came to dominate the sync's CPU. With
// deferred frees, a write swaps the new file and the old one
// (RENAME_EXCHANGE: for a reader the name changes from the old file to the
// new at once, as with a rename) and the old file, now under the temp
// name, is unlinked later with the others, once the store has been idle
// for 2 s. A reader that opened the old file still reads it whole:
// it is never written again, only unlinked.
type trash struct {
	mu     sync.Mutex
	names  []string
	last   time.Time
	timer  *time.Timer
	noSwap bool // the file system refused RENAME_EXCHANGE once
	// idle is how long the store must be idle before the old files are
	// unlinked; max bounds the files kept: past it, the oldest half goes
	// at once (a store never idle does not keep every file it replaced).
	idle time.Duration
	max  int
}

// newTrash is a trash with the defaults.
func newTrash() *trash { return &trash{idle: trashIdle, max: trashMax} }

const (
	trashIdle = 2 * time.Second
	trashMax  = 20000
)

// A variable for the tests.
var (
	// trashAge: at start, a temp file unchanged for this long is a
	// leftover of a process that ended (a live one is renamed within
	// milliseconds of its write): removed.
	trashAge = 10 * time.Minute
)

// replace puts the file at tmp in place of path. When t is nil or the file
// system cannot swap, it is a rename.
func (t *trash) replace(tmp, path string) error {
	if t == nil || t.swapRefused() {
		return os.Rename(tmp, path)
	}
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		t.add(tmp)
		return nil
	case errors.Is(err, syscall.ENOENT):
		// Nothing to replace yet (or tmp is gone: the rename says which).
		return os.Rename(tmp, path)
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EOPNOTSUPP):
		t.mu.Lock()
		t.noSwap = true
		t.mu.Unlock()
		return os.Rename(tmp, path)
	}
	return &os.LinkError{Op: "renameat2", Old: tmp, New: path, Err: err}
}

func (t *trash) swapRefused() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.noSwap
}

func (t *trash) add(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.names = append(t.names, name)
	t.last = time.Now()
	if len(t.names) > t.max {
		old := t.names[:len(t.names)/2]
		t.names = append([]string(nil), t.names[len(t.names)/2:]...)
		go unlinkAll(old)
	}
	if t.timer == nil {
		t.timer = time.AfterFunc(t.idle, t.tick)
	}
}

// tick unlinks the kept files once the store has been idle for t.idle.
func (t *trash) tick() {
	t.mu.Lock()
	if wait := t.wait(time.Now()); wait > 0 {
		t.timer.Reset(wait)
		t.mu.Unlock()
		return
	}
	names := t.names
	t.names, t.timer = nil, nil
	t.mu.Unlock()
	unlinkAll(names)
}

// wait is how long after now the kept files are due: 0 once the store has
// been idle for t.idle.
func (t *trash) wait(now time.Time) time.Duration {
	if idle := now.Sub(t.last); idle < t.idle {
		return t.idle - idle
	}
	return 0
}

// empty unlinks the kept files now.
func (t *trash) empty() {
	if t == nil {
		return
	}
	t.mu.Lock()
	names := t.names
	t.names = nil
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.mu.Unlock()
	unlinkAll(names)
}

// pending is the number of files kept (tests).
func (t *trash) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.names)
}

func unlinkAll(names []string) {
	for _, n := range names {
		os.Remove(n)
	}
}

// removeLeftovers removes the files in dir that nobody changed for
// trashAge: temp files of writers that were killed, and old files a
// store kept but never unlinked.
func removeLeftovers(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		// ctime: a swap or a write sets it, so a file kept or written
		// moments ago is never taken for a leftover.
		if time.Since(time.Unix(st.Ctim.Unix())) > trashAge {
			os.Remove(p)
		}
	}
}
