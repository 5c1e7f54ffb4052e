package api

import (
	"encoding/json"
	"sort"
)

// Standard file names in a config directory.
const (
	HypervisorFile = "phoenix_hypervisor_config.json"
	LXCFile        = "phoenix_lxc_configs.json"
	VMFile         = "phoenix_vm_configs.json"
)

// Config is the whole desired state read from a config directory.
type Config struct {
	// Dir is the config directory.
	Dir string
	// HypervisorPath, LXCPath and VMPath are the files actually read; a
	// missing optional file has an empty path.
	HypervisorPath, LXCPath, VMPath string
	// Hypervisor is the host settings object, kept raw.
	Hypervisor map[string]json.RawMessage
	// Guests maps every guest ID to its guest.
	Guests map[ID]*Guest
	// IDs lists every guest in ascending order.
	IDs []ID

	// unreadable is set when a guest file could not be parsed: its guests
	// are unknown, so references to them are not reported as unknown too.
	unreadable bool
	// cache and used, while loading through a Cache: the cache, and the
	// entries this load used or made (the cache's next generation).
	cache     *Cache
	used      map[[32]byte]*cached
	usedFiles map[string]*fileMemo
	// rec is the memo of the guest file being parsed, recFrom where its
	// problems start, fileEntries its guests' cache entries.
	rec         *fileMemo
	recFrom     int
	fileEntries []*cached
}

// Guest returns the guest with the given ID, or nil.
func (c *Config) Guest(id ID) *Guest { return c.Guests[id] }

func (c *Config) index() {
	c.IDs = c.IDs[:0]
	for id := range c.Guests {
		c.IDs = append(c.IDs, id)
	}
	sort.Slice(c.IDs, func(i, j int) bool { return c.IDs[i] < c.IDs[j] })
}
