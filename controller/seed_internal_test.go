package controller

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"

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

// --prune-grace and --prune-max decide when a guest that left the files
// may be destroyed: not before it has been gone for the grace (and asked
// for again when the grace ends), never while more guests wait than the
// bound allows (counted as a refused prune), and at once with no grace.
func TestPrunePolicy_graceAndMax(t *testing.T) {
	dir := t.TempDir()
	st, err := status.NewStore(filepath.Join(dir, "status"))
	if err != nil {
		t.Fatal(err)
	}
	host, err := sim.New(sim.Options{Dir: filepath.Join(dir, "sim")})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for _, tc := range []struct {
		name      string
		grace     time.Duration
		max       int
		goneFor   []time.Duration // of guests 100, 101, ...; 100 is asked about
		may       bool
		retryMin  time.Duration // the retry asked for, at least and at most
		retryMax  time.Duration
		refusedBy float64 // phoenix_prunes_total{result="refused"} added
	}{
		{"within the grace", 5 * time.Minute, 0, []time.Duration{time.Minute}, false, 3 * time.Minute, 4 * time.Minute, 0},
		{"grace passed", 5 * time.Minute, 0, []time.Duration{6 * time.Minute}, true, 0, 0, 0},
		{"no grace", 0, 0, []time.Duration{0}, true, 0, 0, 0},
		{"more gone than the bound", 0, 1, []time.Duration{0, 0}, false, 0, 0, 1},
		{"as many as the bound", 0, 2, []time.Duration{0, 0}, true, 0, 0, 0},
		{"within the grace, over the bound: the grace first", 5 * time.Minute, 1, []time.Duration{time.Minute, time.Minute}, false, 3 * time.Minute, 4 * time.Minute, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.ConfigDir, opts.StateDir = dir, dir
			opts.Prune, opts.PruneGrace, opts.PruneMax = true, tc.grace, tc.max
			c, err := New(opts, host, st, logr.Discard(), metrics.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			for i, gone := range tc.goneFor {
				c.markRemoved(api.ID(100+i), api.KindLXC, now.Add(-gone))
			}
			may, retry := prunePolicy{c}.MayPrune(logr.Discard(), 100)
			if may != tc.may || retry < tc.retryMin || retry > tc.retryMax {
				t.Errorf("MayPrune = %v, retry in %v; want %v, retry in [%v, %v]", may, retry, tc.may, tc.retryMin, tc.retryMax)
			}
			var m dto.Metric
			if err := c.metrics.PrunesTotal.WithLabelValues(metrics.ResultRefused).Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.GetCounter().GetValue(); got != tc.refusedBy {
				t.Errorf("refused prunes counted: %v, want %v", got, tc.refusedBy)
			}
		})
	}
}
