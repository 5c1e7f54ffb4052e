package fakepveapi

import (
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
)

// allPrivileges are the privileges of Proxmox's Administrator role that
// phoenix cares about, per major version: what a token without privilege
// separation of root@pam has everywhere.
func allPrivileges(version int) []string {
	p := []string{"Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
		"Pool.Allocate", "Pool.Audit", "SDN.Allocate", "SDN.Audit", "SDN.Use", "Sys.Audit", "Sys.Console", "Sys.Modify",
		"Sys.PowerMgmt", "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU",
		"VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network",
		"VM.Config.Options", "VM.Console", "VM.Migrate", "VM.PowerMgmt", "VM.Snapshot", "VM.Snapshot.Rollback"}
	if version == 8 {
		return append(p, "VM.Monitor")
	}
	return append(p, "VM.GuestAgent.Audit", "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt",
		"VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted")
}

// effective are the token's privileges on p: those of the ACL entry on the
// nearest path at or above p (a more specific entry replaces what is
// inherited, as Proxmox's propagation does for one user). With no ACL
// (Options.Permissions nil) the token has every privilege everywhere.
// Caller holds c.mu.
func (c *Cluster) effective(p string) map[string]int {
	out := map[string]int{}
	if c.opts.Permissions == nil {
		for _, n := range allPrivileges(int(c.opts.Version)) {
			out[n] = 1
		}
		return out
	}
	for cur := path.Clean("/" + p); ; cur = path.Dir(cur) {
		if privs, ok := c.opts.Permissions[cur]; ok {
			for _, n := range privs {
				out[n] = 1
			}
			return out
		}
		if cur == "/" {
			return out
		}
	}
}

// may reports whether the token holds any of privs on p. Caller holds c.mu.
func (c *Cluster) may(p string, privs ...string) bool {
	eff := c.effective(p)
	return slices.ContainsFunc(privs, func(n string) bool { return eff[n] == 1 })
}

func denied(p string, privs ...string) *apiError {
	return errf(http.StatusForbidden, "Permission check failed (%s, %s)", p, strings.Join(privs, "|"))
}

// permissions is GET /access/permissions: path -> privilege -> propagate,
// for one path or, without one, for every path of the ACL and the root.
func (c *Cluster) permissions(p params) (any, *apiError) {
	if u := p.s["userid"]; u != "" && u != c.opts.TokenID {
		// Dumping another user's permissions needs Sys.Audit on /access.
		if !c.may("/access", "Sys.Audit") {
			return nil, denied("/access", "Sys.Audit")
		}
	}
	out := map[string]map[string]int{}
	if want := p.s["path"]; want != "" {
		out[want] = c.effective(want)
		return out, nil
	}
	paths := []string{"/"}
	if c.opts.Permissions != nil {
		paths = slices.Sorted(maps.Keys(c.opts.Permissions))
	}
	for _, q := range paths {
		if e := c.effective(q); len(e) > 0 {
			out[q] = e
		}
	}
	return out, nil
}

// network is GET /nodes/{node}/network: the node's interfaces, each bridge
// of Options.Bridges plus the physical port they sit on.
func (c *Cluster) network(p params) (any, *apiError) {
	typ := p.s["type"]
	out := []map[string]any{}
	add := func(iface, t string) {
		match := typ == "" || typ == t || (typ == "any_bridge" || typ == "any_local_bridge") && (t == "bridge" || t == "OVSBridge")
		if match {
			out = append(out, map[string]any{"iface": iface, "type": t, "active": 1, "autostart": 1, "families": []string{"inet"}, "method": "manual", "priority": len(out) + 1})
		}
	}
	add("eno1", "eth")
	for _, b := range c.opts.Bridges {
		add(b, "bridge")
	}
	return out, nil
}

// storageContent is GET /nodes/{node}/storage/{storage}/content.
func (c *Cluster) storageContent(storage string, p params) (any, *apiError) {
	sp := "/storage/" + storage
	if !c.may(sp, "Datastore.Audit", "Datastore.AllocateSpace") {
		return nil, denied(sp, "Datastore.Audit", "Datastore.AllocateSpace")
	}
	if _, ok := c.opts.Storages[storage]; !ok {
		return nil, errf(500, "storage '%s' does not exist", storage)
	}
	want := p.s["content"]
	out := []map[string]any{}
	for _, v := range c.opts.Volumes[storage] {
		content := volumeContent(v)
		if want != "" && want != content {
			continue
		}
		out = append(out, map[string]any{"volid": v, "content": content, "format": volumeFormat(v), "size": 1 << 28, "ctime": 1700000000})
	}
	return out, nil
}

// volumeContent is the content type of a volume ID by its folder
// (storage:vztmpl/..., storage:import/..., storage:iso/...).
func volumeContent(volid string) string {
	_, rel, _ := strings.Cut(volid, ":")
	dir, _, ok := strings.Cut(rel, "/")
	if !ok {
		return "images"
	}
	return dir
}

func volumeFormat(volid string) string {
	switch ext := path.Ext(volid); ext {
	case ".zst", ".gz", ".xz":
		return "t" + strings.TrimPrefix(ext, ".")
	case "":
		return "raw"
	default:
		return strings.TrimPrefix(ext, ".")
	}
}

// contentOf is a storage's content types: Options.StorageContent, else
// what Proxmox's defaults give each type.
func (c *Cluster) contentOf(storage string) string {
	if v, ok := c.opts.StorageContent[storage]; ok {
		return v
	}
	switch c.opts.Storages[storage] {
	case "dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs":
		return "images,rootdir,vztmpl,iso,import,backup"
	}
	return "images,rootdir"
}

// checkVolume refuses an ostemplate or import-from volume that the
// storage does not hold, when the test listed the storage's volumes.
// Caller holds c.mu.
func (c *Cluster) checkVolume(volid string) *apiError {
	store, _, ok := strings.Cut(volid, ":")
	if !ok || c.opts.Volumes == nil {
		return nil
	}
	if _, listed := c.opts.Volumes[store]; !listed {
		return nil
	}
	if !slices.Contains(c.opts.Volumes[store], volid) {
		return errf(500, "volume '%s' does not exist", volid)
	}
	return nil
}
