package sim

import (
	"bytes"
	"context"
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
	"syscall"
	"time"

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
// Appends, truncation of a torn tail and compaction all happen under one
// lock (a mutex in the process, a flock on state.lock across processes),
// so a line that ends without a newline while the lock is held was torn by
// a killed process and is cut off. Readers take no flock: they consume
// complete lines only, and notice a compaction (a new file renamed over the
// old one) by its inode.
type stateLog struct {
	path string
	// lockPath is the flock'd file; lockFile its open handle.
	lockPath string
	lockFile *os.File
	// writer serializes writers of this process; flock is per open file
	// and would let them all in.
	writer sync.Mutex
	// readOnly opens nothing for writing and takes no lock: a read-only
	// verb must work on a state dir it may not write.
	readOnly bool

	// mu guards the fields below.
	mu   sync.Mutex
	f    *os.File
	ino  uint64
	off  int64 // end of the last complete line consumed
	recs map[api.ID][]byte
	live int64 // bytes of the lines in recs
}

const (
	logName  = "state.log"
	lockName = "state.lock"
	// compactMin is the size below which the log is never compacted.
	compactMin = 1 << 20
)

// entry is what every line holds besides the record's other fields.
type entry struct {
	ID   api.ID `json:"id"`
	Gone bool   `json:"gone,omitempty"`
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
	if err := l.migrate(dir); err != nil {
		lf.Close()
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refresh(); err != nil {
		lf.Close()
		return nil, err
	}
	return l, nil
}

func (l *stateLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	if l.lockFile == nil {
		return nil
	}
	return l.lockFile.Close()
}

// lock takes the writers' lock, in the process and across processes.
func (l *stateLog) lock() (func(), error) {
	if l.readOnly {
		return nil, errReadOnly
	}
	l.writer.Lock()
	if err := lock.Flock(context.Background(), l.lockFile, syscall.LOCK_EX, time.Millisecond, time.Time{}); err != nil {
		l.writer.Unlock()
		return nil, fmt.Errorf("sim state lock: %w", err)
	}
	return func() {
		lock.Unflock(l.lockFile)
		l.writer.Unlock()
	}, nil
}

// get returns the last line of a guest, nil when it has none. The caller
// must not change it.
func (l *stateLog) get(id api.ID) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refresh(); err != nil {
		return nil, err
	}
	return l.recs[id], nil
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
		l.recs = map[api.ID][]byte{}
	}
	size := fi.Size()
	if size <= l.off {
		return nil
	}
	buf := make([]byte, size-l.off)
	n, err := l.f.ReadAt(buf, l.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("sim state: %w", err)
	}
	buf = buf[:n]
	for {
		nl := bytes.IndexByte(buf, '\n')
		if nl < 0 {
			// A line still being written, or torn: read again next time.
			return nil
		}
		line := buf[:nl]
		buf = buf[nl+1:]
		l.off += int64(nl + 1)
		l.apply(line)
	}
}

// apply takes one complete line into recs. A line that is not a record
// (torn by a crash before a later append followed it) is skipped.
func (l *stateLog) apply(line []byte) {
	var e entry
	if len(line) == 0 || json.Unmarshal(line, &e) != nil || e.ID == 0 {
		return
	}
	if old, ok := l.recs[e.ID]; ok {
		l.live -= int64(len(old) + 1)
		delete(l.recs, e.ID)
	}
	if !e.Gone {
		// Its own copy: buf is the read buffer of this refresh.
		l.recs[e.ID] = bytes.Clone(line)
		l.live += int64(len(line) + 1)
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

// append writes lines for guests while the caller holds the writers' lock:
// first catching up and cutting a torn tail, so that the new line starts
// on a line of its own. Each line is written with one write call.
func (l *stateLog) append(line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refresh(); err != nil {
		return err
	}
	if fi, err := l.f.Stat(); err == nil && fi.Size() > l.off {
		if err := l.f.Truncate(l.off); err != nil {
			return fmt.Errorf("sim state: cut torn line: %w", err)
		}
	}
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	if _, err := l.f.Write(buf); err != nil {
		return fmt.Errorf("sim state: %w", err)
	}
	l.off += int64(len(buf))
	l.apply(line)
	if l.off > compactMin && l.off > 2*l.live {
		return l.compact()
	}
	return nil
}

// compact writes the live records to a new file and renames it over the
// log. The caller holds the writers' lock and mu.
func (l *stateLog) compact() error {
	ids := make([]api.ID, 0, len(l.recs))
	for id := range l.recs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var buf bytes.Buffer
	buf.Grow(int(l.live))
	for _, id := range ids {
		buf.Write(l.recs[id])
		buf.WriteByte('\n')
	}
	if err := writeReplace(l.path, buf.Bytes()); err != nil {
		return fmt.Errorf("sim state: compact: %w", err)
	}
	// The next refresh sees the new inode and reads it whole.
	return l.refresh()
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
		l.apply(c.Bytes())
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
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
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
	return os.RemoveAll(old)
}
