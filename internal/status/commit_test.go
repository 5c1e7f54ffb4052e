package status

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Writers that commit while a group is being written form the next group:
// one fsync of the folder for all of them. Here the first writer's group
// is held before its rename until seven more writers wait; they must then
// be committed together, and each must find its own status on disk.
func TestStore_durableWritesCommitInGroups(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var groups []int
	var mu sync.Mutex
	release := make(chan struct{})
	s.commits.beforeRename = func(n int) {
		mu.Lock()
		groups = append(groups, n)
		first := len(groups) == 1
		mu.Unlock()
		if first {
			<-release
		}
	}
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
	for {
		mu.Lock()
		n := len(groups)
		mu.Unlock()
		if n == 1 {
			break
		}
		runtimeYield()
	}
	for id := api.ID(901); id <= 907; id++ {
		wg.Add(1)
		go func() { defer wg.Done(); update(id) }()
	}
	for !queued(s, 7) {
		runtimeYield()
	}
	close(release)
	wg.Wait()
	if len(groups) != 2 || groups[0] != 1 || groups[1] != 7 {
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
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
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
