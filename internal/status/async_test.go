package status

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// onDisk is the status as another process reads it: from the file, not
// from this store's memory.
func onDisk(t *testing.T, dir string, id api.ID) (api.Status, bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, id.String()+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return api.Status{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var st api.Status
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return st, true
}

// newTestStore opens a store in a new temp folder.
func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func phase(p api.Phase) func(*api.Status) {
	return func(st *api.Status) { st.Phase = p }
}

// A queued write is this store's status at once, and everyone's once
// Wait returns; the file is untouched in between.
func TestStore_updateAsyncLandsOnWait(t *testing.T) {
	s, dir := newTestStore(t)
	if _, err := s.UpdateNoSync(7, api.KindLXC, phase(api.PhaseProvisioning)); err != nil {
		t.Fatal(err)
	}
	_, p, err := s.UpdateAsync(7, api.KindLXC, phase(api.PhaseReady))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Get(7, api.KindLXC); st.Phase != api.PhaseReady {
		t.Errorf("this store reads %s before the commit, want the queued Ready", st.Phase)
	}
	if st, _ := onDisk(t, dir, 7); st.Phase != api.PhaseProvisioning {
		t.Errorf("the file says %s before the commit, want the Provisioning it held", st.Phase)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if st, _ := onDisk(t, dir, 7); st.Phase != api.PhaseReady {
		t.Errorf("the file says %s after Wait, want Ready", st.Phase)
	}
	other := NewReadOnlyStore(dir)
	if st, _ := other.Get(7, api.KindLXC); st.Phase != api.PhaseReady {
		t.Errorf("another store reads %s after Wait, want Ready", st.Phase)
	}
	if err := p.Wait(); err != nil {
		t.Errorf("a second Wait: %v", err)
	}
}

// Writes of one guest land in the order they were made, whatever the
// mode: a queued outcome never overwrites the mark written after it.
func TestStore_writesAfterAQueuedOneLandAfterIt(t *testing.T) {
	for name, next := range map[string]func(s *Store) error{
		"no sync": func(s *Store) error {
			_, err := s.UpdateNoSync(7, api.KindLXC, phase(api.PhaseProvisioning))
			return err
		},
		"durable": func(s *Store) error {
			_, err := s.Update(7, api.KindLXC, phase(api.PhaseProvisioning))
			return err
		},
		"queued": func(s *Store) error {
			_, p, err := s.UpdateAsync(7, api.KindLXC, phase(api.PhaseProvisioning))
			if err == nil {
				err = p.Wait()
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, p, err := s.UpdateAsync(7, api.KindLXC, phase(api.PhaseReady))
			if err != nil {
				t.Fatal(err)
			}
			if err := next(s); err != nil {
				t.Fatal(err)
			}
			// The queued write's owner waits only now, as the controller
			// may, long after the next write.
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			if st, _ := onDisk(t, dir, 7); st.Phase != api.PhaseProvisioning {
				t.Errorf("the file says %s, want the later write's Provisioning", st.Phase)
			}
			if st, _ := s.Get(7, api.KindLXC); st.Phase != api.PhaseProvisioning {
				t.Errorf("the store reads %s, want Provisioning", st.Phase)
			}
		})
	}
}

// A delete after a queued write is final: the queued file never comes
// back.
func TestStore_deleteAfterQueuedWrite(t *testing.T) {
	s, dir := newTestStore(t)
	_, p, err := s.UpdateAsync(7, api.KindVM, phase(api.PhaseReady))
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.IDs(); !slices.Equal(ids, []api.ID{7}) {
		t.Errorf("IDs before the commit = %v, want the queued guest", ids)
	}
	if err := s.Delete(7); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, ok := onDisk(t, dir, 7); ok {
		t.Error("the status file is back after its delete")
	}
	if st, _ := s.Get(7, api.KindVM); st.Phase != api.PhasePending {
		t.Errorf("the store reads %s after the delete, want Pending", st.Phase)
	}
	if ids, _ := s.IDs(); len(ids) != 0 {
		t.Errorf("IDs after the delete = %v", ids)
	}
}

// A queued write that cannot be put in place is reported by Wait (and the
// batch), and the store reads what the disk holds again.
func TestStore_failedQueuedWrite(t *testing.T) {
	s, dir := newTestStore(t)
	// A folder where the file goes: the rename fails, as root too.
	if err := os.Mkdir(filepath.Join(dir, "7.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	var b Batch
	ctx := WithBatch(context.Background(), &b)
	_, p, err := s.UpdateAsync(7, api.KindLXC, phase(api.PhaseReady))
	if err != nil {
		t.Fatal(err)
	}
	BatchFrom(ctx).Add(p)
	if _, p2, err := s.UpdateAsync(8, api.KindLXC, phase(api.PhaseReady)); err != nil {
		t.Fatal(err)
	} else {
		b.Add(p2)
	}
	err = b.Wait()
	if err == nil {
		t.Fatal("Wait reported no error for a write that could not be renamed into place")
	}
	if st, _ := s.Get(7, api.KindLXC); st != nil && st.Phase == api.PhaseReady {
		t.Error("the store still reads the failed write's Ready")
	}
	if st, ok := onDisk(t, dir, 8); !ok || st.Phase != api.PhaseReady {
		t.Errorf("the other guest of the batch: on disk %v %s, want Ready", ok, st.Phase)
	}
	if BatchFrom(context.Background()) != nil {
		t.Error("a context without a batch has one")
	}
}
