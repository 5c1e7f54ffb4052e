package desired

import (
	"context"
	"sort"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// loading is one load in progress: the desired state being built and the
// bookkeeping that only the loader needs.
type loading struct {
	*api.Config

	ctx context.Context

	// unreadable is set when a guest file could not be parsed: its guests
	// are unknown, so references to them are not reported as unknown too.
	unreadable bool
	// cache and used, while loading through a Cache: the cache, and the
	// entries this load used or made (the cache's next generation).
	cache     *Loader
	used      map[[32]byte]*cached
	usedFiles map[string]*fileMemo
	// rec is the memo of the guest file being parsed, recFrom where its
	// problems start, fileEntries its guests' cache entries.
	rec         *fileMemo
	recFrom     int
	fileEntries []*cached
}

// index lists the guests' IDs in ascending order.
func (c *loading) index() {
	c.IDs = c.IDs[:0]
	for id := range c.Guests {
		c.IDs = append(c.IDs, id)
	}
	sort.Slice(c.IDs, func(i, j int) bool { return c.IDs[i] < c.IDs[j] })
}
