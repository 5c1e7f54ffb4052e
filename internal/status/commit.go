package status

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// committer makes durable status writes in groups: each writer writes its
// new file in the temp folder, queues it and waits; the first writer that
// finds nobody committing takes every file queued so far, fdatasyncs them
// all at once (so that a file system with a journal folds them into one
// commit), renames them into place, and fsyncs the folder once for the
// group. Writers that queue meanwhile form the next group, whose files are
// synced while this group's folder fsync runs. No writer returns before its
// own file and its rename are on disk.
type committer struct {
	dir string // the status folder
	tmp string // where new files are written before their rename
	// trash, when set, defers the unlink of replaced files (trash.go).
	trash *trash

	// delay, when set, is how long a group of a few writes waits for
	// more before it is flushed (see groupDelay).
	delay time.Duration

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*commitReq
	writing bool
	dirSync groupSync
	// beforeRename, when set, runs in the group's writer before its
	// renames; syncFile, when set, replaces fdatasync, syncFS syncfs, and
	// sleep time.Sleep (tests).
	beforeRename func(group int)
	syncFile     func(*os.File) error
	syncFS       func(*os.File) error
	sleep        func(time.Duration)
}

// groupDelay is how long a group of more than one and fewer than
// bulkGroup writes waits for more writers before it is flushed, in a store
// that DelayGroups was called on. Writers that arrive together are a
// burst (a first sync makes one outcome every few hundred microseconds): a
// few milliseconds later the group is large enough for one syncfs rather
// than an fdatasync each, and one folder fsync covers many more files. On
// the 10,000-guest first sync that halved what the status writes cost
// (docs/benchmarks.md). A lone write, the everyday edit, is flushed at
// once.
const groupDelay = 20 * time.Millisecond

// bulkGroup is the size from which a group's files are flushed with one
// syncfs(2) of their file system rather than an fdatasync each. On ext4
// without a journal each fdatasync writes the file's inode block at once,
// its own I/O: a first sync of 10,000 guests made 10,000 of them
// (docs/benchmarks.md has what one syncfs per group saves). syncfs
// flushes whatever else waits on that file system too, so small groups,
// the everyday case of a controller that reconciles an edit, keep the
// fdatasync that touches their own files only.
const bulkGroup = 16

// commitReq is one durable write: data to become path.
type commitReq struct {
	path string
	data []byte
	f    *os.File // the new file, written, not yet synced
	// fresh: there was no file at path when the write was queued (the
	// guest's lock is held), so a rename puts it in place; a swap would
	// first fail with nothing to swap.
	fresh bool
	key   fileKey // of the new file, once it is renamed into place
	err   error
	// written: the file is renamed into place (or failed); done: and
	// the folder is fsync'd.
	written, done bool
}

// commit writes data to path atomically and durably, in a group with the
// writers that commit at the same time.
func (c *committer) commit(path string, data []byte, fresh bool) (fileKey, error) {
	r, err := c.enqueue(path, data, fresh)
	if err != nil {
		return fileKey{}, err
	}
	return c.wait(r)
}

// enqueue writes data to a new file in the temp folder and queues its
// rename to path for the next group; the file is not in place until a
// wait on it returns.
func (c *committer) enqueue(path string, data []byte, fresh bool) (*commitReq, error) {
	r := &commitReq{path: path, data: data, fresh: fresh}
	var err error
	// Written by each writer, side by side: creating a file can cost more
	// than its fsync.
	if r.f, err = c.writeTemp(r); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, r)
	return r, nil
}

// wait returns once r is renamed into place and the folder fsync'd, or
// failed. The first waiter that finds nobody committing commits every
// file queued so far; any number of waiters may wait for the same r.
func (c *committer) wait(r *commitReq) (fileKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cond == nil {
		c.cond = sync.NewCond(&c.mu)
	}
	for !r.done {
		if c.writing || r.written {
			c.cond.Wait()
			continue
		}
		c.writing = true
		if c.delay > 0 && len(c.queue) > 1 && len(c.queue) < bulkGroup {
			// Others queue meanwhile: writing is set, so they wait for
			// this group rather than start one of their own.
			c.mu.Unlock()
			c.pause(c.delay)
			c.mu.Lock()
		}
		group := c.queue
		c.queue = nil
		c.mu.Unlock()
		renamed := c.write(group)
		c.mu.Lock()
		for _, g := range group {
			g.written = true
		}
		c.writing = false
		// The next group may be written while this one's folder is
		// fsync'd.
		c.cond.Broadcast()
		var err error
		if renamed {
			c.mu.Unlock()
			err = c.dirSync.sync(c.dir)
			c.mu.Lock()
		}
		for _, g := range group {
			if g.err == nil && err != nil {
				g.err = fmt.Errorf("fsync %s: %w", c.dir, err)
			}
			g.done = true
		}
		c.cond.Broadcast()
	}
	return r.key, r.err
}

func (c *committer) pause(d time.Duration) {
	if c.sleep != nil {
		c.sleep(d)
		return
	}
	time.Sleep(d)
}

// write flushes a group's files all at once and renames them into place;
// it reports whether any was renamed.
func (c *committer) write(group []*commitReq) bool {
	sync1 := fdatasync
	if c.syncFile != nil {
		sync1 = c.syncFile
	}
	switch {
	case len(group) >= bulkGroup:
		syncAll := syncfs
		if c.syncFS != nil {
			syncAll = c.syncFS
		}
		// The first file of the group was opened before its data was
		// written: syncfs reports any write-back error of the file
		// system since then, whichever file it hit.
		err := syncAll(group[0].f)
		for _, r := range group {
			r.err = err
		}
	case len(group) == 1:
		group[0].err = sync1(group[0].f)
	default:
		var wg sync.WaitGroup
		for _, r := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.err = sync1(r.f)
			}()
		}
		wg.Wait()
	}
	if c.beforeRename != nil {
		c.beforeRename(len(group))
	}
	renamed := false
	for _, r := range group {
		if c.place(r) {
			renamed = true
		}
	}
	return renamed
}

// place renames r's written (and, for a durable write, flushed) file into
// place, unless r failed already; a file not placed is removed. It reports
// whether the file is in place.
func (c *committer) place(r *commitReq) bool {
	f := r.f
	if r.err == nil {
		r.key, r.err = statKey(f)
	}
	if cerr := f.Close(); r.err == nil {
		r.err = cerr
	}
	if r.err == nil && r.fresh {
		r.err = os.Rename(f.Name(), r.path)
	} else if r.err == nil {
		r.err = c.trash.replace(f.Name(), r.path)
	}
	if r.err != nil {
		os.Remove(f.Name())
		return false
	}
	return true
}

// fdatasync flushes a new file's data and what is needed to read it back
// (its size and blocks), not its times: that is all a status file needs.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// syncfs flushes the file system f is on: every file's data and
// metadata, the new files' folder entries included.
func syncfs(f *os.File) error {
	for {
		err := unix.Syncfs(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "syncfs", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// writeTemp writes r's data to a new file in the temp folder and leaves it
// open for its fsync.
func (c *committer) writeTemp(r *commitReq) (*os.File, error) {
	f, err := fsutil.CreateTemp(c.tmp, filepath.Base(r.path)+".*")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(r.data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// fileKey tells one status file from another at the same path: every
// write makes a new file (a new inode) and renames it into place.
// Size and modification time guard against an inode number used again.
type fileKey struct {
	ino, size int64
	mtimeSec  int64
	mtimeNsec int64
}

func keyOf(fi os.FileInfo) (fileKey, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fileKey{}, false
	}
	return fileKey{ino: int64(st.Ino), size: st.Size, mtimeSec: int64(st.Mtim.Sec), mtimeNsec: int64(st.Mtim.Nsec)}, true
}

func statKey(f *os.File) (fileKey, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileKey{}, err
	}
	k, _ := keyOf(fi)
	return k, nil
}
