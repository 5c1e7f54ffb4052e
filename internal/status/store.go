package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// Store reads and writes status files in one folder. Updates of different
// guests run side by side: a status write waits for its fsync, and a
// controller with many workers must not queue them all behind one lock.
type Store struct {
	dir   string
	locks lock.Keyed[api.ID]
	// stripes hold flock'd files shared with other phoenix processes; a
	// guest maps to one stripe by its ID.
	stripeOnce sync.Once
	stripeErr  error
	stripes    [stripeCount]*os.File
	readOnly   bool
	commits    committer

	// cache holds the last status this store read or wrote per guest,
	// with the identity of its file: a read whose file is still that one
	// costs a stat instead of an open, a read and a JSON decode. A file
	// replaced by anyone (another process, an editor) has another
	// identity and is read again.
	cacheMu sync.Mutex
	cache   map[api.ID]cached
}

type cached struct {
	key fileKey
	st  api.Status
}

const stripeCount = 32

// NewStore opens the status folder, creating it (0700) when needed.
func NewStore(dir string) (*Store, error) {
	if err := fsutil.MkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("status folder: %w", err)
	}
	if _, err := fsutil.SubdirPrivate(dir, tmpDir); err != nil {
		return nil, fmt.Errorf("status folder: %w", err)
	}
	return &Store{dir: dir, commits: committer{dir: dir, tmp: filepath.Join(dir, tmpDir)}}, nil
}

// NewReadOnlyStore opens the status folder for reading only: it creates
// nothing (a missing folder reads as no statuses) and Update fails. For
// status and --dry-run, which must work on a read-only state dir.
func NewReadOnlyStore(dir string) *Store { return &Store{dir: dir, readOnly: true} }

// tmpDir is the subfolder new status files are written in before they are
// renamed into place: creating a file in a folder of 10,000 costs more
// than in a small one, and a write cut short by a kill leaves its temp
// file there, out of the way.
const tmpDir = ".tmp"

// Dir is the status folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(id api.ID) string { return filepath.Join(s.dir, id.String()+".json") }

// Get returns the recorded status of a guest; a guest never applied gets a
// Pending status. The caller may change what it gets.
func (s *Store) Get(id api.ID, kind api.Kind) (*api.Status, error) {
	path := s.path(id)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.forget(id)
		return &api.Status{ID: id.String(), Kind: kind, Phase: api.PhasePending}, nil
	}
	if err != nil {
		return nil, err
	}
	if key, ok := keyOf(fi); ok {
		if st, ok := s.cached(id, key); ok {
			return st, nil
		}
	}
	return s.read(id, kind)
}

// read reads the guest's status file and remembers it with the identity
// of the file it came from (taken from the open file, so the two match).
func (s *Store) read(id api.ID, kind api.Kind) (*api.Status, error) {
	path := s.path(id)
	f, err := fsutil.OpenNoFollow(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		s.forget(id)
		return &api.Status{ID: id.String(), Kind: kind, Phase: api.PhasePending}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	key, ok := keyOf(fi)
	if !ok {
		return nil, fmt.Errorf("status of %s (%s): %w, refused in the state dir", id, path, fsutil.ErrNotRegular)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	var st api.Status
	if err := json.Unmarshal(data, &st); err != nil {
		s.forget(id)
		return nil, fmt.Errorf("status of %s (%s): %w", id, path, err)
	}
	s.remember(id, key, &st)
	return &st, nil
}

func (s *Store) cached(id api.ID, key fileKey) (*api.Status, bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	c, ok := s.cache[id]
	if !ok || c.key != key {
		return nil, false
	}
	return clone(&c.st), true
}

func (s *Store) remember(id api.ID, key fileKey, st *api.Status) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cache == nil {
		s.cache = map[api.ID]cached{}
	}
	s.cache[id] = cached{key: key, st: *clone(st)}
}

func (s *Store) forget(id api.ID) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	delete(s.cache, id)
}

// clone copies a status deep enough that changing the copy leaves st alone.
func clone(st *api.Status) *api.Status {
	c := *st
	if st.LastAppliedAt != nil {
		t := *st.LastAppliedAt
		c.LastAppliedAt = &t
	}
	c.Conditions = slices.Clone(st.Conditions)
	c.LastSteps = slices.Clone(st.LastSteps)
	return &c
}

// Update applies fn to the guest's status and writes it back durably (on
// disk when Update returns), under a lock that other phoenix processes
// respect too.
func (s *Store) Update(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
	return s.update(id, kind, fn, true)
}

// UpdateNoSync is Update without waiting for the disk: the file is still
// replaced whole and survives a killed process, but a power cut may bring
// back the status before it. For marks whose loss is safe, such as
// Provisioning: the status before it makes the next run re-check the guest
// as well.
func (s *Store) UpdateNoSync(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
	return s.update(id, kind, fn, false)
}

func (s *Store) update(id api.ID, kind api.Kind, fn func(*api.Status), durable bool) (*api.Status, error) {
	if s.readOnly {
		return nil, fmt.Errorf("write status of %s: the status store is open read-only", id)
	}
	unlock, err := s.lock(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := s.Get(id, kind)
	if err != nil {
		// A corrupt file must not block progress: start over from Pending.
		st = &api.Status{ID: id.String(), Kind: kind, Phase: api.PhasePending}
	}
	st.ID, st.Kind = id.String(), kind
	fn(st)
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	key, err := s.write(s.path(id), append(data, '\n'), durable)
	if err != nil {
		s.forget(id)
		return nil, fmt.Errorf("write status of %s: %w", id, err)
	}
	s.remember(id, key, st)
	return st, nil
}

// write replaces path atomically: a temp file in the folder, renamed over
// it, so that a reader sees the old file or the new one and never part of
// one. Durable writes go through the committer, which fsyncs the file
// before the rename and the folder after it, for a group of writers at
// once.
func (s *Store) write(path string, data []byte, durable bool) (fileKey, error) {
	if durable {
		return s.commits.commit(path, data)
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), filepath.Base(path)+".*")
	if err != nil {
		return fileKey{}, err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	var key fileKey
	if err == nil {
		key, err = statKey(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fileKey{}, err
	}
	return key, nil
}

// lock takes the guest's mutex, then its stripe's flock: the mutex keeps
// goroutines of this process apart (flock is per open file, shared by
// them), the flock keeps other processes out.
func (s *Store) lock(id api.ID) (func(), error) {
	unlock, err := s.locks.Lock(context.Background(), id)
	if err != nil {
		return nil, err
	}
	s.stripeOnce.Do(s.openStripes)
	if s.stripeErr != nil {
		unlock()
		return nil, s.stripeErr
	}
	f := s.stripes[int(id)%stripeCount]
	if err := lock.Flock(context.Background(), f, syscall.LOCK_EX, 0, time.Time{}); err != nil {
		unlock()
		return nil, err
	}
	return func() {
		lock.Unflock(f)
		unlock()
	}, nil
}

func (s *Store) openStripes() {
	dir, err := fsutil.SubdirPrivate(s.dir, ".locks")
	if err != nil {
		s.stripeErr = err
		return
	}
	for i := range s.stripes {
		f, err := fsutil.OpenNoFollow(filepath.Join(dir, strconv.Itoa(i)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			s.stripeErr = err
			return
		}
		s.stripes[i] = f
	}
}

// Close releases the lock files.
func (s *Store) Close() error {
	for _, f := range s.stripes {
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// Delete removes a guest's status file.
func (s *Store) Delete(id api.ID) error {
	if s.readOnly {
		return fmt.Errorf("delete status of %s: the status store is open read-only", id)
	}
	err := os.Remove(s.path(id))
	s.forget(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// IDs lists the guests that have a status file, ascending.
func (s *Store) IDs() ([]api.ID, error) {
	entries, err := os.ReadDir(s.dir)
	if s.readOnly && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []api.ID
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if id, err := api.ParseID(name); err == nil {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}
