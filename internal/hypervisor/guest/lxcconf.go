package guest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// rawKeyRE is a raw LXC key phoenix writes into a container's config.
var rawKeyRE = regexp.MustCompile(`^lxc\.[A-Za-z0-9_.-]+$`)

// EditRaw sets raw lxc.* keys in the current-config part of a container's
// config file (/etc/pve/lxc/<id>.conf, before the first [section]): pct
// set and the API refuse these keys, and editing the file is what the
// Proxmox docs tell administrators to do. Each key's old lines go; its
// new lines (one per non-empty line of the value) take the place of the
// first old one, or are added at the end of the current config. An empty
// value removes the key. Other lines, and the snapshot sections, stay as
// they are. No value can start a line of its own, so none can add
// another key or a section.
func EditRaw(data []byte, values map[string]string) ([]byte, error) {
	for k := range values {
		if !rawKeyRE.MatchString(k) {
			return nil, fmt.Errorf("raw LXC key %q: want lxc. followed by letters, digits, '.', '_' or '-'", k)
		}
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	end := len(lines) // end of the current config
	for i, l := range lines {
		if strings.HasPrefix(l, "[") {
			end = i
			break
		}
	}
	// Added lines go before the blank line(s) that part the sections.
	insert := end
	for insert > 0 && strings.TrimSpace(lines[insert-1]) == "" {
		insert--
	}
	main, rest := lines[:insert], lines[insert:]
	if len(main) > 0 && !strings.HasSuffix(main[len(main)-1], "\n") {
		main[len(main)-1] += "\n"
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		var newLines []string
		for v := range strings.SplitSeq(strings.ReplaceAll(values[k], "\r", ""), "\n") {
			if v = strings.TrimSpace(v); v != "" {
				newLines = append(newLines, k+": "+v+"\n")
			}
		}
		var kept []string
		at := -1
		for _, l := range main {
			if key, _, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(key) == k {
				if at < 0 {
					at = len(kept)
				}
				continue
			}
			kept = append(kept, l)
		}
		if at < 0 {
			at = len(kept)
		}
		main = slices.Concat(kept[:at], newLines, kept[at:])
	}
	return []byte(strings.Join(slices.Concat(main, rest), "")), nil
}

// ConfLock is the lock a container config file records in its current
// config ("backup", "clone", ...), or "": pct set refuses a locked
// container, and so does the raw-key editor.
func ConfLock(data []byte) string {
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "[") {
			break
		}
		if v, ok := strings.CutPrefix(line, "lock:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
