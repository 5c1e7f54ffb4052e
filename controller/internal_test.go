package controller

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
)

func cfgOf(guests ...*api.Guest) *api.Config {
	c := &api.Config{Guests: map[api.ID]*api.Guest{}}
	for _, g := range guests {
		c.Guests[g.ID] = g
		c.IDs = append(c.IDs, g.ID)
	}
	sort.Slice(c.IDs, func(i, j int) bool { return c.IDs[i] < c.IDs[j] })
	return c
}

func guest(id api.ID, hash, token string) *api.Guest {
	g := &api.Guest{ID: id, Kind: api.KindLXC, Hash: hash}
	if token != "" {
		g.Spec.Annotations = map[string]string{api.ConvergeAnnotation: token}
	}
	return g
}

func TestDiff(t *testing.T) {
	prev := cfgOf(guest(100, "a", ""), guest(101, "b", ""), guest(102, "c", "t1"), guest(103, "d", ""))
	tests := []struct {
		name string
		prev *api.Config
		next *api.Config
		want delta
	}{
		{"first load adds everything", nil, prev,
			delta{added: []api.ID{100, 101, 102, 103}, removed: map[api.ID]api.Kind{}}},
		{"no change", prev, cfgOf(guest(100, "a", ""), guest(101, "b", ""), guest(102, "c", "t1"), guest(103, "d", "")),
			delta{removed: map[api.ID]api.Kind{}}},
		{"one changed, one new token, one removed, one added", prev,
			cfgOf(guest(100, "a", ""), guest(101, "B", ""), guest(102, "c", "t2"), guest(104, "e", "")),
			delta{added: []api.ID{104}, changed: []api.ID{101}, converge: []api.ID{102},
				removed: map[api.ID]api.Kind{103: api.KindLXC}}},
		{"a removed token is no request", prev,
			cfgOf(guest(100, "a", ""), guest(101, "b", ""), guest(102, "c", ""), guest(103, "d", "")),
			delta{removed: map[api.ID]api.Kind{}}},
		{"a first token is a request", prev,
			cfgOf(guest(100, "a", "t9"), guest(101, "b", ""), guest(102, "c", "t1"), guest(103, "d", "")),
			delta{converge: []api.ID{100}, removed: map[api.ID]api.Kind{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diff(tt.prev, tt.next); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diff = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestWatcher: only the config files' names count, Chmod is ignored, a burst
// is one reload, an overflow reloads. The debounce runs on a fake clock that
// the test steps once the watcher has taken every event in: a busy machine
// that delays a rename must not split a burst.
func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	events := 0
	log := funcr.New(func(_, args string) {
		if strings.Contains(args, "Config file event") {
			mu.Lock()
			events++
			mu.Unlock()
		}
	}, funcr.Options{Verbosity: 2})
	w, err := newWatcher(log, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	fake := clocktesting.NewFakeClock(time.Now())
	w.clock = fake
	lxc := filepath.Join(dir, api.LXCFile)
	if err := os.WriteFile(lxc, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.watchFiles(configFiles(dir)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	// waitEvents waits until the watcher took n relevant events in.
	waitEvents := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := events
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("watcher took %d events in, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// expect steps the clock past the debounce time; a reload must then
	// come (within a generous bound), or none may come at all, even after
	// ten debounce times.
	expect := func(want bool, what string) {
		t.Helper()
		if want {
			select {
			case <-w.reload:
				t.Errorf("%s: reload before the files were quiet for the debounce time", what)
			default:
			}
			fake.Step(100 * time.Millisecond)
			select {
			case <-w.reload:
			case <-time.After(30 * time.Second):
				t.Errorf("%s: no reload", what)
			}
			return
		}
		fake.Step(time.Second)
		select {
		case <-w.reload:
			t.Errorf("%s: reload, want none", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(false, "another file")
	if err := os.Chmod(lxc, 0o640); err != nil {
		t.Fatal(err)
	}
	expect(false, "chmod")
	for i := range 5 {
		tmp := filepath.Join(dir, ".swp")
		os.WriteFile(tmp, []byte{'{', '}', byte('0' + i)}, 0o600)
		if err := os.Rename(tmp, lxc); err != nil {
			t.Fatal(err)
		}
	}
	waitEvents(5)
	expect(true, "a burst of saves by rename")
	expect(false, "after the burst")
	if err := os.WriteFile(filepath.Join(dir, ".vm"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, ".vm"), filepath.Join(dir, api.VMFile)); err != nil {
		t.Fatal(err)
	}
	waitEvents(6)
	expect(true, "a new VM file")
	w.fsw.Errors <- fsnotify.ErrEventOverflow
	select {
	case <-w.reload:
	case <-time.After(30 * time.Second):
		t.Error("overflow: no reload")
	}
}

func TestConfigFiles_corePaths(t *testing.T) {
	dir := t.TempDir()
	hv := `{"core_paths": {"lxc_config_file": "../elsewhere/lxc.json", "vm_config_file": "/abs/vm.json"}}`
	if err := os.WriteFile(filepath.Join(dir, api.HypervisorFile), []byte(hv), 0o600); err != nil {
		t.Fatal(err)
	}
	got := configFiles(dir)
	want := []string{filepath.Join(dir, api.HypervisorFile), filepath.Join(dir, api.LXCFile), filepath.Join(dir, api.VMFile),
		filepath.Join(filepath.Dir(dir), "elsewhere", "lxc.json"), "/abs/vm.json"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("configFiles = %v, want %v", got, want)
	}
}

func TestMetrics_lint(t *testing.T) {
	reg := metrics.NewRegistry()
	opts := DefaultOptions()
	opts.ConfigDir, opts.StateDir = t.TempDir(), t.TempDir()
	if _, err := New(opts, nil, nil, logr.Discard(), reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	n := 0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "phoenix_reconcile_total", "phoenix_guests", "workqueue_depth":
			n += len(mf.GetMetric())
		}
	}
	if n != 4+10+1 {
		t.Errorf("%d series of phoenix_reconcile_total, phoenix_guests and workqueue_depth at start-up, want 15", n)
	}
}
