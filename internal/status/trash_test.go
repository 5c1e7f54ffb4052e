package status

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func tmpEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// With deferred frees a write still replaces the file at once for every
// reader, a reader of the old file still reads it whole, and the old
// files are gone once the store is closed.
func TestStore_deferredFrees(t *testing.T) {
	s, dir := newTestStore(t)
	s.DeferFrees()
	if _, err := s.UpdateNoSync(7, api.KindLXC, phase(api.PhaseProvisioning)); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(filepath.Join(dir, "7.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := s.Update(7, api.KindLXC, phase(api.PhaseReady)); err != nil {
		t.Fatal(err)
	}
	_, p, err := s.UpdateAsync(7, api.KindLXC, phase(api.PhaseFailed))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if st, _ := onDisk(t, dir, 7); st.Phase != api.PhaseFailed {
		t.Errorf("the file says %s, want the last write's Failed", st.Phase)
	}
	data, err := io.ReadAll(old)
	var was api.Status
	if err != nil || json.Unmarshal(data, &was) != nil || was.Phase != api.PhaseProvisioning {
		t.Errorf("a reader of the replaced file reads %q (%v), want the whole Provisioning status", data, err)
	}
	if got := s.commits.trash.pending(); got != 2 {
		t.Errorf("%d replaced files kept, want 2 (the mark and the Ready)", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if names := tmpEntries(t, dir); len(names) != 0 {
		t.Errorf("after Close the temp folder holds %v", names)
	}
	if st, _ := onDisk(t, dir, 7); st.Phase != api.PhaseFailed {
		t.Errorf("after Close the file says %s, want Failed", st.Phase)
	}
}

// The kept files go once the store has been idle for trashIdle, without a
// Close.
func TestStore_deferredFreesGoWhenIdle(t *testing.T) {
	s, dir := newTestStore(t)
	s.DeferFrees()
	s.commits.trash.idle = 10 * time.Millisecond
	for _, ph := range []api.Phase{api.PhaseProvisioning, api.PhaseReady, api.PhaseFailed} {
		if _, err := s.Update(9, api.KindVM, phase(ph)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for len(tmpEntries(t, dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the temp folder still holds %v a minute after the last write", tmpEntries(t, dir))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, _ := onDisk(t, dir, 9); st.Phase != api.PhaseFailed {
		t.Errorf("the file says %s, want Failed", st.Phase)
	}
}

// Opening a store removes what killed writers left in the temp folder,
// and only what nobody touched for trashAge.
func TestNewStore_removesLeftovers(t *testing.T) {
	defer func(d time.Duration) { trashAge = d }(trashAge)
	dir := t.TempDir()
	if _, err := NewStore(dir); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, tmpDir, "7.json.123")
	if err := os.WriteFile(left, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	trashAge = time.Hour
	if _, err := NewStore(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); err != nil {
		t.Errorf("a temp file written moments ago was removed: %v", err)
	}
	trashAge = 0
	if _, err := NewStore(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("a leftover older than trashAge is still there (%v)", err)
	}
}

// A store that is never idle still keeps at most about its bound of
// replaced files: past it, the oldest half is unlinked at once.
func TestStore_deferredFreesBounded(t *testing.T) {
	s, dir := newTestStore(t)
	s.DeferFrees()
	const bound = 4
	s.commits.trash.max = bound
	for i := range 12 {
		if _, err := s.Update(5, api.KindLXC, func(st *api.Status) { st.LastError = fmt.Sprint(i) }); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for n := len(tmpEntries(t, dir)); n > bound+1; n = len(tmpEntries(t, dir)) {
		if time.Now().After(deadline) {
			t.Fatalf("%d replaced files kept after 11 replacements, want at most %d", n, bound+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.commits.trash.pending(); got > bound {
		t.Errorf("%d files listed to unlink, want at most %d", got, bound)
	}
}

// A write that cannot make its temp file fails and leaves the status as it
// was; so does every write mode.
func TestStore_writeWithoutTempFolder(t *testing.T) {
	s, dir := newTestStore(t)
	if _, err := s.Update(5, api.KindLXC, phase(api.PhaseReady)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, tmpDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateNoSync(5, api.KindLXC, phase(api.PhaseProvisioning)); err == nil {
		t.Error("UpdateNoSync without its temp folder reported no error")
	}
	if _, err := s.Update(5, api.KindLXC, phase(api.PhaseFailed)); err == nil {
		t.Error("Update without its temp folder reported no error")
	}
	if _, _, err := s.UpdateAsync(5, api.KindLXC, phase(api.PhaseFailed)); err == nil {
		t.Error("UpdateAsync without its temp folder reported no error")
	}
	if st, _ := onDisk(t, dir, 5); st.Phase != api.PhaseReady {
		t.Errorf("the file says %s, want the Ready it held", st.Phase)
	}
	if st, _ := s.Get(5, api.KindLXC); st.Phase != api.PhaseReady {
		t.Errorf("the store reads %s, want Ready", st.Phase)
	}
}

// A closed store holds no file open: the UI and the CLI open stores and
// must not leak descriptors.
func TestStore_closeReleasesFiles(t *testing.T) {
	open := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	before := open()
	idle, _ := newTestStore(t)
	idle.DeferFrees()
	if err := idle.Close(); err != nil {
		t.Fatalf("Close of a store that kept nothing: %v", err)
	}
	s, _ := newTestStore(t)
	if _, err := s.Update(5, api.KindLXC, phase(api.PhaseReady)); err != nil {
		t.Fatal(err)
	}
	if open() == before {
		t.Fatal("the store holds no lock file open after a write; nothing to check")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := open(); after != before {
		t.Errorf("%d files open before the store, %d after its Close", before, after)
	}
}

// The kept files are due only once the store has been idle for trashIdle
// since its last replacement.
func TestTrash_wait(t *testing.T) {
	last := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	tr := newTrash()
	tr.last = last
	for _, c := range []struct {
		after time.Duration
		want  time.Duration
	}{
		{0, trashIdle},
		{trashIdle / 4, trashIdle * 3 / 4},
		{trashIdle - time.Nanosecond, time.Nanosecond},
		{trashIdle, 0},
		{trashIdle * 10, 0},
	} {
		if got := tr.wait(last.Add(c.after)); got != c.want {
			t.Errorf("%v after the last replacement: due in %v, want %v", c.after, got, c.want)
		}
	}
}

// The timer's tick unlinks nothing while the store is still replacing
// files, and everything once it has been idle.
func TestTrash_tick(t *testing.T) {
	old := filepath.Join(t.TempDir(), "7.json.1")
	if err := os.WriteFile(old, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := newTrash()
	tr.names, tr.last, tr.timer = []string{old}, time.Now(), time.AfterFunc(time.Hour, func() {})
	defer tr.empty()
	tr.tick()
	if _, err := os.Stat(old); err != nil {
		t.Errorf("a replaced file was unlinked while the store was busy: %v", err)
	}
	tr.mu.Lock()
	tr.last = time.Now().Add(-2 * trashIdle)
	tr.mu.Unlock()
	tr.tick()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a replaced file is still there once the store was idle (%v)", err)
	}
}
