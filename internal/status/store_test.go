package status

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

func TestStore_neverAppliedIsPending(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Get(941, api.KindLXC)
	if err != nil || st.Phase != api.PhasePending || st.ID != "941" {
		t.Fatalf("Get(never applied) = %+v, %v; want Pending", st, err)
	}
}

func TestStore_concurrentUpdatesLoseNothing(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewStore(dir)
	b, _ := NewStore(dir) // a second process on the same state dir
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(2)
		for _, s := range []*Store{a, b} {
			go func(s *Store) {
				defer wg.Done()
				_, err := s.Update(941, api.KindLXC, func(st *api.Status) {
					st.Conditions = append(st.Conditions, api.Condition{Type: "Tick", Status: "True", Reason: "Test"})
				})
				if err != nil {
					t.Error(err)
				}
			}(s)
		}
	}
	wg.Wait()
	st, _ := a.Get(941, api.KindLXC)
	if len(st.Conditions) != 80 {
		t.Errorf("%d updates survived of 80", len(st.Conditions))
	}
	tmp, _ := filepath.Glob(filepath.Join(dir, tmpDir, "*"))
	if len(tmp) != 0 {
		t.Errorf("temp files left behind: %v", tmp)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "941.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("status file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestStore_corruptFileIsReplacedOnUpdate(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewStore(dir)
	os.WriteFile(filepath.Join(dir, "941.json"), []byte("{half"), 0o600)
	if _, err := s.Get(941, api.KindLXC); err == nil {
		t.Error("Get of a corrupt status file gave no error")
	}
	if _, err := s.Update(941, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady }); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Get(941, api.KindLXC); err != nil || st.Phase != api.PhaseReady {
		t.Errorf("after update: %+v, %v", st, err)
	}
}

// A reader (the status page, `phoenix status`, another process) must see
// the old status or the new one while a status is rewritten, never a part
// of one. The statuses alternate between a long and a short one, so a
// write in place would show a cut or a mixed file.
func TestStore_readerNeverSeesAPartialFile(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("step failed; ", 20000)
	write := func(i int) {
		if _, err := s.UpdateNoSync(941, api.KindLXC, func(st *api.Status) {
			st.Phase, st.LastError = api.PhaseFailed, ""
			if i%2 == 0 {
				st.LastError = long
			}
		}); err != nil {
			t.Error(err)
		}
	}
	write(0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
				write(i)
			}
		}
	}()
	path := filepath.Join(dir, "941.json")
	for reads := 0; reads < 2000; reads++ {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		var st api.Status
		if err := json.Unmarshal(data, &st); err != nil {
			close(stop)
			<-done
			t.Fatalf("read %d saw a partial status file (%d bytes): %v", reads, len(data), err)
		}
		if st.LastError != "" && st.LastError != long {
			t.Fatalf("read %d saw a mixed status file", reads)
		}
	}
	close(stop)
	<-done
}

// Two guests of one lock stripe updated side by side in one process: when
// the first update ends, the stripe's flock still keeps other processes
// out of the second.
func TestStore_stripeHeldUntilItsLastUpdateEnds(t *testing.T) {
	s, dir := newTestStore(t)
	inside := make(chan api.ID, 2)
	release := map[api.ID]chan struct{}{5: make(chan struct{}), 5 + stripeCount: make(chan struct{})}
	var wg sync.WaitGroup
	for id, ch := range release {
		wg.Go(func() {
			if _, err := s.Update(id, api.KindLXC, func(st *api.Status) {
				inside <- id
				<-ch
				st.Phase = api.PhaseReady
			}); err != nil {
				t.Error(err)
			}
		})
	}
	<-inside
	<-inside
	close(release[5])
	// Update(5) returns once its file is in place; its stripe is let go
	// before that.
	for {
		if st, ok := onDisk(t, dir, 5); ok && st.Phase == api.PhaseReady {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	other, err := os.OpenFile(filepath.Join(dir, ".locks", "5"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	got, err := lock.TryFlock(other, syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	if got {
		lock.Unflock(other)
		t.Error("another process could take the stripe while the update of guest 37 was still running")
	}
	close(release[5+stripeCount])
	wg.Wait()
	if got, _ := lock.TryFlock(other, syscall.LOCK_EX); !got {
		t.Error("the stripe is still held once every update ended")
	}
}
