package pveapi

import (
	"fmt"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Privilege is one privilege an API token needs for what phoenix does to a
// guest. Privileges is the one list of them: phoenix doctor checks the
// token against it, and docs/proxmox.md's table is made from it (the test
// of this package compares the two).
type Privilege struct {
	// Names are the privileges; any one of them will do.
	Names []string
	// Path is the ACL path Proxmox checks, with {vmid}, {storage},
	// {bridge} or {node} standing for the guest's.
	Path string
	// Version is the Proxmox VE major version this applies to; 0 for all.
	Version int
	// For says what needs it, for the table and the hint.
	For string
	// applies says which guests need it; nil for every guest.
	applies func(cfg *api.Config, g *api.Guest) bool
}

// Privileges are what the token needs, per guest, in the order of
// docs/proxmox.md's table.
var Privileges = []Privilege{
	{Names: []string{"VM.Audit"}, Path: "/vms/{vmid}", For: "seeing the guest at all: /cluster/resources hides guests without it"},
	{Names: []string{"VM.Allocate"}, Path: "/vms/{vmid}", For: "create, clone, destroy"},
	{Names: []string{"VM.Clone"}, Path: "/vms/{vmid}", For: "cloning from the guest (on clone sources)", applies: isCloneSource},
	{Names: []string{"VM.Config.CPU"}, Path: "/vms/{vmid}", For: "cores"},
	{Names: []string{"VM.Config.Memory"}, Path: "/vms/{vmid}", For: "memory, swap"},
	{Names: []string{"VM.Config.Disk"}, Path: "/vms/{vmid}", For: "root disk, resize, mount points"},
	{Names: []string{"VM.Config.Network"}, Path: "/vms/{vmid}", For: "netN, the firewall's options and rules"},
	{Names: []string{"VM.Config.Options"}, Path: "/vms/{vmid}", For: "onboot, startup, description, tags"},
	{Names: []string{"VM.Config.Cloudinit"}, Path: "/vms/{vmid}", For: "cloud-init settings (VMs)", applies: isVM},
	{Names: []string{"VM.PowerMgmt"}, Path: "/vms/{vmid}", For: "start, shutdown, stop"},
	{Names: []string{"VM.Snapshot"}, Path: "/vms/{vmid}", For: "template and lifecycle snapshots", applies: takesSnapshots},
	{Names: []string{"VM.Monitor"}, Path: "/vms/{vmid}", Version: 8, For: "guest agent commands (agent/ping, agent/exec) for VM features and NFS mounts", applies: usesAgent},
	{Names: []string{"VM.GuestAgent.Unrestricted"}, Path: "/vms/{vmid}", Version: 9, For: "guest agent commands (agent/ping, agent/exec) for VM features and NFS mounts", applies: usesAgent},
	{Names: []string{"Datastore.AllocateSpace"}, Path: "/storage/{storage}", For: "disks, imports, container root file systems on the storage_pool", applies: hasStorage},
	{Names: []string{"Datastore.Audit", "Datastore.AllocateSpace"}, Path: "/storage/{template-storage}", For: "reading the ostemplate or cloud image's storage", applies: hasTemplateVolume},
	{Names: []string{"SDN.Use"}, Path: "/sdn/zones/localnetwork/{bridge}", For: "a netN on the bridge", applies: hasBridge},
	{Names: []string{"Sys.Modify"}, Path: "/", Version: 9, For: "creating a privileged container (unprivileged: false)", applies: isPrivileged},
}

// Applies reports whether guest g needs p on a cluster of the given major
// version.
func (p Privilege) Applies(cfg *api.Config, g *api.Guest, version int) bool {
	if p.Version != 0 && version != 0 && p.Version != version {
		return false
	}
	return p.applies == nil || p.applies(cfg, g)
}

// PathFor fills in p.Path for guest g; "" when the guest has no such
// object (no storage pool, no bridge).
func (p Privilege) PathFor(g *api.Guest) string {
	path := strings.ReplaceAll(p.Path, "{vmid}", g.ID.String())
	if strings.Contains(path, "{storage}") {
		if g.Spec.StoragePool == "" {
			return ""
		}
		path = strings.ReplaceAll(path, "{storage}", g.Spec.StoragePool)
	}
	if strings.Contains(path, "{template-storage}") {
		store := templateStorage(g)
		if store == "" {
			return ""
		}
		path = strings.ReplaceAll(path, "{template-storage}", store)
	}
	if strings.Contains(path, "{bridge}") {
		b := guestBridge(g)
		if b == "" {
			return ""
		}
		path = strings.ReplaceAll(path, "{bridge}", b)
	}
	return path
}

// PrivilegesTable is docs/proxmox.md's table of Privileges, in Markdown.
func PrivilegesTable() string {
	var b strings.Builder
	b.WriteString("| privilege | on | PVE | for |\n|---|---|---|---|\n")
	for _, p := range Privileges {
		ver := "8, 9"
		if p.Version != 0 {
			ver = fmt.Sprint(p.Version)
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", strings.Join(p.Names, " or "), p.Path, ver, p.For)
	}
	return b.String()
}

func isVM(_ *api.Config, g *api.Guest) bool { return g.Kind == api.KindVM }

func isCloneSource(cfg *api.Config, g *api.Guest) bool {
	for _, id := range cfg.IDs {
		if o := cfg.Guest(id); o != nil && o.CloneSource() == g.ID {
			return true
		}
	}
	return false
}

func takesSnapshots(_ *api.Config, g *api.Guest) bool {
	return g.Spec.TemplateSnapshotName != "" || g.Spec.EnableLifecycleSnapshots
}

// usesAgent: a VM's features and NFS mounts run through its guest agent.
func usesAgent(_ *api.Config, g *api.Guest) bool {
	if g.Kind != api.KindVM {
		return false
	}
	if len(g.Spec.Features) > 0 {
		return true
	}
	for _, v := range g.Spec.Volumes {
		if v.Type == "nfs" {
			return true
		}
	}
	return false
}

func hasStorage(_ *api.Config, g *api.Guest) bool { return g.Spec.StoragePool != "" }

func hasTemplateVolume(_ *api.Config, g *api.Guest) bool { return templateStorage(g) != "" }

func hasBridge(_ *api.Config, g *api.Guest) bool { return guestBridge(g) != "" }

func isPrivileged(_ *api.Config, g *api.Guest) bool {
	return g.Kind == api.KindLXC && g.CloneSource() == 0 && g.Spec.Unprivileged != nil && !*g.Spec.Unprivileged
}

// templateVolume is the volume ID a guest made from scratch is created
// from (its ostemplate or cloud image), and the content type it must be.
func templateVolume(g *api.Guest) (volid, content string) {
	if g.CloneSource() != 0 {
		return "", ""
	}
	if g.Kind == api.KindLXC {
		return g.Spec.Template, "vztmpl"
	}
	return g.Spec.TemplateImage, "import"
}

// templateStorage is the storage of a guest's template volume, or "" when
// it has none or it is not a volume ID.
func templateStorage(g *api.Guest) string {
	volid, _ := templateVolume(g)
	store, _, ok := strings.Cut(volid, ":")
	if !ok || strings.HasPrefix(volid, "/") {
		return ""
	}
	return store
}

// guestBridge is the bridge of a guest's first NIC, or "".
func guestBridge(g *api.Guest) string {
	if g.Spec.NetworkConfig != nil && g.Spec.NetworkConfig.Bridge != "" {
		return g.Spec.NetworkConfig.Bridge
	}
	return g.Spec.NetworkBridge
}
