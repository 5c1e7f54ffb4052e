package reconcilers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

// phaseOnDisk is a guest's phase as another process reads it: from its
// file, not from the store's memory.
func phaseOnDisk(t *testing.T, store *status.Store, id api.ID) api.Phase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(store.Dir(), id.String()+".json"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var st api.Status
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st.Phase
}

// Given a status.Batch (the controller's workers), a reconcile returns
// before its workflow's outcome is on disk: the file still holds the
// Provisioning mark, the store already reads Ready, and the outcome lands
// when the batch is waited for. Without a batch (the CLI) the outcome is
// on disk when the reconcile returns.
func TestReconcile_outcomeQueuedInTheBatch(t *testing.T) {
	f := newFixture(t)
	var b status.Batch
	ctx, cancel := context.WithTimeout(status.WithBatch(context.Background(), &b), time.Minute)
	defer cancel()
	if _, err := NewLXC(f.deps()).Reconcile(ctx, Request{ID: 953}); err != nil {
		t.Fatal(err)
	}
	if b.Len() == 0 {
		t.Fatal("the reconcile queued no status write in its batch")
	}
	if got := phaseOnDisk(t, f.store, 953); got != api.PhaseProvisioning {
		t.Errorf("before the batch is waited for, 953's file says %q, want the Provisioning mark", got)
	}
	if st, err := f.store.Get(953, api.KindLXC); err != nil || st.Phase != api.PhaseReady {
		t.Errorf("the store reads %v (%v) before the commit, want the queued Ready", st, err)
	}
	if err := b.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []api.ID{900, 953} {
		if got := phaseOnDisk(t, f.store, id); got != api.PhaseReady {
			t.Errorf("after the batch, %s's file says %q, want Ready", id, got)
		}
	}

	f.mustReconcile(api.KindLXC, 941)
	if got := phaseOnDisk(t, f.store, 941); got != api.PhaseReady {
		t.Errorf("without a batch, 941's file says %q when the reconcile returns, want Ready", got)
	}
}
