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
	// guest maps to one stripe by its ID. The goroutines of this process
	// hold a stripe together (lock.Shared), without a bound: the
	// controller is the state dir's only writer while it runs.
	stripeOnce sync.Once
	stripeErr  error
	stripes    [stripeCount]lock.Shared
	readOnly   bool
	commits    committer

	// cache holds the last status this store read or wrote per guest,
	// with the identity of its file: a read whose file is still that one
	// costs a stat instead of an open, a read and a JSON decode. A file
	// replaced by anyone (another process, an editor) has another
	// identity and is read again.
	cacheMu sync.Mutex
	cache   map[api.ID]cached
	// pending holds, per guest, the status of a write queued by
	// UpdateAsync and not yet in place: reads in this process see it
	// ahead of the file (guarded by cacheMu).
	pending map[api.ID]*Pending

	// firsts holds the first statuses of guests without a file
	// (firsts.go); JournalFirsts makes UpdateNoSync write them there.
	firsts *firsts
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
	tmp := filepath.Join(dir, tmpDir)
	removeLeftovers(tmp)
	return &Store{dir: dir, commits: committer{dir: dir, tmp: tmp}, firsts: newFirsts(dir)}, nil
}

// JournalFirsts makes UpdateNoSync record the first status of a guest that
// has no status file as a line of the folder's journal rather than a file
// of its own (firsts.go says why); Close compacts the journal. For the
// controller, the one process whose first sync writes thousands of marks.
func (s *Store) JournalFirsts() {
	if !s.readOnly {
		s.firsts.writer = true
	}
}

// DeferFrees makes the store keep the files its writes replace and unlink
// them in a batch once it is idle, rather than free each at once (see
// trash.go: on ext4 without a journal, many frees slow every file
// creation that follows for a minute or more). For a process that writes
// many statuses in a burst, the controller; call it before the first
// write, and Close at the end.
func (s *Store) DeferFrees() {
	if !s.readOnly {
		s.commits.trash = newTrash()
	}
}

// DelayGroups makes a group commit of a few writes wait a moment for more
// (groupDelay): for a process whose writes come in bursts from many
// workers at once, the controller. A lone write is not delayed.
func (s *Store) DelayGroups() {
	s.commits.delay = groupDelay
}

// NewReadOnlyStore opens the status folder for reading only: it creates
// nothing (a missing folder reads as no statuses) and Update fails. For
// status and --dry-run, which must work on a read-only state dir.
func NewReadOnlyStore(dir string) *Store {
	return &Store{dir: dir, readOnly: true, firsts: newFirsts(dir)}
}

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
	st, _, err := s.get(id, kind)
	return st, err
}

// source is where a status read came from.
type source int

const (
	fromNone    source = iota // nothing recorded: Pending
	fromPending               // a queued write of this process
	fromFile
	fromFirsts // the journal of first statuses
)

func (s *Store) get(id api.ID, kind api.Kind) (*api.Status, source, error) {
	if st, ok := s.pendingStatus(id); ok {
		return st, fromPending, nil
	}
	path := s.path(id)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.forget(id)
		return s.first(id, kind)
	}
	if err != nil {
		return nil, fromFile, err
	}
	if key, ok := keyOf(fi); ok {
		if st, ok := s.cached(id, key); ok {
			return st, fromFile, nil
		}
	}
	return s.read(id, kind)
}

// first reads a guest without a status file from the journal of first
// statuses.
func (s *Store) first(id api.ID, kind api.Kind) (*api.Status, source, error) {
	st, ok, err := s.firsts.get(id)
	if err != nil {
		return nil, fromFirsts, err
	}
	if ok {
		return st, fromFirsts, nil
	}
	return &api.Status{ID: id.String(), Kind: kind, Phase: api.PhasePending}, fromNone, nil
}

// read reads the guest's status file and remembers it with the identity
// of the file it came from (taken from the open file, so the two match).
func (s *Store) read(id api.ID, kind api.Kind) (*api.Status, source, error) {
	path := s.path(id)
	f, err := fsutil.OpenNoFollow(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		s.forget(id)
		return s.first(id, kind)
	}
	if err != nil {
		return nil, fromFile, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fromFile, err
	}
	key, ok := keyOf(fi)
	if !ok {
		return nil, fromFile, fmt.Errorf("status of %s (%s): %w, refused in the state dir", id, path, fsutil.ErrNotRegular)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fromFile, err
	}
	var st api.Status
	if err := json.Unmarshal(data, &st); err != nil {
		s.forget(id)
		return nil, fromFile, fmt.Errorf("status of %s (%s): %w", id, path, err)
	}
	s.remember(id, key, &st)
	return &st, fromFile, nil
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
	s.rememberLocked(id, key, st)
}

func (s *Store) rememberLocked(id api.ID, key fileKey, st *api.Status) {
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
	return s.update(id, kind, fn, durable, nil)
}

// UpdateNoSync is Update without waiting for the disk: the file is still
// replaced whole and survives a killed process, but a power cut may bring
// back the status before it. For marks whose loss is safe, such as
// Provisioning: the status before it makes the next run re-check the guest
// as well.
func (s *Store) UpdateNoSync(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
	return s.update(id, kind, fn, noSync, nil)
}

// writeMode is how an update reaches the disk.
type writeMode int

const (
	durable writeMode = iota // on disk when the update returns
	noSync                   // in place, not fsync'd
	async                    // queued for the next group commit
)

// UpdateAsync is Update that returns before the status is on disk: the new
// file is written and queued for the next group commit, and the returned
// Pending's Wait returns once it is in place and on disk. Until then this
// store's reads return the new status, and another update or a delete of
// the guest waits for it first, so that writes land in order. A worker
// that goes on with its next guest meanwhile makes the groups larger: one
// fdatasync round and one folder fsync for many outcomes. Other processes
// read the file as it was until the commit; the controller, the one
// process that uses this, is the state dir's only writer while it runs.
func (s *Store) UpdateAsync(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, *Pending, error) {
	var p *Pending
	st, err := s.update(id, kind, fn, async, &p)
	return st, p, err
}

// Pending is a status write queued by UpdateAsync.
type Pending struct {
	s   *Store
	id  api.ID
	st  api.Status
	req *commitReq
}

// Wait returns once the write is in place and on disk, or failed (then the
// file is as it was before the write, and so are this store's reads).
// It may be called any number of times.
func (p *Pending) Wait() error {
	key, err := p.s.commits.wait(p.req)
	p.s.cacheMu.Lock()
	defer p.s.cacheMu.Unlock()
	if p.s.pending[p.id] == p {
		delete(p.s.pending, p.id)
		if err == nil {
			p.s.rememberLocked(p.id, key, &p.st)
		} else {
			delete(p.s.cache, p.id)
		}
	}
	if err != nil {
		return fmt.Errorf("write status of %s: %w", p.id, err)
	}
	return nil
}

func (s *Store) pendingStatus(id api.ID) (*api.Status, bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	p, ok := s.pending[id]
	if !ok {
		return nil, false
	}
	return clone(&p.st), true
}

// settle waits for the guest's queued write, if any, so that what comes
// next lands after it. The guest's lock is held.
func (s *Store) settle(id api.ID) {
	s.cacheMu.Lock()
	p := s.pending[id]
	s.cacheMu.Unlock()
	if p != nil {
		// A failed write leaves the file as it was: the next write starts
		// from that, as a fresh Update would.
		_ = p.Wait()
	}
}

func (s *Store) update(id api.ID, kind api.Kind, fn func(*api.Status), mode writeMode, queued **Pending) (*api.Status, error) {
	if s.readOnly {
		return nil, fmt.Errorf("write status of %s: the status store is open read-only", id)
	}
	unlock, err := s.lock(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s.settle(id)
	st, src, err := s.get(id, kind)
	if err != nil {
		// A corrupt file must not block progress: start over from Pending.
		st = &api.Status{ID: id.String(), Kind: kind, Phase: api.PhasePending}
	}
	st.ID, st.Kind = id.String(), kind
	fn(st)
	// fresh: the guest has no status file yet (the lock is held).
	fresh := err == nil && (src == fromNone || src == fromFirsts)
	if mode == noSync && s.firsts.writer && fresh {
		if err := s.firsts.add(st); err != nil {
			return nil, fmt.Errorf("write status of %s: %w", id, err)
		}
		return st, nil
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	if mode == async {
		req, err := s.commits.enqueue(s.path(id), data, fresh)
		if err != nil {
			return nil, fmt.Errorf("write status of %s: %w", id, err)
		}
		p := &Pending{s: s, id: id, st: *clone(st), req: req}
		s.cacheMu.Lock()
		if s.pending == nil {
			s.pending = map[api.ID]*Pending{}
		}
		s.pending[id] = p
		s.cacheMu.Unlock()
		*queued = p
		return st, nil
	}
	key, err := s.write(s.path(id), data, mode == durable, fresh)
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
func (s *Store) write(path string, data []byte, durable, fresh bool) (fileKey, error) {
	if durable {
		return s.commits.commit(path, data, fresh)
	}
	r := &commitReq{path: path, data: data, fresh: fresh}
	var err error
	if r.f, err = s.commits.writeTemp(r); err != nil {
		return fileKey{}, err
	}
	s.commits.place(r)
	return r.key, r.err
}

// lock takes the guest's mutex, then its stripe's flock: the mutex keeps
// goroutines of this process apart, the flock keeps other processes out.
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
	st := &s.stripes[int(id)%stripeCount]
	if _, err := st.Hold(); err != nil {
		unlock()
		return nil, err
	}
	return func() {
		st.Release()
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
		s.stripes[i].F = f
	}
}

// Close unlinks the files kept by DeferFrees, compacts the journal of
// first statuses when JournalFirsts was called, and releases the lock
// files.
func (s *Store) Close() error {
	s.commits.trash.empty()
	var err error
	if s.firsts.writer {
		// A guest keeps its line only while it has no file of its own.
		err = s.firsts.compact(func(id api.ID) bool {
			_, err := os.Lstat(s.path(id))
			return errors.Is(err, fs.ErrNotExist)
		})
	}
	s.firsts.close()
	for i := range s.stripes {
		if f := s.stripes[i].F; f != nil {
			f.Close()
		}
	}
	return err
}

// Delete removes a guest's status file.
func (s *Store) Delete(id api.ID) error {
	if s.readOnly {
		return fmt.Errorf("delete status of %s: the status store is open read-only", id)
	}
	unlock, err := s.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	// A queued write renamed into place after the remove would bring the
	// file back.
	s.settle(id)
	// The journal first: a guest without a file must not fall back on
	// its first status.
	if err := s.firsts.clear(id); err != nil {
		return fmt.Errorf("delete status of %s: %w", id, err)
	}
	err = os.Remove(s.path(id))
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
	seen := map[api.ID]bool{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if id, err := api.ParseID(name); err == nil {
			out = append(out, id)
			seen[id] = true
		}
	}
	// A guest whose first write is still queued has a status already,
	// and so has one with a line in the journal of first statuses.
	s.cacheMu.Lock()
	for id := range s.pending {
		if !seen[id] {
			out = append(out, id)
			seen[id] = true
		}
	}
	s.cacheMu.Unlock()
	firsts, err := s.firsts.ids()
	if err != nil {
		return nil, err
	}
	for _, id := range firsts {
		if !seen[id] {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}
