package api

import "encoding/json"

// Standard file names in a config directory.
const (
	HypervisorFile = "phoenix_hypervisor_config.json"
	LXCFile        = "phoenix_lxc_configs.json"
	VMFile         = "phoenix_vm_configs.json"
	// StacksFile describes docker stacks; phoenix loads it when present
	// and hands it to scripts, but does not act on it.
	StacksFile = "phoenix_stacks_config.json"
)

// Config is the whole desired state read from a config directory.
type Config struct {
	// Dir is the config directory.
	Dir string
	// HypervisorPath, LXCPath and VMPath are the files actually read; a
	// missing optional file has an empty path.
	HypervisorPath, LXCPath, VMPath string
	// StacksPath is the stacks file read, or "".
	StacksPath string
	// Hypervisor is the host settings object, kept raw.
	Hypervisor map[string]json.RawMessage
	// Stacks is the stacks file's top-level object, kept raw; nil without one.
	Stacks map[string]json.RawMessage
	// Guests maps every guest ID to its guest.
	Guests map[ID]*Guest
	// IDs lists every guest in ascending order.
	IDs []ID
	// Warnings are what the load found doubtful but not wrong, such as an
	// unknown field close to a known one; every verb prints them.
	Warnings []Problem
}

// Guest returns the guest with the given ID, or nil.
func (c *Config) Guest(id ID) *Guest { return c.Guests[id] }
