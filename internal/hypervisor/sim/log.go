package sim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// stateLog is the node's state: one append-only file of JSON lines, each the
// whole new record of one guest (or its removal), the last line of a guest
// winning. Every process on the state dir appends to the same file and
// catches up by reading what others appended since it last looked, so an
// operation costs one small write instead of replacing a file.
//
// Appends, truncation of a torn tail and compaction all happen under the
// flock on state.lock, which the writers of one process hold together
// (lock.Shared): a change of a guest holds that guest's lock in the process,
// and only the write of its line is one at a time. A line that ends
// without a newline when a process takes the flock was torn by a killed
// process and is cut off. Readers take no flock: they consume complete
// lines only, and notice a compaction (a new file renamed over the old
// one) by its inode.
//
// Each process keeps every guest's record decoded in memory, read from the
// log once and updated by its own appends. A read must still see what
// other processes appended, without a stat of the log per read: state.lock
// holds a change counter, shared through a memory mapping, that every
// writer bumps after its change while it holds the lock. A reader looks at
// the log again only when the counter moved.
type stateLog struct {
	path string
	// lockPath is the flock'd file; lockFile its open handle.
	lockPath string
	lockFile *os.File
	// guests keeps two writers of this process off one guest at once;
	// hold is the flock on lockFile, shared by the writers of this
	// process (see lock); appender lets one at a time write its line.
	guests   [guestStripes]sync.Mutex
	hold     lock.Shared
	appender sync.Mutex
	// readOnly opens nothing for writing and takes no lock: a read-only
	// verb must work on a state dir it may not write.
	readOnly bool

	// changes is the change counter in state.lock (nil where it cannot
	// be mapped: then every read looks at the log).
	changes *uint64
	mapped  []byte

	// mu guards the fields below. A read whose log is up to date (the
	// counter did not move) shares it with other reads.
	mu   sync.RWMutex
	f    *os.File
	ino  uint64
	off  int64  // end of the last complete line consumed
	seen uint64 // the change counter when the log was last read
	recs map[api.ID]logRec
	live int64 // bytes of the lines in recs
	// check: the log's end must be looked at before the next append,
	// for a line that another process (or a failed write of this one)
	// left torn. Set when the flock is taken anew.
	check bool
}

// logRec is a guest's record, decoded, and where its line is in the log:
// a compaction copies the lines rather than encode every record again.
type logRec struct {
	r        *record
	at, size int64 // the line's offset and length, its newline included
}

const (
	logName  = "state.log"
	lockName = "state.lock"
	// compactMin is the size below which the log is never compacted.
	compactMin = 1 << 20
)

// entry is a line that removes a guest.
type entry struct {
	ID   api.ID `json:"id"`
	Gone bool   `json:"gone,omitempty"`
}

// line is what a line of the log may hold: a guest's record, or its
// removal.
type line struct {
	record
	Gone bool `json:"gone,omitempty"`
}

// errReadOnly refuses a change to a node opened read-only.
var errReadOnly = errors.New("sim: the simulated node is open read-only")

func openLog(dir string, readOnly bool) (*stateLog, error) {
	l := &stateLog{path: filepath.Join(dir, logName), lockPath: filepath.Join(dir, lockName), readOnly: readOnly}
	if readOnly {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.refresh(); err != nil {
			return nil, err
		}
		if err := l.readOld(dir); err != nil {
			return nil, err
		}
		return l, nil
	}
	lf, err := fsutil.OpenNoFollow(l.lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	l.lockFile = lf
	l.hold = lock.Shared{F: lf, Poll: time.Millisecond, MaxHold: holdMax}
	l.mapCounter()
	if err := l.migrate(dir); err != nil {
		l.unmap()
		lf.Close()
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.catchUp(); err != nil {
		l.unmap()
		lf.Close()
		return nil, err
	}
	return l, nil
}

// counterSize is the size of the change counter at the start of
// state.lock.
const counterSize = 8

// mapCounter maps the change counter of state.lock into memory once the
// file holds one. A file too short for it (a new state dir, or one from an
// earlier phoenix) is left alone here, so that opening the node writes
// nothing: the first writer extends it (see changed).
func (l *stateLog) mapCounter() {
	if l.changes != nil || l.lockFile == nil {
		return
	}
	fi, err := l.lockFile.Stat()
	if err != nil || fi.Size() < counterSize {
		return
	}
	b, err := syscall.Mmap(int(l.lockFile.Fd()), 0, counterSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return
	}
	l.mapped = b
	// A mapping starts on a page boundary, so the counter is aligned for
	// atomic access.
	l.changes = (*uint64)(unsafe.Pointer(&b[0]))
}

func (l *stateLog) unmap() {
	if l.mapped != nil {
		syscall.Munmap(l.mapped)
		l.mapped, l.changes = nil, nil
	}
}

// changed tells readers of every process that the log changed. The caller
// holds the writers' lock and mu, and has read the log up to its own
// change. Without a mapping yet the counter is bumped through the file
// (which the mappings of other processes see as well), creating it if
// needed, and then mapped.
func (l *stateLog) changed() {
	if l.changes != nil {
		l.seen = atomic.AddUint64(l.changes, 1)
		return
	}
	var b [counterSize]byte
	if _, err := l.lockFile.ReadAt(b[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return
	}
	n := binary.NativeEndian.Uint64(b[:]) + 1
	binary.NativeEndian.PutUint64(b[:], n)
	if _, err := l.lockFile.WriteAt(b[:], 0); err != nil {
		return
	}
	l.seen = n
	l.mapCounter()
}

func (l *stateLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	l.unmap()
	if l.lockFile == nil {
		return nil
	}
	return l.lockFile.Close()
}

// guestStripes is how many guest locks a process has: writers of guests
// in different stripes change the node side by side.
const guestStripes = 64

// holdMax is how long the writers of one process may keep the flock
// without a break: while it is held, writers of this process join in
// without taking it again, and a process that wants it waits.
const holdMax = 100 * time.Millisecond

// lock takes the writers' lock for one guest: its stripe's mutex in the
// process, then the process's share of the flock across processes.
func (l *stateLog) lock(id api.ID) (func(), error) {
	if l.readOnly {
		return nil, errReadOnly
	}
	g := &l.guests[uint64(id)%guestStripes]
	g.Lock()
	if err := l.take(); err != nil {
		g.Unlock()
		return nil, err
	}
	return func() {
		l.give()
		g.Unlock()
	}, nil
}

// take joins the process's hold of the flock (lock.Shared: the first
// writer takes it, the last lets it go, with a break after holdMax). A
// flock taken anew means the log's end must be checked before an append.
func (l *stateLog) take() error {
	taken, err := l.hold.Hold()
	if err != nil {
		return fmt.Errorf("sim state lock: %w", err)
	}
	if taken {
		l.mu.Lock()
		l.check = true
		l.mu.Unlock()
	}
	return nil
}

// give leaves the process's hold of the flock.
func (l *stateLog) give() { l.hold.Release() }

// get returns a guest's record, nil when it has none. The record is
// shared: the caller must not change it.
func (l *stateLog) get(id api.ID) (*record, error) {
	l.mu.RLock()
	if l.upToDate() {
		r := l.recs[id].r
		l.mu.RUnlock()
		return r, nil
	}
	l.mu.RUnlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.catchUp(); err != nil {
		return nil, err
	}
	return l.recs[id].r, nil
}

// upToDate reports whether this process has read everything appended to
// the log: no writer bumped the change counter since. The caller holds mu,
// shared or not.
func (l *stateLog) upToDate() bool {
	return l.changes != nil && l.f != nil && atomic.LoadUint64(l.changes) == l.seen
}

// catchUp reads the log again when another process changed it since this
// one last read it. The caller holds mu.
func (l *stateLog) catchUp() error {
	if l.changes == nil {
		// Until a writer adds the counter, look at the log every time.
		if l.mapCounter(); l.changes == nil {
			return l.refresh()
		}
		// Mapped just now: what was read before was not counted, so
		// read the log now (seen differs from the counter).
		l.seen = atomic.LoadUint64(l.changes) - 1
	}
	n := atomic.LoadUint64(l.changes)
	if n == l.seen && l.f != nil {
		return nil
	}
	if err := l.refresh(); err != nil {
		return err
	}
	// What a writer appended before bumping the counter to n is read;
	// a later bump makes the next read look again.
	l.seen = n
	return nil
}

// refresh reads what was appended since the last call, or everything when
// the file was replaced by a compaction. The caller holds mu.
func (l *stateLog) refresh() error {
	fi, err := os.Stat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		if l.readOnly {
			// No log yet: an empty node, as long as no one writes one.
			return nil
		}
		fi, err = l.create()
	}
	if err != nil {
		return fmt.Errorf("sim state: %w", err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	if l.f == nil || ino != l.ino {
		flag := os.O_RDWR | os.O_APPEND
		if l.readOnly {
			flag = os.O_RDONLY
		}
		f, err := fsutil.OpenNoFollow(l.path, flag, 0o600)
		if err != nil {
			return fmt.Errorf("sim state: %w", err)
		}
		if l.f != nil {
			l.f.Close()
		}
		if fi, err = f.Stat(); err != nil {
			f.Close()
			return fmt.Errorf("sim state: %w", err)
		}
		l.f, l.ino, l.off, l.live = f, fi.Sys().(*syscall.Stat_t).Ino, 0, 0
		l.recs = map[api.ID]logRec{}
	}
	off, err := fsutil.ReadLines(l.f, l.off, fi.Size(), l.apply)
	l.off = off
	if err != nil {
		return fmt.Errorf("sim state: %w", err)
	}
	return nil
}

// apply takes one complete line, found at offset at of the log, into
// recs. A line that is not a record (torn by a crash before a later append
// followed it) is skipped.
func (l *stateLog) apply(at int64, data []byte) {
	var ln line
	if len(data) == 0 || json.Unmarshal(data, &ln) != nil || ln.ID == 0 {
		return
	}
	if ln.Gone {
		l.put(ln.ID, nil, 0, 0)
		return
	}
	r := ln.record
	l.put(r.ID, &r, at, int64(len(data)+1))
}

// put makes r (nil: none) the guest's record, its line size bytes long at
// offset at of the log.
func (l *stateLog) put(id api.ID, r *record, at, size int64) {
	if old, ok := l.recs[id]; ok {
		l.live -= old.size
		delete(l.recs, id)
	}
	if r != nil {
		l.recs[id] = logRec{r: r, at: at, size: size}
		l.live += size
	}
}

func (l *stateLog) create() (os.FileInfo, error) {
	f, err := fsutil.OpenNoFollow(l.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// append writes the guest's new record (nil: its removal) while the
// caller holds the guest's writers' lock. The line is written with one
// write call. r is kept as the guest's record: the caller must not change
// it afterwards.
//
// While this process holds the flock, nobody else appends: the log ends
// where this process's last append left it, and only the first append
// after the flock was taken (or after a failed write) catches up and cuts
// a torn tail, so that the new line starts on a line of its own. The
// write itself runs without mu, so that reads go on meanwhile: nobody can
// move the change counter until this writer bumps it after the write, so
// no read of this process looks at the log (and its offset) while the
// line is being written.
func (l *stateLog) append(id api.ID, r *record) error {
	var data []byte
	var err error
	if r == nil {
		data, err = json.Marshal(entry{ID: id, Gone: true})
	} else {
		data, err = json.Marshal(r)
	}
	if err != nil {
		return err
	}
	data = append(data, '\n')
	l.appender.Lock()
	defer l.appender.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.check || !l.upToDate() {
		if err := l.cutTorn(); err != nil {
			return err
		}
	}
	if err := l.write(data); err != nil {
		l.check = true
		return err
	}
	l.put(id, r, l.off, int64(len(data)))
	l.off += int64(len(data))
	if l.off > compactMin && l.off > 2*l.live {
		err = l.compact()
	}
	l.changed()
	return err
}

// cutTorn catches up with the log and cuts a line left torn at its end.
// The caller holds the flock and mu.
func (l *stateLog) cutTorn() error {
	if err := l.refresh(); err != nil {
		return err
	}
	if l.changes != nil {
		// Every change before the flock was taken is read now.
		l.seen = atomic.LoadUint64(l.changes)
	}
	if fi, err := l.f.Stat(); err == nil && fi.Size() > l.off {
		if err := l.f.Truncate(l.off); err != nil {
			return fmt.Errorf("sim state: cut torn line: %w", err)
		}
	}
	l.check = false
	return nil
}

// write appends data to the log; the caller holds the flock, appender
// and mu, which it lets go of during the write when no read needs it (see
// append).
func (l *stateLog) write(data []byte) error {
	var err error
	if l.upToDate() {
		l.mu.Unlock()
		_, err = l.f.Write(data)
		l.mu.Lock()
	} else {
		_, err = l.f.Write(data)
	}
	if err != nil {
		return fmt.Errorf("sim state: %w", err)
	}
	return nil
}

// compact writes the live lines to a new file and renames it over the
// log. The caller holds the flock and mu. The lines are copied from the
// log as they are, in the order they were written: no record is encoded
// again, and one pass reads the log from start to end.
func (l *stateLog) compact() error {
	ids := make([]api.ID, 0, len(l.recs))
	for id := range l.recs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return l.recs[ids[i]].at < l.recs[ids[j]].at })
	var buf bytes.Buffer
	buf.Grow(int(l.live))
	rd := bufio.NewReaderSize(io.NewSectionReader(l.f, 0, l.off), 256<<10)
	pos := int64(0)
	at := make([]int64, len(ids))
	for i, id := range ids {
		rec := l.recs[id]
		if _, err := rd.Discard(int(rec.at - pos)); err != nil {
			return fmt.Errorf("sim state: compact: %w", err)
		}
		at[i] = int64(buf.Len())
		if _, err := io.CopyN(&buf, rd, rec.size); err != nil {
			return fmt.Errorf("sim state: compact: %w", err)
		}
		if b := buf.Bytes(); b[len(b)-1] != '\n' {
			return fmt.Errorf("sim state: compact: the line of %s at %d is not where the log had it", id, rec.at)
		}
		pos = rec.at + rec.size
	}
	if err := writeReplace(l.path, buf.Bytes()); err != nil {
		return fmt.Errorf("sim state: compact: %w", err)
	}
	// The new file holds exactly recs, and nobody else writes while the
	// lock is held: take it as read rather than decoding it again.
	f, err := fsutil.OpenNoFollow(l.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("sim state: compact: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("sim state: compact: %w", err)
	}
	l.f.Close()
	l.f, l.ino, l.off, l.live = f, fi.Sys().(*syscall.Stat_t).Ino, fi.Size(), fi.Size()
	for i, id := range ids {
		rec := l.recs[id]
		rec.at = at[i]
		l.recs[id] = rec
	}
	return nil
}

// writeReplace writes a file under a temp name and renames it into place.
// No fsync: a killed process loses nothing, a power cut may, as with every
// write of the sim.
func writeReplace(path string, data []byte) error {
	// A random temp name (O_EXCL): a symlink planted at a fixed one would
	// be followed.
	return fsutil.WriteFileNoSync(path, data, 0o600)
}

// readOld takes the guests of the one-file-per-guest layout of earlier
// versions into a read-only log, as migrate would, without changing it.
func (l *stateLog) readOld(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "guests"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sim state: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		data, err := fsutil.ReadFileNoFollow(filepath.Join(dir, "guests", e.Name()))
		if err != nil {
			return fmt.Errorf("sim state: %w", err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return fmt.Errorf("sim state: %s: %w", e.Name(), err)
		}
		// Read-only: the offset is never used for a compaction.
		l.apply(0, c.Bytes())
	}
	return nil
}

// migrate turns the one-file-per-guest layout of earlier versions
// (guests/<id>.json) into the log, once, so that a state dir made by an
// older phoenix keeps its guests.
func (l *stateLog) migrate(dir string) error {
	old := filepath.Join(dir, "guests")
	if _, err := os.Stat(old); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := l.take(); err != nil {
		return err
	}
	defer l.give()
	entries, err := os.ReadDir(old)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // another process migrated it meanwhile
	}
	if err != nil {
		return fmt.Errorf("sim state: %w", err)
	}
	var buf bytes.Buffer
	if data, err := os.ReadFile(l.path); err == nil {
		buf.Write(data)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(old, e.Name()))
		if err != nil {
			return fmt.Errorf("sim state: %w", err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return fmt.Errorf("sim state: %s: %w", e.Name(), err)
		}
		buf.Write(c.Bytes())
		buf.WriteByte('\n')
	}
	if err := writeReplace(l.path, buf.Bytes()); err != nil {
		return fmt.Errorf("sim state: %w", err)
	}
	l.mu.Lock()
	l.changed()
	l.mu.Unlock()
	return os.RemoveAll(old)
}
