package status

import (
	"context"
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
	dirSync    groupSync
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
	return &Store{dir: dir}, nil
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
	if err := s.write(s.path(id), append(data, '\n'), durable); err != nil {
		return nil, fmt.Errorf("write status of %s: %w", id, err)
	}
	return st, nil
}

// write replaces path atomically: a temp file in the folder, renamed over
// it, so that a reader sees the old file or the new one and never part of
// one. Durable writes fsync the file before the rename and the folder
// after it; writers that finish at the same time share the folder's fsync.
func (s *Store) write(path string, data []byte, durable bool) error {
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		return s.dirSync.sync(s.dir)
	}
	return nil
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
