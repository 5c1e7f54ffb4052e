package controller

import (
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// prunePolicy is --prune-grace and --prune-max: when a guest gone from
// the files may be destroyed depends on how long it has been gone and how
// many are waiting, which only the loop knows.
type prunePolicy struct{ c *Controller }

var _ reconcilers.PrunePolicy = prunePolicy{}

// MayPrune reports whether --prune may destroy id now: it has been gone
// from a present, valid file for --prune-grace, and no more guests are
// waiting to be pruned than --prune-max (a file emptied by accident must
// not take every guest with it). When not, the guest is marked Orphaned
// like without --prune and, within the grace, asked for again at its end.
func (p prunePolicy) MayPrune(log logr.Logger, id api.ID) (bool, time.Duration) {
	c := p.c
	absent := c.absentFor(id)
	if wait := c.opts.PruneGrace - absent; wait > 0 {
		log.Info("Guest left the files; pruning it once the grace has passed", "in", wait.Round(time.Second).String())
		return false, wait
	}
	c.mu.Lock()
	n := len(c.removed)
	c.mu.Unlock()
	if c.opts.PruneMax > 0 && n > c.opts.PruneMax {
		c.metrics.PrunesTotal.WithLabelValues(metrics.ResultRefused).Inc()
		log.Error(fmt.Errorf("%d guests left the files, more than --prune-max %d", n, c.opts.PruneMax),
			"Not pruning; check the files, then raise --prune-max (0: no bound) to prune them all")
		return false, 0
	}
	log.Info("Pruning guest removed from the files", "absentFor", absent.Round(time.Second).String())
	return true, 0
}

// absentFor is how long a removed guest has been gone from the files.
func (c *Controller) absentFor(id api.ID) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.removedAt[id]
	if !ok {
		return 0
	}
	return time.Since(at)
}
