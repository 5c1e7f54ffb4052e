package pve

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// parseStatus reads `pct status`/`qm status`: "status: running" (or
// stopped, paused, prelaunch, ...).
func parseStatus(out []byte) (string, error) {
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "status:"); ok {
			if v = strings.TrimSpace(v); v != "" {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("no status line in %q", guest.Tail(out))
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
