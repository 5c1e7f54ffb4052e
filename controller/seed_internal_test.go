package controller

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

// At start the phase book holds every guest's recorded phase: from its
// status file, from the journal of first statuses, or Pending when
// nothing is recorded; a recorded guest that left the files is reported
// gone.
func TestController_seedTakesRecordedPhases(t *testing.T) {
	dir := t.TempDir()
	st, err := status.NewStore(filepath.Join(dir, "status"))
	if err != nil {
		t.Fatal(err)
	}
	st.JournalFirsts()
	set := func(id api.ID, phase api.Phase, noSync bool) {
		t.Helper()
		update := st.Update
		if noSync {
			update = st.UpdateNoSync
		}
		if _, err := update(id, api.KindLXC, func(s *api.Status) { s.Phase = phase }); err != nil {
			t.Fatal(err)
		}
	}
	set(100, api.PhaseFailed, false)
	set(101, api.PhaseProvisioning, true) // a line of the journal
	set(103, api.PhaseReady, false)       // not in the files any more
	host, err := sim.New(sim.Options{Dir: filepath.Join(dir, "sim")})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	opts := DefaultOptions()
	opts.ConfigDir, opts.StateDir = dir, dir
	c, err := New(opts, host, st, logr.Discard(), metrics.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgOf(guest(100, "a", ""), guest(101, "b", ""), guest(102, "c", ""))
	cfg.LXCPath = filepath.Join(dir, "phoenix_lxc_configs.json")
	gone := c.seed(cfg)
	for id, want := range map[api.ID]api.Phase{100: api.PhaseFailed, 101: api.PhaseProvisioning, 102: api.PhasePending} {
		if kp, ok := c.book.get(id); !ok || kp.phase != want || kp.kind != api.KindLXC {
			t.Errorf("guest %s in the book: %+v, %v; want %s", id, kp, ok, want)
		}
	}
	if !slices.Equal(gone, []api.ID{103}) {
		t.Errorf("gone = %v, want [103]", gone)
	}
}
