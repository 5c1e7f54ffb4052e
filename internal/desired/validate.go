package desired

import (
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

// validateGuests runs the checks a schema cannot express: references,
// cycles, addresses and script paths.
func validateGuests(ps *problems, c *loading) {
	for _, id := range c.IDs {
		g := c.Guests[id]
		if g.Hash == "invalid" || g.Hash == "" {
			continue
		}
		validateRefs(ps, c, g)
		validateNetwork(ps, g)
		validateAddresses(ps, g)
		validateValues(ps, c, g)
		validateScripts(ps, g)
		validateMounts(ps, g)
		validateFirewall(ps, g)
	}
	validateUnique(ps, c)
	for _, cyc := range c.Cycles() {
		parts := make([]string, len(cyc))
		for i, id := range cyc {
			parts[i] = id.String()
		}
		last := c.Guests[cyc[len(cyc)-2]]
		field := "dependencies"
		if last.CloneSource() == cyc[len(cyc)-1] {
			field = cloneField(last)
		}
		ps.add(last.File, last.ID.String(), field, "cycle: %s", strings.Join(parts, " -> "))
	}
}

func cloneField(g *api.Guest) string {
	if g.Spec.CloneFromVMID != nil {
		return "clone_from_vmid"
	}
	return "clone_from_ctid"
}

func validateRefs(ps *problems, c *loading, g *api.Guest) {
	gid := g.ID.String()
	s := &g.Spec
	if s.CloneFromCTID != nil && s.CloneFromVMID != nil {
		ps.add(g.File, gid, "clone_from_ctid", "set both clone_from_ctid and clone_from_vmid; keep one")
	}
	for _, r := range []struct {
		field string
		ref   *api.Ref
		want  api.Kind
	}{{"clone_from_ctid", s.CloneFromCTID, api.KindLXC}, {"clone_from_vmid", s.CloneFromVMID, api.KindVM}} {
		if r.ref == nil {
			continue
		}
		src, ok := resolve(ps, c, g, r.field, *r.ref)
		if !ok {
			continue
		}
		if src.Kind != r.want || src.Kind != g.Kind {
			ps.add(g.File, gid, r.field, "clone source %s is a %s guest; a %s can only be cloned from a %s", src.ID, src.Kind, g.Kind, g.Kind)
		}
	}
	if s.CloneFromCTID == nil && s.CloneFromVMID == nil {
		switch {
		case g.Kind == api.KindLXC && s.Template == "":
			ps.add(g.File, gid, "template", "a container needs an ostemplate (template) or a clone source (clone_from_ctid)")
		case g.Kind == api.KindVM && s.TemplateImage == "":
			ps.add(g.File, gid, "template_image", "a VM needs a cloud image (template_image) or a clone source (clone_from_vmid)")
		}
	}
	for i, d := range s.Dependencies {
		field := "dependencies[" + itoa(i) + "]"
		resolve(ps, c, g, field, d)
	}
}

// resolve checks that ref names another guest of the config.
func resolve(ps *problems, c *loading, g *api.Guest, field string, ref api.Ref) (*api.Guest, bool) {
	if ref.ID == 0 {
		ps.add(g.File, g.ID.String(), field, "%q is not a guest ID (want a number from %d to %d)", ref.Raw, api.MinID, api.MaxID)
		return nil, false
	}
	if ref.ID == g.ID {
		ps.add(g.File, g.ID.String(), field, "guest %s refers to itself", g.ID)
		return nil, false
	}
	other := c.Guests[ref.ID]
	if other == nil && c.unreadable {
		return nil, false
	}
	if other == nil {
		ps.add(g.File, g.ID.String(), field, "unknown guest %s (not in %s or %s)", ref.ID, api.LXCFile, api.VMFile)
		return nil, false
	}
	return other, true
}

func validateNetwork(ps *problems, g *api.Guest) {
	gid := g.ID.String()
	if n := g.Spec.NetworkConfig; n != nil {
		if n.IP != "" && n.IP != "dhcp" && n.IP != "manual" {
			if _, err := netip.ParsePrefix(n.IP); err != nil {
				ps.add(g.File, gid, "network_config.ip", "%q is not an address in CIDR form (like 10.0.0.5/24)", n.IP)
			}
		}
		if n.GW != "" {
			if _, err := netip.ParseAddr(n.GW); err != nil {
				ps.add(g.File, gid, "network_config.gw", "%q is not an IP address", n.GW)
			}
		}
		for _, f := range []struct {
			name string
			list api.Nameservers
		}{{"nameservers", n.Nameservers}, {"nameserver", n.Nameserver}} {
			for i, ns := range f.list {
				if _, err := netip.ParseAddr(ns); err != nil {
					ps.add(g.File, gid, "network_config."+f.name+"["+itoa(i)+"]", "%q is not an IP address", ns)
				}
			}
		}
	}
	if m := g.Spec.MACAddress; m != "" {
		hw, err := net.ParseMAC(m)
		switch {
		case err != nil || len(hw) != 6 || strings.Count(m, ":") != 5:
			ps.add(g.File, gid, "mac_address", "%q is not a MAC address (like 52:54:00:12:34:56)", m)
		case hw[0]&1 != 0:
			ps.add(g.File, gid, "mac_address", "%q is a multicast address; a guest needs a unicast MAC (even first byte)", m)
		case string(hw) == "\x00\x00\x00\x00\x00\x00":
			ps.add(g.File, gid, "mac_address", "%q is the all-zero MAC", m)
		}
	}
}

func validateScripts(ps *problems, g *api.Guest) {
	gid := g.ID.String()
	for i, f := range g.Spec.Features {
		if !safeName(f) {
			ps.add(g.File, gid, "features["+itoa(i)+"]", "%q must name a script inside the features folder", f)
		}
	}
	if a := g.Spec.ApplicationScript; a != "" && !safeName(a) {
		ps.add(g.File, gid, "application_script", "%q must name a script inside the apps folder", a)
	}
}

// validateMounts checks what phoenix acts on as root on the host: bind-mount
// folders it creates and chowns, idmap ranges and NFS exports.
func validateMounts(ps *problems, g *api.Guest) {
	gid := g.ID.String()
	s := &g.Spec
	if len(s.MountPoints) > 0 && g.Kind != api.KindLXC {
		ps.add(g.File, gid, "mount_points", "bind mounts are for containers; a VM mounts NFS volumes (volumes with type nfs)")
	}
	for i, m := range s.MountPoints {
		f := "mount_points[" + itoa(i) + "]"
		if !cleanAbs(m.HostPath) {
			ps.add(g.File, gid, f+".host_path", "%q: want an absolute, clean host path (no .., no //)", m.HostPath)
		} else if m.HostPath == "/" || strings.HasPrefix(m.HostPath, "/etc/pve") || strings.HasPrefix(m.HostPath, "/proc") || strings.HasPrefix(m.HostPath, "/sys") || strings.HasPrefix(m.HostPath, "/dev") {
			ps.add(g.File, gid, f+".host_path", "%q: refusing to bind-mount or chown a system folder of the host", m.HostPath)
		}
		if !cleanAbs(m.ContainerPath) || m.ContainerPath == "/" {
			ps.add(g.File, gid, f+".container_path", "%q: want an absolute, clean path inside the container", m.ContainerPath)
		}
	}
	for i, m := range s.IDMaps {
		f := "id_maps[" + itoa(i) + "]"
		if m.Type != "uid" && m.Type != "gid" {
			ps.add(g.File, gid, f+".type", "%q: want uid or gid", m.Type)
		}
		if m.Size < 1 {
			ps.add(g.File, gid, f+".size", "want a range of at least 1 ID")
		}
		if m.HostID+m.Size > 1<<32 || m.ContainerID+m.Size > 1<<32 {
			ps.add(g.File, gid, f, "range ends past the last ID (4294967295)")
		}
	}
	for i, v := range s.Volumes {
		if v.Type != "nfs" {
			continue
		}
		f := "volumes[" + itoa(i) + "]"
		if g.Kind != api.KindVM {
			ps.add(g.File, gid, f+".type", "nfs volumes are mounted inside VMs; a container uses mount_points")
		}
		if _, err := netip.ParseAddr(v.Server); err != nil && !hostnameOK(v.Server) {
			ps.add(g.File, gid, f+".server", "%q is not an IP address or host name", v.Server)
		}
		if !cleanAbs(v.Path) {
			ps.add(g.File, gid, f+".path", "%q: want the export's absolute path", v.Path)
		}
		if !cleanAbs(v.MountPoint) || v.MountPoint == "/" {
			ps.add(g.File, gid, f+".mount_point", "%q: want an absolute, clean path inside the VM", v.MountPoint)
		}
	}
}

// cleanAbs reports whether p is an absolute path with nothing to resolve
// and nothing a mount option or fstab line would misread.
func cleanAbs(p string) bool {
	return p != "" && filepath.IsAbs(p) && filepath.Clean(p) == p && !strings.ContainsAny(p, " \t\n\r,\x00\\")
}

// safeName reports whether a script name stays inside its folder.
func safeName(name string) bool {
	return name != "" && filepath.IsLocal(name) && !strings.ContainsAny(name, "\\\x00") && !strings.HasPrefix(name, ".")
}

func itoa(i int) string { return api.ID(i).String() }

// validateFirewall checks each firewall rule against Proxmox's grammar, so
// that no value can add an option or a line to the guest's .fw file.
func validateFirewall(ps *problems, g *api.Guest) {
	fw := g.Spec.Firewall
	if fw == nil {
		return
	}
	for i, r := range fw.Rules {
		for _, e := range pvefirewall.Validate(r) {
			ps.add(g.File, g.ID.String(), "firewall.rules["+strconv.Itoa(i)+"]."+e.Field, "%s", e.Msg)
		}
	}
}
