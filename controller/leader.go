package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/phoenix-hypervisor/phoenix/controller/statelock"
	"github.com/phoenix-hypervisor/phoenix/internal/leader"
)

// ElectLeader makes Run stand by until e holds its lock. Call it before
// Run. With Options.LeaderElect, New already set one up (the pmxcfs lock
// on a cluster node, else a lock file in the state dir); tests pass one
// on a fake.
func (c *Controller) ElectLeader(e *leader.Elector) { c.elector = e }

// newElector is the elector Options.LeaderElect asks for.
func (c *Controller) newElector() (*leader.Elector, error) {
	lock, err := leader.ForStateDir(c.opts.PVEEtc, c.opts.StateDir, c.opts.LeaderLease)
	if err != nil {
		return nil, err
	}
	return leader.NewElector(lock, c.opts.LeaderRenew, nil, c.log)
}

// standBy loads and checks the files as they change while it campaigns for
// the leader lock. It returns the term once this controller leads, or nil
// when ctx ends first.
func (c *Controller) standBy(ctx context.Context, w *watcher) (*leader.Term, error) {
	c.log.Info("Standing by until this controller holds the leader lock", "lock", c.elector.Lock().String(),
		"configDir", c.configDir, "stateDir", c.opts.StateDir)
	c.metrics.Leader.Set(0)
	campaign, stop := context.WithCancel(ctx)
	defer stop()
	type result struct {
		term *leader.Term
		err  error
	}
	got := make(chan result, 1)
	go func() {
		t, err := c.elector.Acquire(campaign)
		got <- result{t, err}
	}()
	c.reload(w)
	for {
		select {
		case <-ctx.Done():
			if r := <-got; r.term != nil {
				// Won just as we were told to stop: let go at once.
				_ = r.term.Release()
			}
			return nil, nil
		case r := <-got:
			return r.term, r.err
		case <-w.reload:
			c.reload(w)
		}
	}
}

// acquireStateLock takes the state dir's one-writer lock. A leader may
// find the previous leader on this state dir still letting go of it (its
// in-flight reconciles stopping): it waits for that, for as long as it
// holds the leader lock.
func (c *Controller) acquireStateLock(ctx context.Context, term *leader.Term) (*statelock.Lock, error) {
	told := false
	for {
		lock, err := statelock.AcquireController(ctx, c.opts.StateDir, c.configDir, func() {
			c.log.Info("Waiting for running phoenix commands to finish", "lock", statelock.Path(c.opts.StateDir))
		})
		var held *statelock.HeldError
		if term == nil || !errors.As(err, &held) {
			return lock, err
		}
		if !told {
			c.log.Info("Waiting for the previous controller to let go of the state dir", "pid", held.PID)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-term.Lost():
			return nil, fmt.Errorf("lost the leader lock while waiting for the state dir: %w", term.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// standbyReady answers /readyz for a standby: ready while it can reach the
// leader lock, so that a standby that could not take over is noticed.
func (c *Controller) standbyReady(w http.ResponseWriter) {
	if err := c.elector.Healthy(); err != nil {
		http.Error(w, "standby, cannot reach the leader lock: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok: standby")
}

// pollFiles asks for a reload whenever a config file's size or
// modification time changes. On a cluster the files live in pmxcfs, a FUSE
// file system: inotify there reports only writes made through this node's
// mount, not edits on other nodes that pmxcfs replicates underneath it.
// It looks at the files once before it returns the loop, which runs until
// ctx ends.
func (c *Controller) pollFiles(w *watcher, every time.Duration) func(ctx context.Context) {
	type stamp struct {
		size int64
		mod  time.Time
	}
	last := map[string]stamp{}
	look := func() bool {
		changed := false
		seen := map[string]bool{}
		for _, f := range configFiles(c.configDir) {
			seen[f] = true
			var s stamp
			if fi, err := os.Stat(f); err == nil {
				s = stamp{fi.Size(), fi.ModTime()}
			}
			if old, ok := last[f]; !ok || old != s {
				changed = changed || ok
				last[f] = s
			}
		}
		for f := range last {
			if !seen[f] {
				delete(last, f)
			}
		}
		return changed
	}
	look()
	return func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if look() {
					w.request()
				}
			}
		}
	}
}
