package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Kind is the sort of guest: an LXC container or a QEMU VM.
type Kind string

const (
	// KindLXC is a Proxmox LXC container, driven with pct.
	KindLXC Kind = "lxc"
	// KindVM is a Proxmox QEMU virtual machine, driven with qm.
	KindVM Kind = "vm"
)

// Valid IDs, shared by LXC and VM: Proxmox's own range.
const (
	MinID ID = 100
	MaxID ID = 999999999
)

// ID is a guest ID (CTID or VMID). LXC and VM share one ID space.
type ID int

// String gives the ID in the decimal form used in files and on the command line.
func (id ID) String() string { return strconv.Itoa(int(id)) }

// Valid reports whether id is within Proxmox's range.
func (id ID) Valid() bool { return id >= MinID && id <= MaxID }

// ParseID parses a guest ID given as a decimal string and checks its range.
func ParseID(s string) (ID, error) {
	if s == "" || len(s) > 9 {
		return 0, fmt.Errorf("guest ID %q: want a number from %d to %d", s, MinID, MaxID)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("guest ID %q: want a number from %d to %d", s, MinID, MaxID)
		}
	}
	n, _ := strconv.Atoi(s)
	id := ID(n)
	if !id.Valid() || s[0] == '0' {
		return 0, fmt.Errorf("guest ID %q: want a number from %d to %d", s, MinID, MaxID)
	}
	return id, nil
}

// Ref is a reference to another guest as written in a file: the old files
// use both "921" and 921, so both are accepted.
type Ref struct {
	// Raw is the reference as written, for error messages.
	Raw string
	// ID is the parsed ID; zero when Raw is not a valid ID.
	ID ID
}

// UnmarshalJSON accepts a JSON string or number.
func (r *Ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		r.Raw = s
	} else {
		r.Raw = string(b)
	}
	r.ID, _ = ParseID(r.Raw)
	return nil
}

// MarshalJSON writes the reference as it was written.
func (r Ref) MarshalJSON() ([]byte, error) { return json.Marshal(r.Raw) }

// NetworkConfig is a guest's first network interface.
type NetworkConfig struct {
	Name        string      `json:"name,omitempty"`
	Bridge      string      `json:"bridge,omitempty"`
	IP          string      `json:"ip,omitempty"`
	GW          string      `json:"gw,omitempty"`
	Nameservers Nameservers `json:"nameservers,omitempty"`
	// Nameserver is the VM files' spelling of the same thing.
	Nameserver Nameservers `json:"nameserver,omitempty"`
}

// DNS lists the guest's name servers from either spelling, in file order.
func (n *NetworkConfig) DNS() []string {
	if n == nil {
		return nil
	}
	return append(append([]string{}, n.Nameservers...), n.Nameserver...)
}

// Nameservers is a list of name server addresses. The old tool's files
// write it as one string ("10.0.0.13", "1.1.1.1 8.8.8.8", "1.1.1.1,8.8.8.8")
// and newer ones as an array; both load.
type Nameservers []string

// UnmarshalJSON accepts a string of addresses separated by spaces or commas,
// or an array of strings.
func (n *Nameservers) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = SplitNameservers(s)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a string or an array of strings: %w", err)
	}
	*n = list
	return nil
}

// SplitNameservers splits "a b,c" into its addresses; an empty string gives
// an empty, non-nil list.
func SplitNameservers(s string) Nameservers {
	return Nameservers(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == ',' || r == '\t'
	}))
}

// Volume is an extra disk mounted into a guest (zfs_volumes, volumes), or,
// with Type "nfs", an NFS export mounted inside a VM.
type Volume struct {
	Type       string `json:"type,omitempty"`
	Name       string `json:"name"`
	Pool       string `json:"pool"`
	SizeGB     int    `json:"size_gb"`
	MountPoint string `json:"mount_point"`
	// Server and Path name the NFS export (Type "nfs").
	Server string `json:"server,omitempty"`
	Path   string `json:"path,omitempty"`
}

// MountPoint is a host folder bind-mounted into a container (mpN).
type MountPoint struct {
	HostPath      string `json:"host_path"`
	ContainerPath string `json:"container_path"`
	// OwnerUID and OwnerGID own the host folder when phoenix creates it;
	// nil leaves root.
	OwnerUID *int `json:"owner_uid,omitempty"`
	OwnerGID *int `json:"owner_gid,omitempty"`
}

// IDMap is one lxc.idmap range of an unprivileged container.
type IDMap struct {
	Type        string `json:"type"` // "uid" or "gid"
	ContainerID int    `json:"container_id"`
	HostID      int    `json:"host_id"`
	Size        int    `json:"size"`
}

// Firewall is a guest's Proxmox firewall: whether it is on, and its rules.
type Firewall struct {
	Enabled bool           `json:"enabled"`
	Rules   []FirewallRule `json:"rules,omitempty"`
}

// FirewallRule is one rule of a guest's firewall, in Proxmox's terms
// (internal/pvefirewall checks and writes it).
type FirewallRule struct {
	Type   string `json:"type"`   // in, out, or group (Action is then the security group)
	Action string `json:"action"` // ACCEPT, DROP or REJECT
	Source string `json:"source,omitempty"`
	Dest   string `json:"dest,omitempty"`
	Proto  string `json:"proto,omitempty"`
	// Port is the old tool's name of Dport.
	Port    string `json:"port,omitempty"`
	Dport   string `json:"dport,omitempty"`
	Sport   string `json:"sport,omitempty"`
	Iface   string `json:"iface,omitempty"` // net0, net1, ...
	Comment string `json:"comment,omitempty"`
}

// HealthCheck is a command run inside the guest until it succeeds.
type HealthCheck struct {
	Command  string `json:"command"`
	Retries  int    `json:"retries"`
	Interval int    `json:"interval"`
}

// Spec holds the fields phoenix itself acts on. Everything else in a guest's
// JSON is kept in Guest.Raw and handed to scripts untouched.
type Spec struct {
	Name                     string            `json:"name"`
	Node                     string            `json:"node"` // cluster node (pve-api); "" = clone source's node, else the default node
	MemoryMB                 int               `json:"memory_mb"`
	Cores                    int               `json:"cores"`
	SwapMB                   int               `json:"swap_mb"`
	StoragePool              string            `json:"storage_pool"`
	StorageSizeGB            int               `json:"storage_size_gb"`
	DiskSizeGB               int               `json:"disk_size_gb"`
	NetworkConfig            *NetworkConfig    `json:"network_config"`
	NetworkBridge            string            `json:"network_bridge"`
	MACAddress               string            `json:"mac_address"`
	GPUAssignment            string            `json:"gpu_assignment"`
	Unprivileged             *bool             `json:"unprivileged"`
	Template                 string            `json:"template"`
	TemplateImage            string            `json:"template_image"`
	TemplateSnapshotName     string            `json:"template_snapshot_name"`
	IsTemplate               bool              `json:"is_template"`
	CloneFromCTID            *Ref              `json:"clone_from_ctid"`
	CloneFromVMID            *Ref              `json:"clone_from_vmid"`
	Dependencies             []Ref             `json:"dependencies"`
	Features                 []string          `json:"features"`
	ApplicationScript        string            `json:"application_script"`
	PctOptions               []string          `json:"pct_options"`
	LXCOptions               []string          `json:"lxc_options"`
	ApparmorProfile          string            `json:"apparmor_profile"`
	StartAtBoot              *bool             `json:"start_at_boot"`
	BootOrder                *int              `json:"boot_order"`
	BootDelay                int               `json:"boot_delay"`
	ZFSVolumes               []Volume          `json:"zfs_volumes"`
	Volumes                  []Volume          `json:"volumes"`
	EnableLifecycleSnapshots bool              `json:"enable_lifecycle_snapshots"`
	HealthCheck              *HealthCheck      `json:"health_check"`
	UserConfig               map[string]any    `json:"user_config"`
	MountPoints              []MountPoint      `json:"mount_points"`
	IDMaps                   []IDMap           `json:"id_maps"`
	Firewall                 *Firewall         `json:"firewall"`
	PortainerRole            string            `json:"portainer_role"`
	BootstrapCAURL           string            `json:"bootstrap_ca_url"`
	Annotations              map[string]string `json:"annotations"`
}

// ConvergeAnnotation is the annotation whose new value asks for a full-chain
// converge of the guest (Flux's reconcile.fluxcd.io/requestedAt pattern).
const ConvergeAnnotation = "converge.phoenix.io/requestedAt"

// Guest is one guest of the desired state, with its effective spec (for VMs,
// vm_defaults overlaid by the VM's own fields).
type Guest struct {
	ID   ID
	Kind Kind
	// File is the path of the file the guest was read from.
	File string
	Spec Spec
	// Raw is the effective JSON object, unknown fields and annotations included.
	Raw json.RawMessage
	// Hash identifies the effective spec without annotations; see SpecHash.
	Hash string
}

// CloneSource is the guest this one is cloned from, or 0.
func (g *Guest) CloneSource() ID {
	if g.Spec.CloneFromCTID != nil {
		return g.Spec.CloneFromCTID.ID
	}
	if g.Spec.CloneFromVMID != nil {
		return g.Spec.CloneFromVMID.ID
	}
	return 0
}

// Dependencies are the guests that must exist and run before this one starts.
func (g *Guest) Dependencies() []ID {
	out := make([]ID, 0, len(g.Spec.Dependencies))
	for _, d := range g.Spec.Dependencies {
		out = append(out, d.ID)
	}
	return out
}

// ConvergeToken is the value of the converge annotation, or "".
func (g *Guest) ConvergeToken() string { return g.Spec.Annotations[ConvergeAnnotation] }

// StartsAtBoot reports whether LetsGo should start the guest.
func (g *Guest) StartsAtBoot() bool {
	return g.Spec.StartAtBoot == nil || *g.Spec.StartAtBoot
}

// UnsetBootOrder is the boot order of a guest that sets none: after every
// guest that does, as the old tool had it.
const UnsetBootOrder = 999

// BootRank is the guest's boot_order, or UnsetBootOrder.
func (g *Guest) BootRank() int {
	if g.Spec.BootOrder == nil {
		return UnsetBootOrder
	}
	return *g.Spec.BootOrder
}

// IsTemplateSource reports whether the guest exists to be cloned: a VM
// template, or a container carrying a template snapshot. Such guests are not
// started by LetsGo or by start's dependency closure.
func (g *Guest) IsTemplateSource() bool {
	return g.Spec.IsTemplate || (g.Kind == KindLXC && g.Spec.TemplateSnapshotName != "")
}
