package pve

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// storageHeaderRE is a storage's first line in storage.cfg: "type: id".
var storageHeaderRE = regexp.MustCompile(`^([a-z][a-z0-9]*):\s*(\S+)\s*$`)

// storageTypes reads <PVEEtc>/storage.cfg: each storage ID's type (dir,
// zfspool, lvmthin, nfs, ...). Without the file, no type is known and
// nothing is refused up front: Proxmox still checks.
func (h *Host) storageTypes() map[string]string {
	data, err := os.ReadFile(filepath.Join(h.opts.PVEEtc, "storage.cfg"))
	if err != nil {
		return map[string]string{}
	}
	return parseStorageCfg(data)
}

func parseStorageCfg(data []byte) map[string]string {
	types := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if m := storageHeaderRE.FindStringSubmatch(sc.Text()); m != nil {
			types[m[2]] = m[1]
		}
	}
	return types
}

// disk is one volume of a guest config.
type disk struct {
	key, storage string
	gib          int
}

// disks lists the volumes of a config (rootfs and mount points, or VM
// disks), without bind mounts, CD-ROMs and cloud-init drives.
func (h *Host) disks(kind api.Kind, cfg map[string]string) []disk {
	var out []disk
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if !isDiskKey(kind, k) {
			continue
		}
		v := cfg[k]
		vol, _, _ := strings.Cut(v, ",")
		storage, _, ok := strings.Cut(vol, ":")
		if !ok || strings.HasPrefix(vol, "/") || strings.Contains(v, "media=cdrom") {
			continue
		}
		out = append(out, disk{key: k, storage: storage, gib: diskGB(v)})
	}
	return out
}
