package pve

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Disk keys: the ones holding a volume.
var (
	lxcDiskRE = regexp.MustCompile(`^(rootfs|mp\d+)$`)
	vmDiskRE  = regexp.MustCompile(`^(scsi|virtio|sata|ide)\d+$`)
	// newDiskRE is a disk to allocate: "local-zfs:8" (8 GiB), followed by
	// the disk's options.
	newDiskRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.-]*):(\d+(?:\.\d+)?)$`)
	sizeArgRE = regexp.MustCompile(`^(\+)?(\d+(?:\.\d+)?)([KMGT])?$`)
)

// parseSize reads 32G, 512M, 1.5T or a number of bytes.
func parseSize(s string) (int64, error) {
	m := sizeArgRE.FindStringSubmatch(s)
	if m == nil || m[1] != "" {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return sizeBytes(m[2], m[3]), nil
}

func sizeBytes(num, unit string) int64 {
	n, _ := strconv.ParseFloat(num, 64)
	shift := map[string]float64{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[unit]
	return int64(math.Round(n * math.Pow(2, shift)))
}

// formatSize prints a size as Proxmox does in configs: the largest unit
// that divides it.
func formatSize(b int64) string {
	for _, u := range []struct {
		s     string
		shift uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if b%(1<<u.shift) == 0 {
			return strconv.FormatInt(b>>u.shift, 10) + u.s
		}
	}
	return strconv.FormatInt(b, 10)
}

// propString is a Proxmox property string, "default,key=value,...".
type propString struct {
	head  string // the first item when it has no key (a volume, a NIC model)
	props map[string]string
}

func parseProps(s string, headless bool) propString {
	p := propString{props: map[string]string{}}
	for i, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		if i == 0 && (!ok || headless) {
			p.head = item
			continue
		}
		p.props[k] = v
	}
	return p
}

// String prints the properties sorted after the head, as Proxmox prints
// property strings; lead keys come right after the head.
func (p propString) String(lead ...string) string {
	var parts []string
	if p.head != "" {
		parts = append(parts, p.head)
	}
	for _, k := range lead {
		if v, ok := p.props[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.props)) {
		if !slices.Contains(lead, k) {
			parts = append(parts, k+"="+p.props[k])
		}
	}
	return strings.Join(parts, ",")
}

// mac is a stable MAC address for a guest's NIC, in Proxmox's BC:24:11 range.
func mac(id int, key string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d/%s", id, key)
	s := h.Sum32()
	return fmt.Sprintf("BC:24:11:%02X:%02X:%02X", byte(s>>16), byte(s>>8), byte(s))
}

var vmModels = []string{"virtio", "e1000", "e1000e", "rtl8139", "vmxnet3"}

// normalize turns a value given to create or set into what Proxmox stores:
// new disks allocated, NICs completed and printed in canonical order.
func (f *fake) normalize(g *guest, key, value string) (string, error) {
	switch {
	case g.Kind == "lxc" && strings.HasPrefix(key, "net"):
		p := parseProps(value, false)
		if p.head != "" {
			return "", fail("400 Parameter verification failed.\n%s: invalid format - format error", key)
		}
		if p.props["type"] == "" {
			p.props["type"] = "veth"
		}
		if p.props["hwaddr"] == "" {
			p.props["hwaddr"] = mac(g.ID, key)
		}
		return p.String("name"), nil
	case g.Kind == "vm" && strings.HasPrefix(key, "net"):
		p := parseProps(value, false)
		model, addr, _ := strings.Cut(p.head, "=")
		for _, m := range vmModels {
			if v, ok := p.props[m]; ok {
				model, addr = m, v
				delete(p.props, m)
			}
		}
		if model == "" {
			model = p.props["model"]
			addr = p.props["macaddr"]
			delete(p.props, "model")
			delete(p.props, "macaddr")
		}
		if !slices.Contains(vmModels, model) {
			return "", fail("400 Parameter verification failed.\n%s: invalid format - missing or unknown NIC model", key)
		}
		if addr == "" {
			addr = mac(g.ID, key)
		}
		p.head = model + "=" + addr
		return p.String(), nil
	case g.Kind == "lxc" && lxcDiskRE.MatchString(key), g.Kind == "vm" && vmDiskRE.MatchString(key):
		return f.disk(g, key, value)
	}
	return value, nil
}

// disk allocates "pool:SIZE" as a new volume, and gives a known volume
// attached by name its size.
func (f *fake) disk(g *guest, key, value string) (string, error) {
	p := parseProps(value, true)
	if g.Kind == "vm" && strings.HasSuffix(p.head, ":cloudinit") {
		p.head = strings.TrimSuffix(p.head, "cloudinit") + fmt.Sprintf("vm-%d-cloudinit", g.ID)
		p.props["media"] = "cdrom"
		return p.String(), nil
	}
	if m := newDiskRE.FindStringSubmatch(p.head); m != nil {
		size := sizeBytes(m[2], "G")
		var vol string
		if g.Kind == "lxc" {
			vol = fmt.Sprintf("%s:subvol-%d-disk-%d", m[1], g.ID, g.NextDisk)
		} else {
			vol = fmt.Sprintf("%s:vm-%d-disk-%d", m[1], g.ID, g.NextDisk)
		}
		g.NextDisk++
		if g.Volumes == nil {
			g.Volumes = map[string]int64{}
		}
		g.Volumes[vol] = size
		p.head = vol
		p.props["size"] = formatSize(size)
		if key == "rootfs" || !lxcDiskRE.MatchString(key) || p.props["mp"] != "" {
			return p.String(), nil
		}
		return "", fail("400 Parameter verification failed.\n%s: invalid format - missing property 'mp'", key)
	}
	if size, ok := g.Volumes[p.head]; ok {
		p.props["size"] = formatSize(size)
		// Attaching an unused volume takes it off the unused list.
		for k, v := range g.Config {
			if strings.HasPrefix(k, "unused") && v == p.head {
				delete(g.Config, k)
			}
		}
	}
	return p.String(), nil
}

// unused lists a volume that a config change detached, as Proxmox does
// instead of deleting it.
func unused(g *guest, vol string) {
	for i := 0; ; i++ {
		k := "unused" + strconv.Itoa(i)
		if _, taken := g.Config[k]; !taken {
			g.Config[k] = vol
			return
		}
	}
}

// volumeOf is the volume of a disk value.
func volumeOf(value string) string {
	return parseProps(value, true).head
}

// renameVolumes rewrites the guest's disk volumes with fn (template
// conversion, clones).
func renameVolumes(g *guest, fn func(vol string) string) {
	for _, k := range slices.Sorted(maps.Keys(g.Config)) {
		if v := g.Config[k]; lxcDiskRE.MatchString(k) || vmDiskRE.MatchString(k) {
			p := parseProps(v, true)
			if p.props["media"] == "cdrom" && !strings.HasSuffix(p.head, "-cloudinit") {
				continue
			}
			old := p.head
			p.head = fn(old)
			if size, ok := g.Volumes[old]; ok {
				delete(g.Volumes, old)
				g.Volumes[p.head] = size
			}
			g.Config[k] = p.String()
		}
	}
}
