package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// Store reads and writes status files in one folder. Updates of different
// guests run side by side: a status write waits for its fsync, and a
// controller with many workers must not queue them all behind one lock.
type Store struct {
	dir   string
	mu    sync.Mutex
	locks map[api.ID]*sync.Mutex
	// stripes hold flock'd files shared with other phoenix processes; a
	// guest maps to one stripe by its ID.
	stripeOnce sync.Once
	stripeErr  error
	stripes    [stripeCount]*os.File
	readOnly   bool
}

const stripeCount = 32

// NewStore opens the status folder, creating it (0700) when needed.
func NewStore(dir string) (*Store, error) {
	if err := fsutil.MkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("status folder: %w", err)
	}
	return &Store{dir: dir}, nil
}

// NewReadOnlyStore opens the status folder for reading only: it creates
// nothing (a missing folder reads as no statuses) and Update fails. For
// status and --dry-run, which must work on a read-only state dir.
func NewReadOnlyStore(dir string) *Store { return &Store{dir: dir, readOnly: true} }

// Dir is the status folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(id api.ID) string { return filepath.Join(s.dir, id.String()+".json") }

// Get returns the recorded status of a guest; a guest never applied gets a
// Pending status.
func (s *Store) Get(id api.ID, kind api.Kind) (*api.Status, error) {
	data, err := fsutil.ReadFileNoFollow(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return &api.Status{ID: id.String(), Kind: kind, Phase: api.PhasePending}, nil
	}
	if err != nil {
		return nil, err
	}
	var st api.Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("status of %s (%s): %w", id, s.path(id), err)
	}
	return &st, nil
}

// Update applies fn to the guest's status and writes it back, under a lock
// that other phoenix processes respect too.
func (s *Store) Update(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
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
	if err := fsutil.WriteFile(s.path(id), append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write status of %s: %w", id, err)
	}
	return st, nil
}

// lock takes the guest's mutex, then its stripe's flock: the mutex keeps
// goroutines of this process apart (flock is per open file, shared by
// them), the flock keeps other processes out.
func (s *Store) lock(id api.ID) (func(), error) {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[api.ID]*sync.Mutex{}
	}
	m := s.locks[id]
	if m == nil {
		m = &sync.Mutex{}
		s.locks[id] = m
	}
	s.mu.Unlock()
	m.Lock()
	s.stripeOnce.Do(s.openStripes)
	if s.stripeErr != nil {
		m.Unlock()
		return nil, s.stripeErr
	}
	f := s.stripes[int(id)%stripeCount]
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		m.Unlock()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		m.Unlock()
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
