package plan

// Change is one key on which the host differs from the desired state, as
// `phoenix diff` and a dry run show it. Have is empty when the host lacks
// the key; Want is empty when phoenix would remove it (a mount point or
// device the spec no longer lists).
type Change struct {
	Key  string `json:"key"`
	Have string `json:"have"`
	Want string `json:"want"`
}

// Pseudo-keys for what is not a config key.
const (
	// KeyGuest: the guest itself is missing on the host.
	KeyGuest = "guest"
	// KeyDisk: the root disk is smaller than asked for.
	KeyDisk = "disk"
	// KeyFirewall: the guest's firewall options or rules differ.
	KeyFirewall = "firewall"
	// KeyTemplate: the guest is not yet converted to a template.
	KeyTemplate = "template"
	// KeySnapshot prefixes a missing snapshot's name.
	KeySnapshot = "snapshot "
)

// Values of the pseudo-keys.
const (
	Absent  = "absent"
	Present = "present"
)
