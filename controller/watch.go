package controller

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// watcher turns file system events on the config files into reload
// requests. It watches folders, not files: editors save by writing a new
// file and renaming it over the old one, which a watch on the old file
// (its inode) would never see again.
type watcher struct {
	fsw      *fsnotify.Watcher
	log      logr.Logger
	debounce time.Duration
	// reload receives one value per burst of relevant events; it holds at
	// most one pending request, since a reload reads everything anyway.
	reload chan struct{}
	// clock times the debounce; tests step a fake one, so that what is one
	// burst does not depend on how busy the machine is.
	clock clock.Clock

	mu      sync.Mutex
	dirs    map[string]bool
	targets map[string]bool
}

func newWatcher(log logr.Logger, debounce time.Duration) (*watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &watcher{fsw: fsw, log: log, debounce: debounce, reload: make(chan struct{}, 1),
		dirs: map[string]bool{}, targets: map[string]bool{}, clock: clock.RealClock{}}, nil
}

// watchFiles makes the watcher react to exactly these files, adding a
// watch on each one's folder.
func (w *watcher) watchFiles(paths []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	targets := make(map[string]bool, len(paths))
	var errs []error
	for _, p := range paths {
		p = filepath.Clean(p)
		targets[p] = true
		dir := filepath.Dir(p)
		if w.dirs[dir] {
			continue
		}
		if err := w.fsw.Add(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		w.dirs[dir] = true
	}
	w.targets = targets
	return errors.Join(errs...)
}

func (w *watcher) relevant(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.targets[filepath.Clean(name)]
}

func (w *watcher) request() {
	select {
	case w.reload <- struct{}{}:
	default:
	}
}

// run passes events on until ctx ends. A burst of events becomes one
// reload once the files were quiet for the debounce time, or at the latest
// ten debounce times after the burst began, so a file rewritten without
// pause still gets loaded.
func (w *watcher) run(ctx context.Context) {
	defer w.fsw.Close()
	timer := w.clock.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time
	pending := false
	fire := func() {
		pending = false
		w.request()
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			// Chmod alone changes no content (touch, chmod, some
			// editors' metadata updates).
			if ev.Op == fsnotify.Chmod || !w.relevant(ev.Name) {
				continue
			}
			w.log.V(2).Info("Config file event", "file", ev.Name, "op", ev.Op.String())
			now := w.clock.Now()
			if !pending {
				pending, first = true, now
			}
			wait := w.debounce
			if limit := first.Add(10 * w.debounce); now.Add(wait).After(limit) {
				wait = max(limit.Sub(now), 0)
			}
			timer.Stop()
			timer.Reset(wait)
		case <-timer.C():
			if pending {
				fire()
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: any file may have changed.
				w.log.Info("File watch queue overflowed; reloading everything")
				timer.Stop()
				fire()
				continue
			}
			w.log.Error(err, "File watch error")
		}
	}
}

// configFiles lists the files a reload of dir reads: the three standard
// names, and the core_paths targets of the hypervisor file wherever they
// live (also when they do not exist yet, so creating one is noticed).
func configFiles(dir string) []string {
	hv := filepath.Join(dir, api.HypervisorFile)
	out := []string{hv, filepath.Join(dir, api.LXCFile), filepath.Join(dir, api.VMFile)}
	data, err := os.ReadFile(hv)
	if err != nil {
		return out
	}
	var doc struct {
		CorePaths map[string]any `json:"core_paths"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return out
	}
	for _, key := range []string{"lxc_config_file", "vm_config_file"} {
		p, _ := doc.CorePaths[key].(string)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		out = append(out, filepath.Clean(p))
	}
	return out
}
