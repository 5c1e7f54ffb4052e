package pve

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// parseStatus reads `pct status`/`qm status`: "status: running".
func parseStatus(out []byte) (bool, error) {
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "status:"); ok {
			return strings.TrimSpace(v) == "running", nil
		}
	}
	return false, fmt.Errorf("no status line in %q", tail(out))
}

// parseConfig reads `key: value` lines as printed by `pct config` and
// `qm config` (and as stored in the config files). A key given more than
// once (lxc.mount.entry) gets its values joined with "\n". Reading stops at
// the first [section]: the rest are snapshots or pending changes.
func parseConfig(out []byte) map[string]string {
	cfg := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), maxStdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if old, dup := cfg[k]; dup {
			v = old + "\n" + v
		}
		cfg[k] = v
	}
	return cfg
}

// parseSnapshots reads `pct listsnapshot`/`qm listsnapshot`, a tree whose
// lines look like
//
//	`-> pre-configured        2025-01-02 10:00:00     no-description
//	    `-> current                                   You are here!
//
// and returns the names, oldest first (the tree's order for a chain),
// without the "current" pseudo-snapshot.
func parseSnapshots(out []byte) []string {
	var names []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		line = strings.TrimSpace(strings.TrimPrefix(line, "`->"))
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "current" {
			continue
		}
		names = append(names, f[0])
	}
	return names
}

// sizeRE finds a disk's size option: local-zfs:subvol-101-disk-0,size=32G.
var sizeRE = regexp.MustCompile(`(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)`)

// diskGB is the size of a rootfs/scsi0 value in GiB, rounded up; 0 when
// it has none.
func diskGB(vol string) int {
	m := sizeRE.FindStringSubmatch(vol)
	if m == nil {
		return 0
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0
	}
	shift := map[string]float64{"": -30, "K": -20, "M": -10, "G": 0, "T": 10}[m[2]]
	return int(math.Ceil(n * math.Pow(2, shift)))
}
