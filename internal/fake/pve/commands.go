package pve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/pveschema"
)

// command is one subcommand: how many positional arguments it needs, the
// options it knows, and what it does.
type command struct {
	npos  int
	usage string
	only  string // "pct" or "qm" when the other tool has no such command
	opts  func(tool string) func(string) bool
	run   func(f *fake, c *cmdline) error
	// endpoint is the API call behind the verb, by tool: its parameters are
	// the verb's options, checked against the schema of the release played.
	endpoint map[string]string
	// posNames name the positional arguments that are endpoint parameters.
	posNames []string
	// cliOnly are options of the verb that are not parameters of its
	// endpoint.
	cliOnly []string
}

func eps(lxc, vm string) map[string]string { return map[string]string{"pct": lxc, "qm": vm} }

func known(names ...string) func(string) func(string) bool {
	return func(string) func(string) bool { return oneOf(names...) }
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"create": {npos: 1, usage: "<vmid> [<ostemplate>] [OPTIONS]", run: (*fake).create,
			endpoint: eps(pveschema.LXCCreate, pveschema.VMCreate), posNames: []string{"vmid", "ostemplate"}},
		"clone": {npos: 2, usage: "<vmid> <newid> [OPTIONS]", run: (*fake).clone,
			endpoint: eps(pveschema.LXCClone, pveschema.VMClone), posNames: []string{"vmid", "newid"}},
		"set": {npos: 1, usage: "<vmid> [OPTIONS]", run: (*fake).set,
			endpoint: eps(pveschema.LXCConfig, pveschema.VMConfig), posNames: []string{"vmid"}},
		"resize": {npos: 3, usage: "<vmid> <disk> <size> [OPTIONS]", run: (*fake).resize,
			endpoint: eps(pveschema.LXCResize, pveschema.VMResize), posNames: []string{"vmid", "disk", "size"}},
		"start": {npos: 1, usage: "<vmid> [OPTIONS]",
			opts: known("skiplock", "debug", "timeout"), run: (*fake).start},
		"stop": {npos: 1, usage: "<vmid> [OPTIONS]",
			opts: known("skiplock", "overrule-shutdown", "timeout"), run: (*fake).stop},
		"shutdown": {npos: 1, usage: "<vmid> [OPTIONS]",
			opts: known("forceStop", "timeout", "skiplock"), run: (*fake).stop},
		"destroy": {npos: 1, usage: "<vmid> [OPTIONS]",
			opts: known("purge", "force", "destroy-unreferenced-disks", "skiplock"), run: (*fake).destroy},
		"snapshot": {npos: 2, usage: "<vmid> <snapname> [OPTIONS]", run: (*fake).snapshot,
			endpoint: eps(pveschema.LXCSnapshot, pveschema.VMSnapshot), posNames: []string{"vmid", "snapname"}},
		"listsnapshot": {npos: 1, usage: "<vmid>", opts: known(), run: (*fake).listsnapshot},
		"template": {npos: 1, usage: "<vmid> [OPTIONS]", run: (*fake).template,
			endpoint: eps(pveschema.LXCTemplate, pveschema.VMTemplate), posNames: []string{"vmid"}},
		"config": {npos: 1, usage: "<vmid> [OPTIONS]",
			opts: known("current", "snapshot"), run: (*fake).printConfig},
		"status": {npos: 1, usage: "<vmid> [OPTIONS]", opts: known("verbose"), run: (*fake).status},
		"list":   {usage: "[OPTIONS]", opts: known("full"), run: (*fake).list},
		"unlock": {npos: 1, usage: "<vmid>", opts: known(), run: (*fake).unlock},
		"push": {npos: 3, usage: "<vmid> <file> <destination> [OPTIONS]", only: "pct",
			opts: known("perms", "user", "group"), run: (*fake).push},
		"exec": {npos: 1, usage: "<vmid> [<extra-args>] [OPTIONS]", only: "pct",
			opts: known("keep-env"), run: (*fake).exec},
		"guest cmd": {npos: 2, usage: "<vmid> <command>", only: "qm", opts: known(), run: (*fake).guestCmd},
		"guest exec": {npos: 1, usage: "<vmid> [<extra-args>] [OPTIONS]", only: "qm",
			opts: known("pass-stdin", "synchronous", "timeout"), run: (*fake).guestExec},
		"disk import": {npos: 3, usage: "<vmid> <source> <storage> [OPTIONS]", only: "qm",
			opts: known("format", "target-disk"), run: (*fake).diskImport},
	}
}

// checkLock refuses to change a locked guest, as every mutating pct and
// qm command does.
func (f *fake) checkLock(g *guest) error {
	if l := g.Config["lock"]; l != "" {
		return fail("%s is locked (%s)", typOf(g.Kind), l)
	}
	return nil
}

func (f *fake) out(format string, args ...any) {
	fmt.Fprintf(f.stdout, format, args...)
}

func (f *fake) create(c *cmdline) error {
	id, err := parseID(c.pos[0])
	if err != nil {
		return err
	}
	if old, err := f.load(id); err != nil {
		return err
	} else if old != nil {
		return fail("unable to create %s %d - %s %d already exists on node '%s'", f.typ(), id, typOf(old.Kind), id, f.node)
	}
	if f.hang != "" {
		if err := f.save(&guest{ID: id, Kind: f.kind(), Config: map[string]string{"lock": "create"}}); err != nil {
			return err
		}
		f.hangLocked("create")
	}
	g := &guest{ID: id, Kind: f.kind(), Config: map[string]string{}}
	if f.tool == "pct" {
		if len(c.pos) < 2 {
			return fail("400 not enough arguments\npct create <vmid> <ostemplate> [OPTIONS]")
		}
		g.Config["arch"] = "amd64"
		g.Config["ostype"] = ostype(c.pos[1])
		g.Config["hostname"] = fmt.Sprintf("CT%d", id)
		g.Config["memory"] = "512"
		g.Config["swap"] = "512"
		if !c.has("rootfs") {
			storage := c.opts["storage"]
			if storage == "" {
				storage = "local"
			}
			c.opts["rootfs"] = storage + ":4"
			c.order = append(c.order, "rootfs")
		}
	}
	for _, k := range c.order {
		if !f.configKey(k) {
			continue
		}
		v, err := f.normalize(g, k, c.opts[k])
		if err != nil {
			return err
		}
		g.Config[k] = v
	}
	g.Running = c.flag("start")
	if g.Running {
		g.StartedAt = time.Now().UnixNano()
	}
	if err := f.save(g); err != nil {
		return err
	}
	if f.tool == "pct" {
		f.out("extracting archive '%s'\nTotal bytes read: 534763520 (510MiB, 203MiB/s)\nDetected container architecture: amd64\nCreating SSH host key 'ssh_host_ed25519_key' - this may take some time ...\ndone: SHA256:fakepve root@%s\n",
			c.pos[1], g.Config["hostname"])
	}
	return nil
}

func ostype(tmpl string) string {
	for _, os := range []string{"ubuntu", "debian", "alpine", "centos", "fedora", "archlinux", "rockylinux"} {
		if strings.Contains(tmpl, os) {
			return os
		}
	}
	return "unmanaged"
}

func (f *fake) clone(c *cmdline) error {
	src, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	dstID, err := parseID(c.pos[1])
	if err != nil {
		return err
	}
	if err := f.checkLock(src); err != nil {
		return err
	}
	if old, err := f.load(dstID); err != nil {
		return err
	} else if old != nil {
		return fail("unable to create %s %d - %s %d already exists on node '%s'", f.typ(), dstID, typOf(old.Kind), dstID, f.node)
	}
	nameKey := "hostname"
	if f.tool == "qm" {
		nameKey = "name"
	}
	template := src.Config["template"] == "1"
	from := src.Config
	raw := src.Raw
	if snap := c.opts["snapname"]; snap != "" {
		i := slices.IndexFunc(src.Snapshots, func(s snapshot) bool { return s.Name == snap })
		if i < 0 {
			return fail("snapshot '%s' does not exist", snap)
		}
		from, raw = src.Snapshots[i].Config, src.Snapshots[i].Raw
	} else if src.Running && f.tool == "pct" {
		return fail("Cannot do full clones on a running container without snapshots")
	}
	// A container that is not a template can only be copied in full.
	full := c.flag("full") || !template
	if !full && c.has("snapname") && f.tool == "qm" {
		return fail("Linked clone feature for snapshots is not available")
	}
	feature := "linked"
	if full && c.opts["snapname"] != "" {
		feature = "full-from-snapshot"
	}
	if !full || feature == "full-from-snapshot" {
		if err := f.diskFeature(src, from, feature); err != nil {
			return err
		}
	}

	// pct clone locks the source "disk" for the copy, as Proxmox does; a
	// clone started meanwhile from the same source fails on the lock. qm
	// clone holds only a flock on the source (shared when it is stopped),
	// which dies with the process, and writes no lock into its config.
	if f.tool == "pct" {
		src.Config["lock"] = "disk"
		if err := f.save(src); err != nil {
			return err
		}
	}
	// The new guest is locked while it is copied: pct clone says
	// "create", qm clone "clone".
	dstLock := "create"
	if f.tool == "qm" {
		dstLock = "clone"
	}
	dst := &guest{ID: dstID, Kind: src.Kind, Config: map[string]string{"lock": dstLock}}
	if err := f.save(dst); err != nil {
		return err
	}
	f.hangLocked("clone")
	kind := "full"
	if !full {
		kind = "linked"
	}
	for _, k := range slices.Sorted(maps.Keys(from)) {
		if lxcDiskRE.MatchString(k) || (vmDiskRE.MatchString(k) && !strings.Contains(from[k], "media=cdrom")) {
			f.out("create %s clone of %s (%s)\n", kind, k, volumeOf(from[k]))
		}
	}
	if f.cloneHold > 0 {
		f.releaseAll()
		time.Sleep(f.cloneHold)
		if err := f.lockState(); err != nil {
			return err
		}
		if src, err = f.get(c.pos[0]); err != nil {
			return err
		}
		if err := f.lockGuest(dstID); err != nil {
			return err
		}
	}

	dst.Config = maps.Clone(from)
	delete(dst.Config, "template")
	delete(dst.Config, "lock")
	delete(dst.Config, "snaptime")
	dst.Raw = slices.Clone(raw)
	dst.Volumes = map[string]int64{}
	if c.opts[nameKey] != "" {
		dst.Config[nameKey] = c.opts[nameKey]
	} else if f.tool == "qm" {
		dst.Config["name"] = "Copy-of-VM-" + from["name"]
	}
	for k, v := range dst.Config {
		if strings.HasPrefix(k, "net") {
			// A clone gets new MAC addresses.
			p := parseProps(v, false)
			if f.tool == "pct" {
				delete(p.props, "hwaddr")
				dst.Config[k] = p.String("name")
			} else {
				model, _, _ := strings.Cut(p.head, "=")
				p.head = model
				dst.Config[k] = p.String()
			}
			if dst.Config[k], err = f.normalize(dst, k, dst.Config[k]); err != nil {
				return err
			}
		}
	}
	n := 0
	renameVolumes(dst, func(vol string) string {
		storage, name, _ := strings.Cut(vol, ":")
		if strings.HasSuffix(vol, "-cloudinit") {
			return fmt.Sprintf("%s:vm-%d-cloudinit", storage, dstID)
		}
		size := src.Volumes[vol]
		var nv string
		if f.tool == "pct" {
			nv = fmt.Sprintf("%s:subvol-%d-disk-%d", storage, dstID, n)
		} else {
			nv = fmt.Sprintf("%s:vm-%d-disk-%d", storage, dstID, n)
		}
		if !full {
			nv = storage + ":" + name + "/" + strings.TrimPrefix(nv, storage+":")
		}
		n++
		dst.Volumes[vol] = size // renamed by renameVolumes
		return nv
	})
	dst.NextDisk = n
	if f.tool == "pct" {
		delete(src.Config, "lock")
		if err := f.save(src); err != nil {
			return err
		}
	}
	// Proxmox copies the source's firewall file to the clone
	// (clone_vmfw_conf).
	if err := f.copyFirewall(src.ID, dstID); err != nil {
		return err
	}
	return f.save(dst)
}

func (f *fake) set(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	onlyLock := len(c.order) > 0
	for _, k := range c.order {
		if k != "lock" && !(k == "delete" && c.opts[k] == "lock") {
			onlyLock = false
		}
	}
	if !onlyLock && !c.flag("skiplock") {
		if err := f.checkLock(g); err != nil {
			return err
		}
	}
	for _, k := range c.order {
		switch {
		case k == "delete":
			for d := range strings.SplitSeq(c.opts[k], ",") {
				d = strings.TrimSpace(d)
				if !f.configKey(d) {
					return fail("400 Parameter verification failed.\ndelete: invalid format - invalid configuration key '%s'", d)
				}
				if old, ok := g.Config[d]; ok && (lxcDiskRE.MatchString(d) || vmDiskRE.MatchString(d)) && d != "rootfs" {
					if _, ours := g.Volumes[volumeOf(old)]; ours {
						unused(g, volumeOf(old))
					}
				}
				delete(g.Config, d)
			}
		case f.configKey(k):
			if k == "rootfs" || (k == "unprivileged" && f.tool == "pct") {
				// Fixed at creation: the rootfs is resized, not replaced,
				// and the ID mapping is baked into the files.
				return fail("400 Parameter verification failed.\n%s: unable to modify read-only option: '%s'", k, k)
			}
			old := g.Config[k]
			v, err := f.normalize(g, k, c.opts[k])
			if err != nil {
				return err
			}
			if old != "" && (lxcDiskRE.MatchString(k) || vmDiskRE.MatchString(k)) {
				if ov := volumeOf(old); ov != volumeOf(v) {
					if _, ours := g.Volumes[ov]; ours {
						// The old volume is kept, detached, not deleted.
						unused(g, ov)
					}
				}
			}
			g.Config[k] = v
		}
	}
	return f.save(g)
}

func (f *fake) resize(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	if err := f.checkLock(g); err != nil {
		return err
	}
	disk := c.pos[1]
	val, ok := g.Config[disk]
	if !ok || !(lxcDiskRE.MatchString(disk) || vmDiskRE.MatchString(disk)) {
		return fail("unable to parse volume ID '%s' - disk '%s' does not exist", disk, disk)
	}
	m := sizeArgRE.FindStringSubmatch(c.pos[2])
	if m == nil {
		return fail("400 Parameter verification failed.\nsize: value does not match the regex pattern")
	}
	p := parseProps(val, true)
	cur := g.Volumes[p.head]
	if cur == 0 {
		cur, _ = parseSize(p.props["size"])
	}
	want := sizeBytes(m[2], m[3])
	if m[1] == "+" {
		want += cur
	}
	if want < cur {
		return fail("unable to shrink disk size")
	}
	if g.Volumes == nil {
		g.Volumes = map[string]int64{}
	}
	g.Volumes[p.head] = want
	p.props["size"] = formatSize(want)
	g.Config[disk] = p.String()
	if f.tool == "qm" {
		f.out("Image resized.\n")
	}
	return f.save(g)
}

func (f *fake) start(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	for _, r := range g.Raw {
		// lxc-start reads the whole file: a key pve-container refuses
		// stops the start.
		if err := pveschema.CheckLXCKey(r.Key); err != nil {
			return fail("vm %d - %s: %v", g.ID, r.Key, err)
		}
	}
	if !c.flag("skiplock") {
		if err := f.checkLock(g); err != nil {
			return err
		}
	}
	if g.Config["template"] == "1" {
		return fail("you can't start a %s if it's a template", map[string]string{"lxc": "CT", "vm": "vm"}[g.Kind])
	}
	if g.Running {
		return fail("%s %d already running", f.typ(), g.ID)
	}
	g.Running = true
	g.StartedAt = time.Now().UnixNano()
	return f.save(g)
}

func (f *fake) stop(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	if !c.flag("skiplock") {
		if err := f.checkLock(g); err != nil {
			return err
		}
	}
	if !g.Running {
		return fail("%s %d not running", f.typ(), g.ID)
	}
	g.Running = false
	return f.save(g)
}

func (f *fake) destroy(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	if err := f.checkLock(g); err != nil {
		return err
	}
	if g.Running {
		if !c.flag("force") {
			return fail("%s %d is running - destroy failed", f.typ(), g.ID)
		}
		g.Running = false
	}
	if g.Config["template"] == "1" {
		// Linked clones share the template's base volumes.
		all, err := f.all()
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.ID == g.ID {
				continue
			}
			for _, v := range o.Config {
				if strings.Contains(v, fmt.Sprintf("base-%d-", g.ID)) || strings.Contains(v, fmt.Sprintf("basevol-%d-", g.ID)) {
					return fail("base volume '%s' is still in use by linked cloned %s %d", volumeOf(v), typOf(o.Kind), o.ID)
				}
			}
		}
	}
	for _, vol := range slices.Sorted(maps.Keys(g.Volumes)) {
		if f.tool == "qm" {
			f.out("  Logical volume \"%s\" successfully removed.\n", strings.SplitN(vol, ":", 2)[1])
		}
	}
	// Proxmox removes the guest's firewall file with it (remove_vmfw_conf).
	if err := os.Remove(f.firewallPath(g.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return f.remove(g)
}

func (f *fake) snapshot(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	name := c.pos[1]
	if strings.EqualFold(name, "current") || strings.EqualFold(name, "pending") {
		return fail("invalid snapshot name '%s'", name)
	}
	if err := f.checkLock(g); err != nil {
		return err
	}
	if g.Config["template"] == "1" {
		return fail("you can't take a snapshot if it's a template")
	}
	if slices.ContainsFunc(g.Snapshots, func(s snapshot) bool { return s.Name == name }) {
		return fail("snapshot name '%s' already used", name)
	}
	if err := f.diskFeature(g, g.Config, "snapshot"); err != nil {
		return err
	}
	g.Snapshots = append(g.Snapshots, snapshot{Name: name, Time: now(), Config: maps.Clone(g.Config), Raw: slices.Clone(g.Raw)})
	return f.save(g)
}

// listsnapshot prints the snapshot tree as Proxmox does, for a chain.
func (f *fake) listsnapshot(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	indent := ""
	for _, s := range g.Snapshots {
		t := time.Unix(s.Time, 0).Format("2006-01-02 15:04:05")
		f.out("%s`-> %-*s %s     no-description\n", indent, max(30-len(indent), len(s.Name)), s.Name, t)
		indent += "    "
	}
	f.out("%s`-> %-*s %s     You are here!\n", indent, max(30-len(indent), 7), "current", strings.Repeat(" ", 19))
	return nil
}

func (f *fake) template(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	if err := f.checkLock(g); err != nil {
		return err
	}
	if g.Config["template"] == "1" {
		return fail("you can't convert a template to a template")
	}
	if g.Running {
		return fail("you can't convert a %s to template if the %s is running", f.typ(), f.typ())
	}
	if len(g.Snapshots) > 0 {
		return fail("unable to create template, because %s contains snapshots", f.typ())
	}
	g.Config["template"] = "1"
	renameVolumes(g, func(vol string) string {
		switch {
		case strings.HasSuffix(vol, "-cloudinit"):
			return vol
		case f.tool == "pct":
			return strings.Replace(vol, ":subvol-", ":basevol-", 1)
		default:
			return strings.Replace(vol, ":vm-", ":base-", 1)
		}
	})
	return f.save(g)
}

func (f *fake) printConfig(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	lines := mainConfig(g)
	if name := c.opts["snapshot"]; name != "" {
		i := slices.IndexFunc(g.Snapshots, func(s snapshot) bool { return s.Name == name })
		if i < 0 {
			return fail("snapshot '%s' does not exist", name)
		}
		lines = configLines(g.Snapshots[i].Config, g.Snapshots[i].Raw)
	}
	for _, l := range lines {
		f.out("%s\n", l)
	}
	return nil
}

func (f *fake) status(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	f.out("status: %s\n", map[bool]string{true: "running", false: "stopped"}[g.Running])
	return nil
}

func (f *fake) list(c *cmdline) error {
	all, err := f.all()
	if err != nil {
		return err
	}
	if f.tool == "pct" {
		f.out("VMID       Status     Lock         Name                \n")
	} else {
		f.out("      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n")
	}
	for _, g := range all {
		if g.Kind != f.kind() {
			continue
		}
		st := map[bool]string{true: "running", false: "stopped"}[g.Running]
		if f.tool == "pct" {
			f.out("%-10d %-10s %-12s %-20s\n", g.ID, st, g.Config["lock"], g.Config["hostname"])
		} else {
			f.out("%10d %-20s %-10s %-10s %-12s %-10d\n", g.ID, g.Config["name"], st, g.Config["memory"], "0.00", 0)
		}
	}
	return nil
}

func (f *fake) unlock(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	delete(g.Config, "lock")
	return f.save(g)
}

func (f *fake) push(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	if !g.Running {
		return fail("CT %d not running", g.ID)
	}
	data, err := os.ReadFile(c.pos[1])
	if err != nil {
		return fail("failed to open %s for reading", c.pos[1])
	}
	if !strings.HasPrefix(c.pos[2], "/") {
		return fail("destination must be an absolute path")
	}
	if g.Files == nil {
		g.Files = map[string]string{}
	}
	g.Files[c.pos[2]] = string(data)
	return f.save(g)
}

// guestCommand is the command of pct exec / qm guest exec: after "--", or
// the extra positional arguments.
func guestCommand(c *cmdline) []string {
	if c.dash {
		return c.extra
	}
	return c.pos[1:]
}

// failsExec reports whether FAKEPVE_FAIL_EXEC picks this command.
func (f *fake) failsExec(cmd []string) bool {
	return f.failExec != "" && slices.ContainsFunc(cmd, func(a string) bool { return strings.Contains(a, f.failExec) })
}

func failOutput(cmd []string) (stdout, stderr string) {
	return fmt.Sprintf("fakepve: running %q\nstep 1: ok\nstep 2: ok\n", cmd),
		"step 3: failed: simulated by FAKEPVE_FAIL_EXEC\n"
}

func (f *fake) exec(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	cmd := guestCommand(c)
	if len(cmd) == 0 {
		return fail("missing command")
	}
	if !g.Running {
		return fail("CT %d not running", g.ID)
	}
	g.Execs = append(g.Execs, cmd)
	if err := f.save(g); err != nil {
		return err
	}
	if f.failsExec(cmd) {
		out, errOut := failOutput(cmd)
		f.out("%s", out)
		fmt.Fprint(f.stderr, errOut)
		// The command's exit code passes through pct exec.
		return &exitError{code: f.failExecCode}
	}
	return nil
}

func (f *fake) guestExec(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	cmd := guestCommand(c)
	if len(cmd) == 0 {
		return fail("no command specified")
	}
	if err := f.agentReady(g); err != nil {
		return err
	}
	var input []byte
	copyIn := false
	if c.flag("pass-stdin") {
		if input, err = io.ReadAll(io.LimitReader(f.stdin, 1<<20+1)); err != nil {
			return err
		}
		if len(input) > 1<<20 {
			return fail("'input-data' size exceeds the maximum of 1 MiB")
		}
		if dest := stdinDest(cmd); dest != "" {
			if g.Files == nil {
				g.Files = map[string]string{}
			}
			g.Files[dest] = string(input)
			copyIn = true
		}
	}
	g.Execs = append(g.Execs, cmd)
	if err := f.save(g); err != nil {
		return err
	}
	reply := map[string]any{"exited": 1, "exitcode": 0}
	// Copying a file in is not running the script it names.
	if !copyIn && f.failsExec(cmd) {
		out, errOut := failOutput(cmd)
		reply["exitcode"] = f.failExecCode
		reply["out-data"] = out
		reply["err-data"] = errOut
	}
	data, _ := json.MarshalIndent(reply, "", "   ")
	f.out("%s\n", data)
	return nil
}

// stdinDest is the file a command writes its stdin to: install/cp
// /dev/stdin DEST, dd of=DEST, tee DEST.
func stdinDest(cmd []string) string {
	switch cmd[0] {
	case "install", "cp":
		if slices.Contains(cmd, "/dev/stdin") {
			return cmd[len(cmd)-1]
		}
	case "tee":
		return cmd[len(cmd)-1]
	case "dd":
		for _, a := range cmd[1:] {
			if v, ok := strings.CutPrefix(a, "of="); ok {
				return v
			}
		}
	}
	return ""
}

func (f *fake) diskImport(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	if err := f.checkLock(g); err != nil {
		return err
	}
	size, _ := parseSize(f.imageSize)
	vol := fmt.Sprintf("%s:vm-%d-disk-%d", c.pos[2], g.ID, g.NextDisk)
	g.NextDisk++
	if g.Volumes == nil {
		g.Volumes = map[string]int64{}
	}
	g.Volumes[vol] = size
	unused(g, vol)
	key := ""
	for k, v := range g.Config {
		if v == vol {
			key = k
		}
	}
	f.out("importing disk '%s' to VM %d ...\ntransferred %s of %s (100.00%%)\n", c.pos[1], g.ID, formatSize(size), formatSize(size))
	if f.version.atLeast(8, 3) {
		// Since qemu-server 8.3 the import runs through the config API.
		f.out("%s: successfully imported disk '%s'\n", key, vol)
	} else {
		f.out("Successfully imported disk as '%s:%s'\n", key, vol)
	}
	return f.save(g)
}
