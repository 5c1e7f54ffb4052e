package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Writers that commit while a group is being written form the next group:
// one fsync of the folder for all of them. Here the first writer's group
// is held before its rename until seven more writers wait; they must then
// be committed together, and each must find its own status on disk.
func TestStore_durableWritesCommitInGroups(t *testing.T) {
	s, dir := newTestStore(t)
	gate := holdFirstGroup(s)
	update := func(id api.ID) {
		st, err := s.Update(id, api.KindLXC, func(st *api.Status) {
			st.Phase, st.LastError = api.PhaseFailed, fmt.Sprint("outcome of ", id)
		})
		if err != nil {
			t.Error(err)
			return
		}
		// Durable and in place when Update returns.
		data, err := os.ReadFile(filepath.Join(dir, id.String()+".json"))
		var got api.Status
		if err != nil || json.Unmarshal(data, &got) != nil || got.LastError != st.LastError {
			t.Errorf("after Update(%d) returned, the file holds %q (%v)", id, data, err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); update(900) }()
	gate.waitHeld()
	for id := api.ID(901); id <= 907; id++ {
		wg.Add(1)
		go func() { defer wg.Done(); update(id) }()
	}
	for !queued(s, 7) {
		runtimeYield()
	}
	gate.release()
	wg.Wait()
	if groups := gate.sizes(); fmt.Sprint(groups) != "[1 7]" {
		t.Errorf("groups committed: %v, want [1 7]", groups)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, tmpDir, "*")); len(tmp) != 0 {
		t.Errorf("temp files left behind: %v", tmp)
	}
}

func queued(s *Store, n int) bool {
	s.commits.mu.Lock()
	defer s.commits.mu.Unlock()
	return len(s.commits.queue) == n
}

// A write that fails fails its own Update only: the others of its group
// are committed.
func TestStore_failedWriteFailsOnlyItsOwnUpdate(t *testing.T) {
	s, dir := newTestStore(t)
	// A folder where 942's status file belongs: the rename onto it fails.
	if err := os.MkdirAll(filepath.Join(dir, "942.json", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	errs := make(map[api.ID]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id := api.ID(940); id <= 944; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update(id, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady })
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, err := range errs {
		if (err != nil) != (id == 942) {
			t.Errorf("Update(%d) = %v", id, err)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, tmpDir, "*")); len(tmp) != 0 {
		t.Errorf("temp files left behind: %v", tmp)
	}
}

func runtimeYield() { time.Sleep(time.Millisecond) }

// heldGroup starts n writers whose outcomes are committed as one group:
// the first writer's group is held before its rename until the others
// are queued behind it. It returns each writer's error by ID.
func heldGroup(t *testing.T, s *Store, ids []api.ID) map[api.ID]error {
	t.Helper()
	gate := holdFirstGroup(s)
	var mu sync.Mutex
	errs := map[api.ID]error{}
	var wg sync.WaitGroup
	update := func(id api.ID) {
		defer wg.Done()
		_, err := s.Update(id, api.KindLXC, phase(api.PhaseReady))
		mu.Lock()
		errs[id] = err
		mu.Unlock()
	}
	wg.Add(1)
	go update(ids[0])
	gate.waitHeld()
	for _, id := range ids[1:] {
		wg.Add(1)
		go update(id)
	}
	for !queued(s, len(ids)-1) {
		runtimeYield()
	}
	gate.release()
	wg.Wait()
	return errs
}

// groupGate holds the first group a store commits before its renames
// until released, and records the size of every group.
type groupGate struct {
	mu      sync.Mutex
	groups  []int
	held    chan struct{}
	release func()
}

func holdFirstGroup(s *Store) *groupGate {
	g := &groupGate{held: make(chan struct{})}
	release := make(chan struct{})
	g.release = sync.OnceFunc(func() { close(release) })
	s.commits.beforeRename = func(n int) {
		g.mu.Lock()
		g.groups = append(g.groups, n)
		first := len(g.groups) == 1
		g.mu.Unlock()
		if first {
			close(g.held)
			<-release
		}
	}
	return g
}

// waitHeld returns once the first group is held.
func (g *groupGate) waitHeld() { <-g.held }

func (g *groupGate) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.groups)
}

// Every file of a group is flushed before it is renamed into place, not
// only the first: a power cut must never leave a renamed file whose data
// is not on disk.
func TestCommit_everyFileOfAGroupFlushed(t *testing.T) {
	s, dir := newTestStore(t)
	var mu sync.Mutex
	flushed := map[string]bool{}
	s.commits.syncFile = func(f *os.File) error {
		// Still the temp file: the flush comes before the rename.
		if filepath.Dir(f.Name()) != filepath.Join(dir, tmpDir) {
			t.Errorf("flushed %s, not a temp file", f.Name())
		}
		mu.Lock()
		flushed[strings.SplitN(filepath.Base(f.Name()), ".", 2)[0]] = true
		mu.Unlock()
		return fdatasync(f)
	}
	ids := []api.ID{100, 101, 102, 103, 104}
	for id, err := range heldGroup(t, s, ids) {
		if err != nil {
			t.Errorf("guest %s: %v", id, err)
		}
	}
	for _, id := range ids {
		if !flushed[id.String()] {
			t.Errorf("guest %s's file was renamed into place without a flush", id)
		}
	}
}

// A file whose flush fails is not renamed into place: its writer gets the
// error and the old status stays; the others of its group are written.
func TestCommit_failedFlushKeepsOldFile(t *testing.T) {
	s, dir := newTestStore(t)
	if _, err := s.Update(102, api.KindLXC, phase(api.PhaseProvisioning)); err != nil {
		t.Fatal(err)
	}
	s.commits.syncFile = func(f *os.File) error {
		if strings.HasPrefix(filepath.Base(f.Name()), "102.json.") {
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syscall.EIO}
		}
		return fdatasync(f)
	}
	errs := heldGroup(t, s, []api.ID{100, 101, 102, 103})
	if err := errs[102]; err == nil || !strings.Contains(err.Error(), "fdatasync") {
		t.Errorf("the writer whose flush failed got %v, want the fdatasync error", err)
	}
	if st, _ := onDisk(t, dir, 102); st.Phase != api.PhaseProvisioning {
		t.Errorf("after a failed flush the file says %s, want the old Provisioning", st.Phase)
	}
	for _, id := range []api.ID{100, 101, 103} {
		if errs[id] != nil {
			t.Errorf("guest %s: %v", id, errs[id])
		}
		if st, _ := onDisk(t, dir, id); st.Phase != api.PhaseReady {
			t.Errorf("guest %s: the file says %s, want Ready", id, st.Phase)
		}
	}
	if names := tmpEntries(t, dir); len(names) != 0 {
		t.Errorf("the temp folder keeps %v", names)
	}
}

// A group of bulkGroup files or more is flushed with one syncfs, not an
// fdatasync per file, before any of its renames; every writer finds its
// status on disk.
func TestCommit_bulkGroupFlushedWithOneSyncfs(t *testing.T) {
	s, dir := newTestStore(t)
	var mu sync.Mutex
	var perFile int
	var whole []int // status files in place at each syncfs
	s.commits.syncFile = func(f *os.File) error {
		mu.Lock()
		perFile++
		mu.Unlock()
		return fdatasync(f)
	}
	s.commits.syncFS = func(f *os.File) error {
		names, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		mu.Lock()
		whole = append(whole, len(names))
		mu.Unlock()
		return syncfs(f)
	}
	ids := make([]api.ID, bulkGroup+1)
	for i := range ids {
		ids[i] = api.ID(100 + i)
	}
	for id, err := range heldGroup(t, s, ids) {
		if err != nil {
			t.Errorf("guest %s: %v", id, err)
		}
	}
	// The held first writer is a group of one: its own fdatasync.
	if perFile != 1 || len(whole) != 1 {
		t.Errorf("%d fdatasyncs and %d syncfs for a group of 1 and one of %d, want 1 and 1", perFile, len(whole), bulkGroup)
	}
	if len(whole) == 1 && whole[0] != 1 {
		t.Errorf("%d status files were in place at the syncfs, want only the first group's: it comes before the renames", whole[0])
	}
	for _, id := range ids {
		if st, ok := onDisk(t, dir, id); !ok || st.Phase != api.PhaseReady {
			t.Errorf("guest %s: on disk %v (%s), want Ready", id, ok, st.Phase)
		}
	}
}

// A syncfs that fails fails every write of its group, and each keeps its
// old file.
func TestCommit_failedSyncfsFailsTheGroup(t *testing.T) {
	s, dir := newTestStore(t)
	ids := make([]api.ID, bulkGroup+1)
	for i := range ids {
		ids[i] = api.ID(100 + i)
		if i > 0 {
			if _, err := s.Update(ids[i], api.KindLXC, phase(api.PhaseProvisioning)); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.commits.syncFS = func(f *os.File) error {
		return &os.PathError{Op: "syncfs", Path: f.Name(), Err: syscall.EIO}
	}
	errs := heldGroup(t, s, ids)
	for _, id := range ids[1:] {
		if err := errs[id]; err == nil || !strings.Contains(err.Error(), "syncfs") {
			t.Errorf("guest %s: %v, want the syncfs error", id, err)
		}
		if st, _ := onDisk(t, dir, id); st.Phase != api.PhaseProvisioning {
			t.Errorf("guest %s: after a failed syncfs the file says %s, want the old Provisioning", id, st.Phase)
		}
	}
	if names := tmpEntries(t, dir); len(names) != 0 {
		t.Errorf("the temp folder keeps %v", names)
	}
}

// A folder fsync that fails fails every write of its group: none of them
// is known to be durable.
func TestCommit_failedFolderSyncFailsTheGroup(t *testing.T) {
	s, dir := newTestStore(t)
	s.commits.dirSync.fsync = func(string) error { return syscall.EIO }
	for id, err := range heldGroup(t, s, []api.ID{100, 101, 102}) {
		if err == nil || !strings.Contains(err.Error(), "fsync "+dir) {
			t.Errorf("guest %s: %v, want the folder's fsync error", id, err)
		}
	}
	s.commits.dirSync.fsync = nil
	if _, err := s.Update(100, api.KindLXC, phase(api.PhaseFailed)); err != nil {
		t.Errorf("once the folder syncs again: %v", err)
	}
}

// Writes one after the other each get a folder fsync that starts after
// their rename: a later write is never taken as covered by an earlier
// write's fsync.
func TestCommit_sequentialWritesEachSyncTheFolder(t *testing.T) {
	s, _ := newTestStore(t)
	var synced [][]string // the status files present at each folder fsync
	s.commits.dirSync.fsync = func(d string) error {
		names, err := filepath.Glob(filepath.Join(d, "*.json"))
		synced = append(synced, names)
		if err != nil {
			return err
		}
		return syncDir(d)
	}
	ids := []api.ID{100, 101, 102}
	for i, id := range ids {
		if _, err := s.Update(id, api.KindLXC, phase(api.PhaseReady)); err != nil {
			t.Fatal(err)
		}
		if len(synced) != i+1 || len(synced[i]) != i+1 {
			t.Fatalf("after the write of %s: folder fsyncs saw %v, want one more, after its rename", id, synced)
		}
	}
}

// syncDir fsyncs the folder it opened, and a folder it cannot open is an
// error.
func TestSyncDir(t *testing.T) {
	defer func(f func(*os.File) error) { fsyncFolder = f }(fsyncFolder)
	var synced []string
	fsyncFolder = func(f *os.File) error {
		synced = append(synced, f.Name())
		return f.Sync()
	}
	dir := t.TempDir()
	if err := syncDir(dir); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0] != dir {
		t.Errorf("syncDir(%s) fsynced %v", dir, synced)
	}
	if err := syncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("syncDir of a missing folder reported no error")
	}
	// A file system that cannot fsync a folder says EINVAL: the rename is
	// as durable as it makes it, not an error. Any other failure is one.
	fsyncFolder = func(*os.File) error { return syscall.EINVAL }
	if err := syncDir(dir); err != nil {
		t.Errorf("a folder fsync refused with EINVAL: %v, want no error", err)
	}
	fsyncFolder = func(*os.File) error { return syscall.EIO }
	if err := syncDir(dir); !errors.Is(err, syscall.EIO) {
		t.Errorf("a folder fsync that failed with EIO: %v", err)
	}
}

// With DelayGroups, a group of a few writes waits for more before its
// flush, and a writer that queues meanwhile is flushed with it; a lone
// write is flushed at once, and a store without DelayGroups never waits.
func TestCommit_delayedGroupTakesLateWriters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  bool
		burst  []api.ID // queued behind the first write's held group
		pauses int
		groups []int
	}{
		{"lone write", true, nil, 0, []int{1}},
		{"burst", true, []api.ID{101, 102}, 1, []int{1, 3}},
		{"burst without DelayGroups", false, []api.ID{101, 102}, 0, []int{1, 2}},
		{"burst large enough at once", true, ids(101, bulkGroup), 0, []int{1, bulkGroup}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newTestStore(t)
			if tc.delay {
				s.DelayGroups()
			}
			gate := holdFirstGroup(s)
			var wg sync.WaitGroup
			update := func(id api.ID) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.Update(id, api.KindLXC, phase(api.PhaseReady)); err != nil {
						t.Error(err)
					}
				}()
			}
			pauses := 0
			s.commits.sleep = func(d time.Duration) {
				if d != groupDelay {
					t.Errorf("paused %v, want %v", d, groupDelay)
				}
				pauses++
				if pauses > tc.pauses {
					return
				}
				update(199)
				for !queued(s, len(tc.burst)+1) {
					runtimeYield()
				}
			}
			update(100)
			if len(tc.burst) > 0 {
				gate.waitHeld()
			}
			for _, id := range tc.burst {
				update(id)
			}
			for !queued(s, len(tc.burst)) {
				runtimeYield()
			}
			gate.release()
			wg.Wait()
			if pauses != tc.pauses {
				t.Errorf("paused %d times, want %d", pauses, tc.pauses)
			}
			if groups := gate.sizes(); fmt.Sprint(groups) != fmt.Sprint(tc.groups) {
				t.Errorf("groups committed: %v, want %v", groups, tc.groups)
			}
			for _, id := range append([]api.ID{100}, tc.burst...) {
				if _, err := os.Stat(filepath.Join(dir, id.String()+".json")); err != nil {
					t.Errorf("guest %s: %v", id, err)
				}
			}
		})
	}
}

func ids(from api.ID, n int) []api.ID {
	out := make([]api.ID, n)
	for i := range out {
		out[i] = from + api.ID(i)
	}
	return out
}

// A guest's first write whose flush fails is not put in place: there is
// no file afterwards, and the update says it failed.
func TestCommit_failedFirstWriteLeavesNoFile(t *testing.T) {
	s, dir := newTestStore(t)
	s.commits.syncFile = func(*os.File) error { return syscall.EIO }
	if _, err := s.Update(100, api.KindLXC, phase(api.PhaseReady)); !errors.Is(err, syscall.EIO) {
		t.Errorf("Update with a failed flush: %v, want EIO", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "100.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file of a failed first write is in place: %v", err)
	}
	if st, err := s.Get(100, api.KindLXC); err != nil || st.Phase != api.PhasePending {
		t.Errorf("Get after a failed first write: %+v, %v; want Pending", st, err)
	}
}
