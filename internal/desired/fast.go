package desired

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// fastSpec decodes one guest object into spec, checking on the way what the
// guest schemas check, in one pass over the bytes. It is the fast path of
// loading: at 10,000 guests the schema library's generic decode and check
// plus encoding/json's reflection were three quarters of the cost of every
// verb.
//
// It is strict rather than complete: ok true promises that the schema check
// finds nothing and that json.Unmarshal gives the same Spec; ok false only
// means "not sure" (an unusual type, an escape in a key, a null, a
// duplicate key, a number with a fraction, ...), and the caller then runs
// the schema check and json.Unmarshal, which give the exact problems. raw
// must be valid JSON (the file it came from passed json.Valid).
// fast_test.go checks the promise against the slow path.
func fastSpec(raw []byte, spec *api.Spec) (ok bool) {
	d := fastDec{b: raw}
	var seen uint64
	ok = d.object(func(key string, v []byte) bool {
		f, known := specFields[key]
		if !known {
			return unknownKeyOK(key, specFold)
		}
		if seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		return decodeSpecField(f, v, spec)
	})
	return ok
}

// The guest fields the schemas know, by bit in fastSpec's seen mask.
const (
	fName = iota
	fNode
	fMemoryMB
	fCores
	fSwapMB
	fStoragePool
	fStorageSizeGB
	fDiskSizeGB
	fNetworkConfig
	fNetworkBridge
	fMACAddress
	fGPUAssignment
	fUnprivileged
	fApparmorProfile
	fTemplate
	fTemplateImage
	fIsTemplate
	fTemplateSnapshotName
	fCloneFromCTID
	fCloneFromVMID
	fDependencies
	fFeatures
	fApplicationScript
	fPctOptions
	fLXCOptions
	fStartAtBoot
	fBootOrder
	fBootDelay
	fEnableLifecycleSnapshots
	fZFSVolumes
	fVolumes
	fHealthCheck
	fAnnotations
	fUserConfig
	fFirewall
	fMountPoints
	fIDMaps
	fPortainerRole
	fBootstrapCAURL
)

var specFields = map[string]uint{
	"name": fName, "node": fNode, "memory_mb": fMemoryMB, "cores": fCores, "swap_mb": fSwapMB,
	"storage_pool": fStoragePool, "storage_size_gb": fStorageSizeGB, "disk_size_gb": fDiskSizeGB,
	"network_config": fNetworkConfig, "network_bridge": fNetworkBridge, "mac_address": fMACAddress,
	"gpu_assignment": fGPUAssignment, "unprivileged": fUnprivileged, "apparmor_profile": fApparmorProfile,
	"template": fTemplate, "template_image": fTemplateImage, "is_template": fIsTemplate,
	"template_snapshot_name": fTemplateSnapshotName, "clone_from_ctid": fCloneFromCTID,
	"clone_from_vmid": fCloneFromVMID, "dependencies": fDependencies, "features": fFeatures,
	"application_script": fApplicationScript, "pct_options": fPctOptions, "lxc_options": fLXCOptions,
	"start_at_boot": fStartAtBoot, "boot_order": fBootOrder, "boot_delay": fBootDelay,
	"enable_lifecycle_snapshots": fEnableLifecycleSnapshots, "zfs_volumes": fZFSVolumes,
	"volumes": fVolumes, "health_check": fHealthCheck, "annotations": fAnnotations,
	"user_config": fUserConfig, "firewall": fFirewall, "mount_points": fMountPoints, "id_maps": fIDMaps,
	"portainer_role": fPortainerRole, "bootstrap_ca_url": fBootstrapCAURL,
}

// Lower-cased names encoding/json would match case-insensitively, per
// object type: a key that folds to one of them but is not it exactly is
// left to the slow path.
var (
	specFold   = foldSet(specFields)
	netFold    = map[string]bool{"name": true, "bridge": true, "ip": true, "gw": true, "nameservers": true, "nameserver": true}
	volumeFold = map[string]bool{"type": true, "name": true, "pool": true, "size_gb": true, "mount_point": true, "server": true, "path": true}
	healthFold = map[string]bool{"command": true, "retries": true, "interval": true}
)

func foldSet(m map[string]uint) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// unknownKeyOK reports whether an unknown key is surely ignored by
// json.Unmarshal: ASCII (encoding/json folds some non-ASCII letters onto
// ASCII ones) and not a case variant of a known field.
func unknownKeyOK(key string, fold map[string]bool) bool {
	lower := false
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 0x80 {
			return false
		}
		if c >= 'A' && c <= 'Z' {
			lower = true
		}
	}
	if !lower {
		return !fold[key]
	}
	b := []byte(key)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return !fold[string(b)]
}

func decodeSpecField(f uint, v []byte, s *api.Spec) bool {
	var ok bool
	switch f {
	case fName:
		s.Name, ok = jsonString(v)
		ok = ok && s.Name != ""
	case fNode:
		s.Node, ok = jsonString(v)
	case fMemoryMB:
		s.MemoryMB, ok = jsonInt(v, 1)
	case fCores:
		s.Cores, ok = jsonInt(v, 1)
	case fSwapMB:
		s.SwapMB, ok = jsonInt(v, 0)
	case fStoragePool:
		s.StoragePool, ok = jsonString(v)
	case fStorageSizeGB:
		s.StorageSizeGB, ok = jsonInt(v, 1)
	case fDiskSizeGB:
		s.DiskSizeGB, ok = jsonInt(v, 1)
	case fNetworkConfig:
		s.NetworkConfig = &api.NetworkConfig{}
		ok = decodeNetwork(v, s.NetworkConfig)
	case fNetworkBridge:
		s.NetworkBridge, ok = jsonString(v)
	case fMACAddress:
		s.MACAddress, ok = jsonString(v)
	case fGPUAssignment:
		s.GPUAssignment, ok = jsonString(v)
	case fUnprivileged:
		s.Unprivileged, ok = jsonBoolPtr(v)
	case fApparmorProfile:
		s.ApparmorProfile, ok = jsonString(v)
	case fTemplate:
		s.Template, ok = jsonString(v)
	case fTemplateImage:
		s.TemplateImage, ok = jsonString(v)
	case fIsTemplate:
		s.IsTemplate, ok = jsonBool(v)
	case fTemplateSnapshotName:
		s.TemplateSnapshotName, ok = jsonString(v)
		ok = ok && snapshotNameOK(s.TemplateSnapshotName)
	case fCloneFromCTID:
		s.CloneFromCTID, ok = jsonRefPtr(v)
	case fCloneFromVMID:
		s.CloneFromVMID, ok = jsonRefPtr(v)
	case fDependencies:
		s.Dependencies, ok = jsonRefs(v)
	case fFeatures:
		s.Features, ok = jsonStrings(v)
	case fApplicationScript:
		s.ApplicationScript, ok = jsonString(v)
	case fPctOptions:
		s.PctOptions, ok = jsonStrings(v)
	case fLXCOptions:
		s.LXCOptions, ok = jsonStrings(v)
	case fStartAtBoot:
		s.StartAtBoot, ok = jsonBoolPtr(v)
	case fBootOrder:
		var n int
		n, ok = jsonInt(v, 0)
		s.BootOrder = &n
	case fBootDelay:
		s.BootDelay, ok = jsonInt(v, 0)
	case fEnableLifecycleSnapshots:
		s.EnableLifecycleSnapshots, ok = jsonBool(v)
	case fZFSVolumes:
		s.ZFSVolumes, ok = jsonVolumes(v)
	case fVolumes:
		s.Volumes, ok = jsonVolumes(v)
	case fHealthCheck:
		s.HealthCheck = &api.HealthCheck{}
		ok = decodeHealth(v, s.HealthCheck)
	case fAnnotations:
		s.Annotations, ok = jsonStringMap(v)
	case fUserConfig:
		if len(v) == 0 || v[0] != '{' {
			return false
		}
		// Rare and free-form: encoding/json, so the values are exactly its.
		ok = json.Unmarshal(v, &s.UserConfig) == nil
	case fFirewall:
		s.Firewall = &api.Firewall{}
		ok = len(v) > 0 && v[0] == '{' && noNull(v) && json.Unmarshal(v, s.Firewall) == nil
	case fMountPoints:
		// Rare: encoding/json, after making sure it cannot skip a null the
		// schema refuses; the minimums are checked after.
		ok = len(v) > 0 && v[0] == '[' && noNull(v) && json.Unmarshal(v, &s.MountPoints) == nil
		for _, m := range s.MountPoints {
			ok = ok && (m.OwnerUID == nil || *m.OwnerUID >= 0) && (m.OwnerGID == nil || *m.OwnerGID >= 0)
		}
	case fIDMaps:
		ok = len(v) > 0 && v[0] == '[' && noNull(v) && json.Unmarshal(v, &s.IDMaps) == nil
		for _, m := range s.IDMaps {
			ok = ok && m.ContainerID >= 0 && m.HostID >= 0 && m.Size >= 0
		}
	case fPortainerRole:
		s.PortainerRole, ok = jsonString(v)
	case fBootstrapCAURL:
		s.BootstrapCAURL, ok = jsonString(v)
	}
	return ok
}

func decodeNetwork(v []byte, n *api.NetworkConfig) bool {
	var seen uint8
	d := fastDec{b: v}
	return d.object(func(key string, v []byte) bool {
		var bit uint8
		var ok bool
		switch key {
		case "name":
			bit = 1
			n.Name, ok = jsonString(v)
		case "bridge":
			bit = 2
			n.Bridge, ok = jsonString(v)
		case "ip":
			bit = 4
			n.IP, ok = jsonString(v)
		case "gw":
			bit = 8
			n.GW, ok = jsonString(v)
		case "nameservers":
			bit = 16
			n.Nameservers, ok = jsonNameservers(v)
		case "nameserver":
			bit = 32
			n.Nameserver, ok = jsonNameservers(v)
		default:
			return unknownKeyOK(key, netFold)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}

func decodeHealth(v []byte, h *api.HealthCheck) bool {
	var seen uint8
	d := fastDec{b: v}
	return d.object(func(key string, v []byte) bool {
		var bit uint8
		var ok bool
		switch key {
		case "command":
			bit = 1
			h.Command, ok = jsonString(v)
		case "retries":
			bit = 2
			h.Retries, ok = jsonInt(v, 0)
		case "interval":
			bit = 4
			h.Interval, ok = jsonInt(v, 0)
		default:
			return unknownKeyOK(key, healthFold)
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}

func jsonVolumes(v []byte) ([]api.Volume, bool) {
	out := []api.Volume{}
	d := fastDec{b: v}
	ok := d.array(func(v []byte) bool {
		var vol api.Volume
		var seen uint8
		vd := fastDec{b: v}
		ok := vd.object(func(key string, v []byte) bool {
			var bit uint8
			var ok bool
			switch key {
			case "type":
				bit = 16
				vol.Type, ok = jsonString(v)
			case "server":
				bit = 32
				vol.Server, ok = jsonString(v)
			case "path":
				bit = 64
				vol.Path, ok = jsonString(v)
			case "name":
				bit = 1
				vol.Name, ok = jsonString(v)
			case "pool":
				bit = 2
				vol.Pool, ok = jsonString(v)
			case "size_gb":
				bit = 4
				vol.SizeGB, ok = jsonInt(v, 1)
			case "mount_point":
				bit = 8
				vol.MountPoint, ok = jsonString(v)
			default:
				return unknownKeyOK(key, volumeFold)
			}
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			return ok
		})
		out = append(out, vol)
		return ok
	})
	return out, ok
}

// jsonNameservers decodes what api.Nameservers accepts: a string of
// addresses or an array of strings.
func jsonNameservers(v []byte) (api.Nameservers, bool) {
	if len(v) > 0 && v[0] == '"' {
		str, ok := jsonString(v)
		return api.SplitNameservers(str), ok
	}
	list, ok := jsonStrings(v)
	return api.Nameservers(list), ok
}

// noNull reports whether a valid JSON value holds no null: outside strings
// the letter n only starts one.
func noNull(v []byte) bool {
	inString, escaped := false, false
	for _, c := range v {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == 'n':
			return false
		}
	}
	return true
}

func jsonStringMap(v []byte) (map[string]string, bool) {
	out := map[string]string{}
	d := fastDec{b: v}
	ok := d.object(func(key string, v []byte) bool {
		if _, dup := out[key]; dup || !utf8.ValidString(key) {
			return false
		}
		s, ok := jsonString(v)
		out[key] = s
		return ok
	})
	return out, ok
}

// jsonString decodes a string without escapes; anything else is left to
// the slow path.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	body := v[1 : len(v)-1]
	high := false
	for _, c := range body {
		switch {
		case c == '\\':
			var s string
			if json.Unmarshal(v, &s) != nil {
				return "", false
			}
			return s, true
		case c >= 0x80:
			high = true
		}
	}
	// encoding/json turns invalid UTF-8 into U+FFFD (Load refuses such
	// files before, but the promise holds on its own).
	if high && !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// jsonInt decodes a plain integer (no fraction or exponent, which the schema
// accepts as integers and encoding/json does not) of at least min.
func jsonInt(v []byte, min int) (int, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < min {
		return 0, false
	}
	return n, true
}

func jsonBool(v []byte) (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func jsonBoolPtr(v []byte) (*bool, bool) {
	b, ok := jsonBool(v)
	if !ok {
		return nil, false
	}
	return &b, true
}

func allDigits(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// jsonRef decodes an id_ref: a string of digits or a non-negative integer.
func jsonRef(v []byte) (api.Ref, bool) {
	if len(v) > 1 && v[0] == '"' {
		body := v[1 : len(v)-1]
		if !allDigits(body) {
			return api.Ref{}, false
		}
		s := string(body)
		id, _ := api.ParseID(s)
		return api.Ref{Raw: s, ID: id}, true
	}
	if !allDigits(v) {
		return api.Ref{}, false
	}
	s := string(v)
	id, _ := api.ParseID(s)
	return api.Ref{Raw: s, ID: id}, true
}

func jsonRefPtr(v []byte) (*api.Ref, bool) {
	r, ok := jsonRef(v)
	if !ok {
		return nil, false
	}
	return &r, true
}

func jsonRefs(v []byte) ([]api.Ref, bool) {
	out := []api.Ref{}
	d := fastDec{b: v}
	ok := d.array(func(v []byte) bool {
		r, ok := jsonRef(v)
		out = append(out, r)
		return ok
	})
	return out, ok
}

func jsonStrings(v []byte) ([]string, bool) {
	out := []string{}
	d := fastDec{b: v}
	ok := d.array(func(v []byte) bool {
		s, ok := jsonString(v)
		out = append(out, s)
		return ok
	})
	return out, ok
}

// snapshotNameOK matches ^[a-zA-Z][a-zA-Z0-9_-]{0,39}$.
func snapshotNameOK(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// fastDec walks one valid JSON value.
type fastDec struct{ b []byte }

// object calls fn for each member of an object, stopping at the first
// false; a value that is not an object, or a key with an escape, is false.
func (d *fastDec) object(fn func(key string, v []byte) bool) bool {
	b := d.b
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != '}' {
		kEnd := skipString(b, i)
		key := b[i+1 : kEnd-1]
		for _, c := range key {
			if c == '\\' {
				return false
			}
		}
		i = skipSpace(b, kEnd)
		i = skipSpace(b, i+1) // past ':'
		vEnd := skipValue(b, i)
		if !fn(string(key), b[i:vEnd]) {
			return false
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return true
}

// array calls fn for each element of an array, stopping at the first false;
// a value that is not an array is false.
func (d *fastDec) array(fn func(v []byte) bool) bool {
	b := d.b
	if len(b) == 0 || b[0] != '[' {
		return false
	}
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != ']' {
		vEnd := skipValue(b, i)
		if !fn(b[i:vEnd]) {
			return false
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return true
}
