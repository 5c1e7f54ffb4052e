package controller

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// rewatchInterval is how often a folder that could not be watched (gone)
// is tried again.
const rewatchInterval = time.Second

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
// watch on each one's folder. A file that is a symlink is followed too: its
// target's folder is watched as well, so an edit of the target reaches the
// controller. A folder that does not exist (deleted, not mounted yet) is
// retried by run until it can be watched.
func (w *watcher) watchFiles(paths []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	targets := make(map[string]bool, len(paths))
	for _, p := range paths {
		p = filepath.Clean(p)
		targets[p] = true
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			targets[filepath.Clean(real)] = true
		}
	}
	w.targets = targets
	_, err := w.addDirsLocked()
	return err
}

// addDirsLocked adds a watch on every target's folder not watched yet and
// reports whether one was added. w.mu is held.
func (w *watcher) addDirsLocked() (added bool, err error) {
	var errs []error
	for p := range w.targets {
		dir := filepath.Dir(p)
		if w.dirs[dir] {
			continue
		}
		if err := w.fsw.Add(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		w.dirs[dir] = true
		added = true
	}
	return added, errors.Join(errs...)
}

// relevant reports whether an event concerns the config: a target file,
// Kubernetes's "..data" symlink that a ConfigMap update swaps, or a
// watched folder itself (deleted or moved away: its watch is gone).
func (w *watcher) relevant(ev fsnotify.Event) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	name := filepath.Clean(ev.Name)
	if w.dirs[name] && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
		delete(w.dirs, name)
		return true
	}
	if w.targets[name] {
		return true
	}
	return strings.HasPrefix(filepath.Base(name), "..data") && w.dirs[filepath.Dir(name)]
}

// rewatch retries the folders that could not be watched (a config folder
// deleted and made again); true when one came back.
func (w *watcher) rewatch() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	added, _ := w.addDirsLocked()
	return added
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
	retry := time.NewTicker(rewatchInterval)
	defer retry.Stop()
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
			if ev.Op == fsnotify.Chmod || !w.relevant(ev) {
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
		case <-retry.C:
			if w.rewatch() {
				w.log.Info("Watching the config folder again; reloading")
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
