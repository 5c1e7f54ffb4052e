package desired

import (
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
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
		for i, ns := range n.Nameservers {
			if _, err := netip.ParseAddr(ns); err != nil {
				ps.add(g.File, gid, "network_config.nameservers["+itoa(i)+"]", "%q is not an IP address", ns)
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

// safeName reports whether a script name stays inside its folder.
func safeName(name string) bool {
	return name != "" && filepath.IsLocal(name) && !strings.ContainsAny(name, "\\\x00") && !strings.HasPrefix(name, ".")
}

func itoa(i int) string { return api.ID(i).String() }
