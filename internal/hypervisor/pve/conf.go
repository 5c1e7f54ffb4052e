package pve

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// guestConf is a guest's config file as Proxmox keeps it in its cluster
// file system, <pve-etc>/lxc/<id>.conf or <pve-etc>/qemu-server/<id>.conf:
// the current settings, then one [name] section per snapshot. Pending
// changes ([pve:pending], [PENDING]) and cloud-init's [special:cloudinit]
// are read past: they are not the guest's settings yet.
type guestConf struct {
	// Current is the current settings by key. A key given more than once
	// (lxc.mount.entry) has its values joined with "\n"; the description,
	// kept as '#' comment lines, is decoded into "description".
	Current map[string]string
	// Snapshots are the snapshot sections' settings by name.
	Snapshots map[string]map[string]string
}

var (
	// Section headers as pve-guest-common and pve-container read them.
	pendingRE = regexp.MustCompile(`(?i)^\[(?:pve:pending|pending)\]\s*$`)
	specialRE = regexp.MustCompile(`^\[special:[^\]]*\]\s*$`)
	sectionRE = regexp.MustCompile(`(?i)^\[([a-z][a-z0-9_\-]+)\]\s*$`)
	// rawLineRE is a raw LXC key: "lxc.key: value" or "lxc.key = value".
	rawLineRE = regexp.MustCompile(`^(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*$`)
	keyLineRE = regexp.MustCompile(`^([a-z][a-z_\-]*\d*):\s*(.*?)\s*$`)
)

// parseConf reads a config file the way PVE::LXC::Config::parse_pct_config
// and PVE::QemuServer::parse_vm_config do, leniently: a line it cannot
// read is skipped, as Proxmox does outside strict mode.
func parseConf(data []byte) *guestConf {
	c := &guestConf{Current: map[string]string{}, Snapshots: map[string]map[string]string{}}
	cur := c.Current
	var descr []string
	flush := func() {
		if len(descr) > 0 && cur != nil {
			cur["description"] = strings.Join(descr, "\n")
		}
		descr = nil
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			continue
		}
		switch {
		case pendingRE.MatchString(line), specialRE.MatchString(line):
			flush()
			cur = nil // not read
			continue
		case strings.HasPrefix(line, "["):
			flush()
			m := sectionRE.FindStringSubmatch(line)
			if m == nil {
				cur = nil
				continue
			}
			cur = map[string]string{}
			c.Snapshots[m[1]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if d, ok := strings.CutPrefix(line, "#"); ok {
			descr = append(descr, decodeText(d))
			continue
		}
		if m := rawLineRE.FindStringSubmatch(line); m != nil {
			add(cur, m[1], m[2])
			continue
		}
		if m := keyLineRE.FindStringSubmatch(line); m != nil {
			if m[1] == "description" {
				descr = append(descr, decodeText(m[2]))
				continue
			}
			cur[m[1]] = m[2]
		}
	}
	flush()
	return c
}

func add(m map[string]string, k, v string) {
	if old, ok := m[k]; ok {
		v = old + "\n" + v
	}
	m[k] = v
}

// decodeText is PVE::Tools::decode_text: percent-decoding.
func decodeText(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// snapshotOrder lists the snapshots oldest first: the chain of parents of
// the current state, then any other branch by snapshot time.
func (c *guestConf) snapshotOrder() []string {
	var chain []string
	seen := map[string]bool{}
	for p := c.Current["parent"]; p != "" && !seen[p]; p = c.Snapshots[p]["parent"] {
		if _, ok := c.Snapshots[p]; !ok {
			break
		}
		seen[p] = true
		chain = append(chain, p)
	}
	slices.Reverse(chain)
	var rest []string
	for name := range c.Snapshots {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	slices.SortFunc(rest, func(a, b string) int {
		ta, _ := strconv.ParseInt(c.Snapshots[a]["snaptime"], 10, 64)
		tb, _ := strconv.ParseInt(c.Snapshots[b]["snaptime"], 10, 64)
		if ta != tb {
			return int(ta - tb)
		}
		return strings.Compare(a, b)
	})
	return append(chain, rest...)
}
