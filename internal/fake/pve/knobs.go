package pve

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/pveschema"
)

// pveVersion is the Proxmox VE release the fake plays (FAKEPVE_VERSION).
type pveVersion struct{ major, minor int }

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)$`)

func parseVersion(s string) (pveVersion, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return pveVersion{}, fmt.Errorf("%q: want MAJOR.MINOR such as 8.2 or 9.0", s)
	}
	v := pveVersion{}
	v.major, _ = strconv.Atoi(m[1])
	v.minor, _ = strconv.Atoi(m[2])
	if v.major != 8 && v.major != 9 {
		return v, fmt.Errorf("%q: only Proxmox VE 8 and 9 are modelled", s)
	}
	return v, nil
}

// atLeast reports whether the release is major.minor or later.
func (v pveVersion) atLeast(major, minor int) bool {
	return v.major > major || (v.major == major && v.minor >= minor)
}

func (v pveVersion) schema() *pveschema.Schema {
	return pveschema.MustLoad(pveschema.Version(v.major))
}

// Storage types whose features the fake models.
const (
	zfspool = "zfspool"
	lvmthin = "lvmthin"
	dir     = "dir"
	nfs     = "nfs"
)

// defaultStorages are a fresh Proxmox VE install's storages, plus an NFS
// share as many labs have.
var defaultStorages = map[string]string{"local": dir, "local-zfs": zfspool, "local-lvm": lvmthin, "nfs": nfs}

// parseStorages reads FAKEPVE_STORAGE, "id=type,...", on top of the
// defaults.
func parseStorages(s string) (map[string]string, error) {
	m := map[string]string{}
	for k, v := range defaultStorages {
		m[k] = v
	}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		id, typ, ok := strings.Cut(e, "=")
		if !ok || !slices.Contains([]string{zfspool, lvmthin, dir, nfs}, typ) {
			return nil, fmt.Errorf("%q: want STORAGE=zfspool|lvmthin|dir|nfs", e)
		}
		m[id] = typ
	}
	return m, nil
}

// storageType is the type of a volume's storage; a storage the fake was
// not told about is a ZFS pool, what most Proxmox VE hosts keep guests on.
func (c *config) storageType(vol string) (string, string) {
	storage, _, _ := strings.Cut(vol, ":")
	if t, ok := c.storages[storage]; ok {
		return storage, t
	}
	return storage, zfspool
}

// nonConfig are parameters of the create and config endpoints that are
// not settings stored in the guest's config.
var nonConfig = map[string]bool{
	"node": true, "vmid": true, "delete": true, "revert": true, "digest": true, "skiplock": true,
	"force": true, "storage": true, "password": true, "ssh-public-keys": true, "pool": true,
	"start": true, "restore": true, "unique": true, "ignore-unpack-errors": true, "live-restore": true,
	"archive": true, "bwlimit": true, "ostemplate": true, "background_delay": true,
	"import-working-storage": true, "ha-managed": true,
}

// configKey reports whether k is a setting of the tool's guests: a
// parameter of the config endpoint of the release played.
func (f *fake) configKey(k string) bool {
	ep := pveschema.LXCConfig
	if f.tool == "qm" {
		ep = pveschema.VMConfig
	}
	e, err := f.version.schema().Endpoint(ep)
	if err != nil {
		return false
	}
	_, ok := e.Lookup(k)
	return ok && !nonConfig[k]
}

// endpointOpts are the options a verb takes: its endpoint's parameters
// (less those given as arguments) and its CLI-only options.
func (f *fake) endpointOpts(ep string, cliOnly []string) func(string) bool {
	e, err := f.version.schema().Endpoint(ep)
	return func(k string) bool {
		if slices.Contains(cliOnly, k) {
			return true
		}
		if err != nil || k == "node" || k == "vmid" {
			return false
		}
		_, ok := e.Lookup(k)
		return ok
	}
}

// checkSchema verifies a verb's options and named arguments against its
// endpoint, as Proxmox's parameter verification does before anything
// runs.
func (f *fake) checkSchema(ep string, c *cmdline, posNames []string, cliOnly []string) error {
	e, err := f.version.schema().Endpoint(ep)
	if err != nil {
		return err
	}
	params := map[string]string{}
	for k, v := range c.opts {
		if !slices.Contains(cliOnly, k) {
			params[k] = v
		}
	}
	for i, name := range posNames {
		if name != "" && i < len(c.pos) {
			params[name] = c.pos[i]
		}
	}
	return e.Check(params)
}

// exit0Failure is FAKEPVE_EXIT0_FAIL: a verb whose task fails while the
// tool exits 0, as pct push, pct resize, qm resize and qm template do.
// Nothing changes; the message goes to stderr.
func (f *fake) exit0Failure(sub string, args []string) (string, bool) {
	entry, count, ok := matches(f.exit0Fail, f.tool, sub)
	if !ok {
		return "", false
	}
	if !f.countFault("exit0:"+entry, count) {
		return "", false
	}
	id := ""
	if len(args) > 0 {
		id = args[0]
	}
	switch sub {
	case "resize":
		return fmt.Sprintf("Resizing image: command 'zfs set volsize=1T rpool/data/vm-%s-disk-0' failed: exit code 1\nTASK ERROR: fakepve: resize failed (FAKEPVE_EXIT0_FAIL)", id), true
	case "push":
		return "fakepve: error writing file: No space left on device (FAKEPVE_EXIT0_FAIL)", true
	case "template":
		return fmt.Sprintf("command 'zfs snapshot rpool/data/vm-%s-disk-0@__base__' failed: exit code 1 (FAKEPVE_EXIT0_FAIL)", id), true
	}
	return fmt.Sprintf("fakepve: '%s %s' failed (FAKEPVE_EXIT0_FAIL)", f.tool, sub), true
}

// countFault counts one firing of an injected fault in the state folder
// and reports whether it fires: always for count 0, else count times.
func (f *fake) countFault(entry string, count int) bool {
	path := filepath.Join(f.state, "faults.json")
	fired := map[string]int{}
	if data, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(data, &fired) != nil {
			fired = map[string]int{}
		}
	}
	if count > 0 && fired[entry] >= count {
		return false
	}
	fired[entry]++
	data, _ := json.Marshal(fired)
	return writeFile(path, data) == nil
}

// agentReady fails as qm does while the VM's guest agent does not answer:
// not configured, VM stopped, or started less than FAKEPVE_AGENT_DELAY ago.
func (f *fake) agentReady(g *guest) error {
	if agent := parseProps(g.Config["agent"], false); agent.head != "1" && agent.props["enabled"] != "1" {
		return fail("No QEMU guest agent configured")
	}
	if !g.Running {
		return fail("VM %d is not running", g.ID)
	}
	if time.Since(time.Unix(0, g.StartedAt)) < f.agentDelay {
		return fail("QEMU guest agent is not running")
	}
	return nil
}

// guestCmd is `qm guest cmd <vmid> <command>`; only ping is modelled.
func (f *fake) guestCmd(c *cmdline) error {
	g, err := f.get(c.pos[0])
	if err != nil {
		return err
	}
	if c.pos[1] != "ping" {
		return fail("400 Parameter verification failed.\ncommand: value '%s' is not modelled by fakepve", c.pos[1])
	}
	return f.agentReady(g)
}

// diskFeature checks that every disk of a guest supports what a snapshot
// or clone needs on its storage type, with Proxmox's refusal when not.
func (f *fake) diskFeature(g *guest, cfg map[string]string, feature string) error {
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if !isDisk(g.Kind, k) || strings.Contains(cfg[k], "media=cdrom") {
			continue
		}
		vol := volumeOf(cfg[k])
		if !strings.Contains(vol, ":") {
			continue // a bind mount
		}
		storage, typ := f.storageType(vol)
		ok := true
		switch feature {
		case "snapshot":
			// Containers on a folder or NFS share are raw or subvol: no
			// snapshots. VMs there are qcow2, which has them.
			ok = typ == zfspool || typ == lvmthin || g.Kind == "vm"
		case "linked":
			ok = typ == zfspool || typ == lvmthin || g.Kind == "vm"
		case "full-from-snapshot":
			// A container's copy is made by mounting the snapshot, which
			// works wherever it could be taken; a VM's disk is copied by
			// the storage, and ZFS cannot copy from a snapshot.
			ok = g.Kind == "lxc" || typ != zfspool
		}
		if !ok {
			switch feature {
			case "snapshot":
				return fail("snapshot feature is not available")
			case "linked":
				return fail("Linked clone feature is not available for drive '%s' (storage '%s', %s)", k, storage, typ)
			default:
				return fail("Full clone feature is not available for drive '%s' from a snapshot (storage '%s', %s)", k, storage, typ)
			}
		}
	}
	return nil
}

func isDisk(kind, k string) bool {
	if kind == "lxc" {
		return lxcDiskRE.MatchString(k)
	}
	return vmDiskRE.MatchString(k)
}

// writeStorageCfg writes <pve-etc>/storage.cfg as Proxmox lays it out, so
// that readers of the file see the storages the fake plays.
func (c *config) writeStorageCfg() error {
	var b strings.Builder
	for i, id := range slices.Sorted(maps.Keys(c.storages)) {
		if i > 0 {
			b.WriteString("\n")
		}
		typ := c.storages[id]
		fmt.Fprintf(&b, "%s: %s\n", typ, id)
		switch typ {
		case dir:
			fmt.Fprintf(&b, "\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup,rootdir,images\n")
		case zfspool:
			fmt.Fprintf(&b, "\tpool rpool/data\n\tcontent images,rootdir\n\tsparse 1\n")
		case lvmthin:
			fmt.Fprintf(&b, "\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n")
		case nfs:
			fmt.Fprintf(&b, "\tpath /mnt/pve/%s\n\tserver 192.0.2.10\n\texport /export/pve\n\tcontent images,rootdir\n", id)
		}
	}
	path := filepath.Join(c.pveEtc, "storage.cfg")
	if old, err := os.ReadFile(path); err == nil && string(old) == b.String() {
		return nil
	}
	return writeFile(path, []byte(b.String()))
}
