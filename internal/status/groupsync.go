package status

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// groupSync fsyncs a folder for many writers at once: a writer that asks
// while an fsync is running waits for the next one, which covers every
// rename made before it started. With a few workers writing statuses side
// by side, one folder fsync serves them all instead of one each.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	asked   uint64 // requests so far
	synced  uint64 // requests covered by the last finished fsync
	running bool
	err     error
	// fsync, when set, replaces syncDir (tests).
	fsync func(dir string) error
}

func (g *groupSync) sync(dir string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	g.asked++
	mine := g.asked
	for g.synced < mine {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		covers := g.asked
		g.mu.Unlock()
		fsync := syncDir
		if g.fsync != nil {
			fsync = g.fsync
		}
		err := fsync(dir)
		g.mu.Lock()
		g.running = false
		g.synced, g.err = covers, err
		g.cond.Broadcast()
	}
	// The error of the fsync that covered this request (or a later one).
	return g.err
}

// fsyncFolder is (*os.File).Sync; a variable for the tests.
var fsyncFolder = (*os.File).Sync

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	// Some file systems cannot fsync a folder; the rename is then as
	// durable as they make it.
	if err = fsyncFolder(d); errors.Is(err, syscall.EINVAL) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
