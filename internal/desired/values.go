package desired

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Values that reach Proxmox. Many end up inside a property string
// ("name=eth0,bridge=vmbr0,ip=...") or a line of a container's config
// file, where a comma, an equals sign or a line break would add keys of
// the writer's choosing; so each field is held to the grammar Proxmox gives
// it, not merely to "a string".

var (
	// pve-storage-id.
	storageIDRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]$`)
	// Proxmox's bridge and interface name pattern, within Linux's 15 bytes.
	ifaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
	// A DNS label.
	labelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// pve-configid, which snapshot names follow, at most 40 long.
	snapshotRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{1,39}$`)
	// pct's lxc.* line: the key, then ':' or '=' (Proxmox's parser takes both).
	lxcOptionRE = regexp.MustCompile(`^(lxc\.[a-z0-9_.-]+)(:|\s*=)\s*(.*?)\s*$`)
	capRE       = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	apparmorRE  = regexp.MustCompile(`^[A-Za-z0-9_.:/-]+$`)
	fsTypesRE   = regexp.MustCompile(`^[a-z0-9_]+(;[a-z0-9_]+)*$`)
	volNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// Bounds Proxmox accepts for the numbers phoenix passes on.
const (
	minMemoryMB = 16      // pct and qm refuse less
	maxMemoryMB = 4 << 20 // 4 TiB
	maxCores    = 8192
	maxSizeGB   = 1 << 20 // 1 PiB
	maxBootWait = 86400
	maxRetries  = 10000
	maxGPU      = 63
)

// validateValues checks one guest's values against what Proxmox accepts.
func validateValues(ps *problems, c *loading, g *api.Guest) {
	f, gid, s := g.File, g.ID.String(), &g.Spec
	add := func(field, format string, args ...any) { ps.add(f, gid, field, format, args...) }

	if s.Name != "" && !hostnameOK(s.Name) {
		add("name", "%q is not a host name: letters, digits and '-' in dot-separated labels of at most 63, not starting or ending with '-'", s.Name)
	}
	if s.Node != "" && !labelRE.MatchString(s.Node) {
		add("node", "%q is not a Proxmox node name", s.Node)
	}
	if s.StoragePool != "" && !storageIDRE.MatchString(s.StoragePool) {
		add("storage_pool", "%q is not a Proxmox storage ID (letters, digits, '-', '_', '.'; starting with a letter)", s.StoragePool)
	}
	if g.Kind == api.KindVM && s.StoragePool == "" && g.CloneSource() == 0 {
		// A clone's disk goes where its source's is; an imported image
		// needs a storage to land in.
		add("storage_pool", "a VM built from template_image needs a storage pool for its disk (here or in vm_defaults)")
	}
	if s.NetworkBridge != "" && !ifaceRE.MatchString(s.NetworkBridge) {
		add("network_bridge", "%q is not a bridge name (letters, digits, '-', '_', '.'; at most 15)", s.NetworkBridge)
	}
	for _, t := range []struct{ field, v string }{{"template", s.Template}, {"template_image", s.TemplateImage}} {
		if t.v != "" && strings.ContainsAny(t.v, ",;=\"' \t") {
			add(t.field, "%q may not contain ',', ';', '=', quotes or spaces", t.v)
		}
	}
	if n := s.TemplateSnapshotName; n != "" && (!snapshotRE.MatchString(n) || n == "current") {
		add("template_snapshot_name", "%q is not a snapshot name: 2 to 40 letters, digits, '-' or '_', starting with a letter, and not \"current\"", n)
	}
	if s.ApparmorProfile != "" && !apparmorRE.MatchString(s.ApparmorProfile) {
		add("apparmor_profile", "%q is not an AppArmor profile name", s.ApparmorProfile)
	}
	if msg := gpuProblem(s.GPUAssignment); msg != "" {
		add("gpu_assignment", "%q: %s", s.GPUAssignment, msg)
	}
	bound := func(field string, v, lo, hi int) {
		if v != 0 && (v < lo || v > hi) {
			add(field, "%d is out of range (%d to %d)", v, lo, hi)
		}
	}
	bound("memory_mb", s.MemoryMB, minMemoryMB, maxMemoryMB)
	bound("cores", s.Cores, 1, maxCores)
	bound("swap_mb", s.SwapMB, 0, maxMemoryMB)
	bound("storage_size_gb", s.StorageSizeGB, 1, maxSizeGB)
	bound("disk_size_gb", s.DiskSizeGB, 1, maxSizeGB)
	if s.BootOrder != nil {
		bound("boot_order", *s.BootOrder, 0, 1<<20)
	}
	bound("boot_delay", s.BootDelay, 0, maxBootWait)
	if h := s.HealthCheck; h != nil {
		bound("health_check.retries", h.Retries, 0, maxRetries)
		bound("health_check.interval", h.Interval, 0, maxBootWait)
	}
	for _, vs := range []struct {
		field string
		list  []api.Volume
	}{{"zfs_volumes", s.ZFSVolumes}, {"volumes", s.Volumes}} {
		for i, v := range vs.list {
			field := vs.field + "[" + itoa(i) + "]"
			if v.Name != "" && !volNameRE.MatchString(v.Name) {
				add(field+".name", "%q may hold letters, digits, '-', '_' and '.' only", v.Name)
			}
			if v.Pool != "" && !storageIDRE.MatchString(v.Pool) {
				add(field+".pool", "%q is not a Proxmox storage ID", v.Pool)
			}
			bound(field+".size_gb", v.SizeGB, 1, maxSizeGB)
			if v.MountPoint != "" {
				if msg := mountPointProblem(v.MountPoint); msg != "" {
					add(field+".mount_point", "%q: %s", v.MountPoint, msg)
				}
			}
		}
	}
	for i, o := range s.PctOptions {
		if msg := featureProblem(o); msg != "" {
			add("pct_options["+itoa(i)+"]", "%q: %s", o, msg)
		}
	}
	for i, o := range s.LXCOptions {
		field := "lxc_options[" + itoa(i) + "]"
		_, _, msg, warn := checkLXCOption(o)
		switch {
		case msg != "" && warn:
			ps.warn(f, gid, field, "%q: %s", o, msg)
		case msg != "":
			add(field, "%q: %s", o, msg)
		}
	}
	if g.Kind == api.KindVM && len(s.LXCOptions)+len(s.PctOptions) > 0 {
		add("lxc_options", "a VM takes no lxc_options or pct_options")
	}
	for i, d := range s.Dependencies {
		if dep := c.Guests[d.ID]; dep != nil && dep.Hash != "invalid" && dep.IsTemplateSource() {
			add("dependencies["+itoa(i)+"]", "guest %s is a template, which is never started; depend on a guest cloned from it instead", d.ID)
		}
	}
}

func hostnameOK(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// gpuProblem checks gpu_assignment: "", "none", or GPU numbers separated
// by commas ("0", "0, 1").
func gpuProblem(s string) string {
	if t := strings.TrimSpace(s); t == "" || t == "none" {
		return ""
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.Atoi(part)
		if err != nil || part[0] == '+' || part[0] == '-' || len(part) > 2 {
			return fmt.Sprintf("want \"none\" or GPU numbers separated by commas (like \"0, 1\"), not %q", part)
		}
		if n > maxGPU {
			return fmt.Sprintf("GPU %d: at most %d", n, maxGPU)
		}
		if seen[n] {
			return fmt.Sprintf("GPU %d is listed twice", n)
		}
		seen[n] = true
	}
	return ""
}

func mountPointProblem(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "a mount point must be an absolute path"
	case path.Clean(p) != p:
		return "a mount point must be a clean path (no '..', '.', '//' or trailing '/')"
	case p == "/":
		return "the root file system cannot be a mount point"
	case strings.ContainsAny(p, ",;=\"' \t"):
		return "a mount point may not contain ',', ';', '=', quotes or spaces"
	}
	return ""
}

// Container features pct set --features accepts, and their values.
var features = map[string]*regexp.Regexp{
	"nesting": regexp.MustCompile(`^[01]$`), "keyctl": regexp.MustCompile(`^[01]$`),
	"fuse": regexp.MustCompile(`^[01]$`), "mknod": regexp.MustCompile(`^[01]$`),
	"force_rw_sys": regexp.MustCompile(`^[01]$`), "mount": fsTypesRE,
}

func featureProblem(o string) string {
	k, v, ok := strings.Cut(o, "=")
	re := features[k]
	switch {
	case !ok || re == nil:
		return "want a container feature as key=value: nesting, keyctl, fuse, mknod, force_rw_sys (0 or 1) or mount (file system types separated by ';')"
	case !re.MatchString(v):
		if k == "mount" {
			return "mount takes file system types separated by ';' (like nfs;cifs)"
		}
		return k + " takes 0 or 1"
	}
	return ""
}

// The lxc.* keys Proxmox lets through to a container's config, from
// pve-container's PVE::LXC::Config (valid_lxc_conf_keys); lxc.cgroup2.*,
// lxc.prlimit.* and lxc.net.* are allowed as prefixes.
var lxcKeys = map[string]string{
	"lxc.apparmor.profile": "", "lxc.apparmor.allow_incomplete": "", "lxc.apparmor.allow_nesting": "",
	"lxc.apparmor.raw": "", "lxc.selinux.context": "", "lxc.include": "", "lxc.arch": "", "lxc.uts.name": "",
	"lxc.signal.halt": "", "lxc.signal.reboot": "", "lxc.signal.stop": "", "lxc.init.cmd": "",
	"lxc.init.cwd": "", "lxc.init.uid": "", "lxc.init.gid": "", "lxc.init.groups": "", "lxc.pty.max": "",
	"lxc.console.logfile": "", "lxc.console.path": "", "lxc.tty.max": "", "lxc.devtty.dir": "",
	"lxc.hook.autodev": "", "lxc.autodev": "", "lxc.kmsg": "", "lxc.mount.fstab": "", "lxc.mount.entry": "",
	"lxc.mount.auto": "", "lxc.rootfs.mount": "", "lxc.cap.drop": "", "lxc.cap.keep": "",
	"lxc.seccomp.profile": "", "lxc.seccomp.notify.proxy": "", "lxc.seccomp.notify.cookie": "",
	"lxc.idmap": "", "lxc.hook.pre-start": "", "lxc.hook.pre-mount": "", "lxc.hook.mount": "",
	"lxc.hook.start": "", "lxc.hook.stop": "", "lxc.hook.post-stop": "", "lxc.hook.clone": "",
	"lxc.hook.destroy": "", "lxc.hook.version": "", "lxc.log.level": "", "lxc.log.file": "",
	"lxc.start.auto": "", "lxc.start.delay": "", "lxc.start.order": "", "lxc.group": "",
	"lxc.environment": "", "lxc.environment.runtime": "", "lxc.environment.hooks": "",
	"lxc.sysctl.fs.mqueue": "", "lxc.sysctl.kernel.msgmax": "", "lxc.sysctl.kernel.msgmnb": "",
	"lxc.sysctl.kernel.msgmni": "", "lxc.sysctl.kernel.sem": "", "lxc.sysctl.kernel.shmall": "",
	"lxc.sysctl.kernel.shmmax": "", "lxc.sysctl.kernel.shmmni": "", "lxc.sysctl.kernel.shm_rmid_forced": "",
	// Refused by Proxmox, with its reason.
	"lxc.rootfs.path":    "lxc.rootfs.path is generated from rootfs",
	"lxc.rootfs.options": "lxc.rootfs.options is not supported; use mount point options of rootfs",
}

// Keys Proxmox still takes, with a warning, under their old names.
var lxcDeprecated = map[string]string{
	"lxc.aa_profile": "lxc.apparmor.profile", "lxc.aa_allow_incomplete": "lxc.apparmor.allow_incomplete",
	"lxc.console": "lxc.console.path", "lxc.devttydir": "lxc.tty.dir", "lxc.haltsignal": "lxc.signal.halt",
	"lxc.rebootsignal": "lxc.signal.reboot", "lxc.stopsignal": "lxc.signal.stop", "lxc.id_map": "lxc.idmap",
	"lxc.init_cmd": "lxc.init.cmd", "lxc.loglevel": "lxc.log.level", "lxc.logfile": "lxc.log.file",
	"lxc.mount": "lxc.mount.fstab", "lxc.pts": "lxc.pty.max", "lxc.se_context": "lxc.selinux.context",
	"lxc.seccomp": "lxc.seccomp.profile", "lxc.tty": "lxc.tty.max", "lxc.utsname": "lxc.uts.name",
}

// ParseLXCOption splits an lxc_options entry into key and value the way
// Proxmox reads a line of a container's config: "lxc.key=value",
// "lxc.key = value" or "lxc.key:value". ok is false for anything else.
func ParseLXCOption(o string) (key, value string, ok bool) {
	m := lxcOptionRE.FindStringSubmatch(o)
	if m == nil {
		return "", "", false
	}
	return m[1], m[3], true
}

// LXCOptionLines gives the config lines ([key, value] pairs) an
// lxc_options entry becomes: lxc.cap.keep's comma list is one line per
// capability, as lxc itself wants it.
func LXCOptionLines(o string) [][2]string {
	k, v, ok := ParseLXCOption(o)
	if !ok {
		return nil
	}
	if k != "lxc.cap.keep" && k != "lxc.cap.drop" {
		return [][2]string{{k, v}}
	}
	var out [][2]string
	for _, c := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, [2]string{k, c})
	}
	return out
}

// checkLXCOption returns the problem with an lxc_options entry, if any;
// warn marks one Proxmox accepts with a warning of its own.
func checkLXCOption(o string) (key, value, msg string, warn bool) {
	k, v, ok := ParseLXCOption(o)
	if !ok {
		return "", "", "want lxc.<key>=<value> or lxc.<key>:<value> with a lowercase key (pct options go in pct_options)", false
	}
	if v == "" {
		return k, v, "a value is needed (an empty one would remove the key)", false
	}
	if why, known := lxcKeys[k]; known && why != "" {
		return k, v, why, false
	}
	if newKey, old := lxcDeprecated[k]; old {
		return k, v, fmt.Sprintf("%s is deprecated; Proxmox renames it to %s", k, newKey), true
	}
	_, known := lxcKeys[k]
	switch {
	case known, strings.HasPrefix(k, "lxc.cgroup2."), strings.HasPrefix(k, "lxc.prlimit."), strings.HasPrefix(k, "lxc.net."):
	case strings.HasPrefix(k, "lxc.cgroup."):
		return k, v, "lxc.cgroup.* is deprecated (cgroup v1); use lxc.cgroup2.*", true
	case strings.HasPrefix(k, "lxc.limit."):
		return k, v, "lxc.limit.* was renamed to lxc.prlimit.*", true
	default:
		return k, v, fmt.Sprintf("%s is not a key Proxmox accepts in a container's config", k), false
	}
	if k == "lxc.cap.keep" || k == "lxc.cap.drop" {
		for _, c := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !capRE.MatchString(c) {
				return k, v, fmt.Sprintf("%q is not a capability name (like sys_admin)", c), false
			}
		}
	}
	return k, v, "", false
}

// validateAddresses checks a guest's network settings.
func validateAddresses(ps *problems, g *api.Guest) {
	n := g.Spec.NetworkConfig
	if n == nil {
		return
	}
	f, gid := g.File, g.ID.String()
	if n.Name != "" && !ifaceRE.MatchString(n.Name) {
		ps.add(f, gid, "network_config.name", "%q is not an interface name (letters, digits, '-', '_', '.'; at most 15)", n.Name)
	}
	if n.Bridge != "" && !ifaceRE.MatchString(n.Bridge) {
		ps.add(f, gid, "network_config.bridge", "%q is not a bridge name (letters, digits, '-', '_', '.'; at most 15)", n.Bridge)
	}
	var prefix netip.Prefix
	if n.IP != "" && n.IP != "dhcp" && n.IP != "manual" {
		p, err := netip.ParsePrefix(n.IP)
		switch {
		case err != nil:
			ps.add(f, gid, "network_config.ip", "%q is not an address in CIDR form (like 10.0.0.5/24): %v", n.IP, err)
		case p.Addr().Is6():
			ps.add(f, gid, "network_config.ip", "%q is an IPv6 address; ip takes IPv4 (Proxmox keeps IPv6 in ip6)", n.IP)
		default:
			if msg := hostAddrProblem(p.Addr(), p); msg != "" {
				ps.add(f, gid, "network_config.ip", "%q: %s", n.IP, msg)
			} else {
				prefix = p
			}
		}
	}
	if n.GW != "" {
		gw, err := netip.ParseAddr(n.GW)
		switch {
		case err != nil:
			ps.add(f, gid, "network_config.gw", "%q is not an IP address", n.GW)
		case gw.Zone() != "":
			ps.add(f, gid, "network_config.gw", "%q: a gateway takes no zone", n.GW)
		case prefix.IsValid() && gw.Is4() != prefix.Addr().Is4():
			ps.add(f, gid, "network_config.gw", "%q is not of the address's family (%s)", n.GW, n.IP)
		case prefix.IsValid() && !prefix.Masked().Contains(gw):
			ps.add(f, gid, "network_config.gw", "%q is outside the guest's subnet %s", n.GW, prefix.Masked())
		case prefix.IsValid() && gw == prefix.Addr():
			ps.add(f, gid, "network_config.gw", "%q is the guest's own address", n.GW)
		case prefix.IsValid():
			if msg := hostAddrProblem(gw, prefix); msg != "" {
				ps.add(f, gid, "network_config.gw", "%q: %s", n.GW, msg)
			}
		case gw.Is6():
			ps.add(f, gid, "network_config.gw", "%q is an IPv6 address; gw takes IPv4 (Proxmox keeps IPv6 in gw6)", n.GW)
		}
	}
}

// hostAddrProblem says why a is not a usable host address in p.
func hostAddrProblem(a netip.Addr, p netip.Prefix) string {
	switch {
	case a.Zone() != "":
		return "an address takes no zone"
	case a.Is4In6():
		return "write an IPv4 address as IPv4"
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
		return "not a host address (unspecified, loopback or multicast)"
	}
	if a.Is4() && p.Bits() <= 30 {
		if a == p.Masked().Addr() {
			return "this is the network address of the subnet"
		}
		b := a.As4()
		host := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		mask := uint32(1)<<(32-p.Bits()) - 1
		if host&mask == mask {
			return "this is the broadcast address of the subnet"
		}
	}
	return ""
}

// validateUnique refuses an address or a MAC given to two guests.
func validateUnique(ps *problems, c *loading) {
	ips := map[netip.Addr]*api.Guest{}
	macs := map[string]*api.Guest{}
	for _, id := range c.IDs {
		g := c.Guests[id]
		if g.Hash == "invalid" || g.Hash == "" {
			continue
		}
		if n := g.Spec.NetworkConfig; n != nil {
			if p, err := netip.ParsePrefix(n.IP); err == nil {
				if other := ips[p.Addr()]; other != nil {
					ps.add(g.File, g.ID.String(), "network_config.ip", "address %s is already guest %s's", p.Addr(), other.ID)
				} else {
					ips[p.Addr()] = g
				}
			}
		}
		if m := strings.ToLower(g.Spec.MACAddress); m != "" {
			if other := macs[m]; other != nil {
				ps.add(g.File, g.ID.String(), "mac_address", "MAC %s is already guest %s's", g.Spec.MACAddress, other.ID)
			} else {
				macs[m] = g
			}
		}
	}
}
