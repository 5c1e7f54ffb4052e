package reconcilers

import (
	"math"
	"strconv"
	"strings"
)

// sameValue reports whether a config value on the host already says what
// phoenix wants. Proxmox rewrites some values when it stores them (net0
// gains type=veth and sorts its options, a mount point's pool:size becomes
// a volume name with size=NG), so comparing strings would re-set them on
// every run, and re-setting a mount point allocates a new disk.
func sameValue(key, have, want string) bool {
	if have == want {
		return true
	}
	if have == "" {
		return false
	}
	if isMountPoint(key) {
		return sameMountPoint(have, want)
	}
	if !strings.Contains(want, "=") {
		// Host names are case-insensitive; other plain values are not.
		return (key == "hostname" || key == "name") && strings.EqualFold(have, want)
	}
	// Option lists: every option phoenix asks for is there with its value;
	// options Proxmox adds on its own are left alone.
	haveOpts := options(have)
	for _, o := range strings.Split(want, ",") {
		k, v, _ := strings.Cut(o, "=")
		hv, ok := haveOpts[k]
		if !ok || !strings.EqualFold(hv, v) {
			return false
		}
	}
	return true
}

func options(s string) map[string]string {
	m := map[string]string{}
	for _, o := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(o, "=")
		m[k] = v
	}
	return m
}

func isMountPoint(key string) bool {
	n, ok := strings.CutPrefix(key, "mp")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// sameMountPoint compares "pool:size,mp=/path" with what Proxmox stores,
// "pool:subvol-101-disk-1,size=8G,mp=/path": same pool, same path, at
// least the size asked for.
func sameMountPoint(have, want string) bool {
	wantVol, wantOpts, _ := strings.Cut(want, ",")
	haveVol, haveOpts, _ := strings.Cut(have, ",")
	wantPool, wantSize, _ := strings.Cut(wantVol, ":")
	havePool, haveName, _ := strings.Cut(haveVol, ":")
	if wantPool != havePool {
		return false
	}
	ho := options(haveOpts)
	for k, v := range options(wantOpts) {
		if ho[k] != v {
			return false
		}
	}
	wantGB, err := strconv.Atoi(wantSize)
	if err != nil {
		return haveName == wantSize
	}
	size := ho["size"]
	if size == "" && haveName == wantSize {
		return true // the sim keeps the value as given
	}
	gb, ok := sizeGiB(size)
	return ok && gb >= wantGB
}

// sizeGiB reads a size as Proxmox prints it in a config, in whatever unit
// it chose (1024G is shown as 1T, 3.5G as 3584M): whole GiB, rounded up.
func sizeGiB(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	shift := map[byte]float64{'K': 1.0 / (1 << 20), 'M': 1.0 / 1024, 'G': 1, 'T': 1024}
	mult, ok := shift[s[len(s)-1]]
	num := s
	if ok {
		num = s[:len(s)-1]
	} else {
		mult = 1.0 / (1 << 30) // bytes
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, false
	}
	return int(math.Ceil(f * mult)), true
}
