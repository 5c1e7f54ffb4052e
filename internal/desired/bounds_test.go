package desired

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// smallFiles reads testdata/small's guest files, the base every case changes.
func smallFiles(t *testing.T) (lxc, vm []byte) {
	t.Helper()
	lxc, err := os.ReadFile("../../testdata/small/" + api.LXCFile)
	if err != nil {
		t.Fatal(err)
	}
	vm, err = os.ReadFile("../../testdata/small/" + api.VMFile)
	if err != nil {
		t.Fatal(err)
	}
	return lxc, vm
}

// The edges of the semantic checks: the last value accepted and the first
// refused, naming the field, so that a check that moves by one either way
// is seen.
func TestLoad_boundaries(t *testing.T) {
	idMap := func(container, host, size int) func(map[string]any) {
		return setLXC("id_maps", []any{map[string]any{"type": "uid", "container_id": container, "host_id": host, "size": size}})
	}
	nfs := func(server string) func(map[string]any) {
		return setVM("volumes", []any{map[string]any{"type": "nfs", "server": server, "path": "/export/x", "mount_point": "/mnt/x"}})
	}
	network := func(ip, gw string) func(map[string]any) {
		return setLXC("network_config", map[string]any{"name": "eth0", "bridge": "vmbr0", "ip": ip, "gw": gw})
	}
	const last = 1 << 32 // one past the last ID, 4294967295
	// 253 characters in labels of at most 63: the longest host name.
	longest := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	tests := []hostile{
		{what: "id_maps host range ending on the last ID", want: accepted, lxc: idMap(0, last-65536, 65536)},
		{what: "id_maps host range one past the last ID", want: refused, field: "id_maps[0]", lxc: idMap(0, last-65535, 65536)},
		{what: "id_maps host range far past the last ID", want: refused, field: "id_maps[0]", lxc: idMap(0, last-300, 65536)},
		{what: "id_maps container range ending on the last ID", want: accepted, lxc: idMap(last-65536, 100000, 65536)},
		{what: "id_maps container range one past the last ID", want: refused, field: "id_maps[0]", lxc: idMap(last-65535, 100000, 65536)},
		{what: "id_maps container range far past the last ID", want: refused, field: "id_maps[0]", lxc: idMap(last-300, 100000, 65536)},
		{what: "nfs server by address", want: accepted, vm: nfs("10.0.0.5")},
		{what: "nfs server by host name", want: accepted, vm: nfs("nas.example.com")},
		{what: "nfs server neither", want: refused, field: "volumes[0].server", vm: nfs("nas;reboot")},
		{what: "volume name with a space", want: refused, field: "volumes[0].name", lxc: setLXC("volumes.0.name", "my data")},
		{what: "volume name with a dot", want: accepted, lxc: setLXC("volumes.0.name", "data.v1")},
		{what: "pct_options alone on a VM", want: refused, field: "lxc_options", vm: setVM("pct_options", []any{"nesting=1"})},
		{what: "name of 253 characters", want: accepted, lxc: setLXC("name", longest)},
		{what: "name of 254 characters", want: refused, field: "name", lxc: setLXC("name", longest+"d")},
		{what: "gpu_assignment of the last GPU", want: accepted, lxc: setLXC("gpu_assignment", "63")},
		// A /30 is the smallest subnet with a network and a broadcast address.
		{what: "network address of a /30", want: refused, field: "network_config.ip", lxc: network("10.0.0.52/30", "10.0.0.54")},
		{what: "broadcast address of a /30", want: refused, field: "network_config.ip", lxc: network("10.0.0.55/30", "10.0.0.54")},
		{what: "host address of a /30", want: accepted, lxc: network("10.0.0.53/30", "10.0.0.54")},
	}
	lxc, vm := smallFiles(t)
	for _, c := range tests {
		t.Run(c.what, func(t *testing.T) {
			if c.lxc != nil {
				c.guest = "953"
			}
			if c.vm != nil {
				c.guest = "8001"
			}
			if got, msg := outcome(caseDir(t, lxc, vm, c), c); got != c.want {
				t.Errorf("%s, want %s: %s", got, c.want, msg)
			}
		})
	}
}

// A guest that needs a guest of the other file, when that file cannot be
// read: the one problem is the unreadable file, not an "unknown guest" that
// would send the user looking for a guest that is there.
func TestLoad_unreadableFileHidesNoGuest(t *testing.T) {
	lxc, vm := smallFiles(t)
	dir := caseDir(t, lxc, vm, hostile{lxc: setLXC("dependencies", []any{"8001"}), file: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, api.VMFile), `{"vms": [`)
	}})
	_, err := Load(dir)
	var inv *api.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) == 0 {
		t.Fatalf("Load = %v, want an invalid configuration", err)
	}
	for _, p := range inv.Problems {
		if strings.Contains(p.Msg, "unknown guest") || filepath.Base(p.File) != api.VMFile {
			t.Errorf("problem %s; want only problems of the unreadable %s", p, api.VMFile)
		}
	}
	// The same reference with both files readable and 8001 gone is an
	// unknown guest: the check above is not silent by accident.
	dir = caseDir(t, lxc, vm, hostile{lxc: setLXC("dependencies", []any{"8009"})})
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "unknown guest 8009") {
		t.Errorf("Load = %v, want unknown guest 8009", err)
	}
}

// The lines an lxc_options entry writes to the container's config: one per
// capability for lxc.cap.keep and lxc.cap.drop (lxc wants them so), the
// value untouched for every other key, nothing for a malformed entry.
func TestLXCOptionLines(t *testing.T) {
	tests := []struct {
		in   string
		want [][2]string
	}{
		{"lxc.cap.keep=sys_admin,mknod", [][2]string{{"lxc.cap.keep", "sys_admin"}, {"lxc.cap.keep", "mknod"}}},
		{"lxc.cap.drop = sys_module mknod", [][2]string{{"lxc.cap.drop", "sys_module"}, {"lxc.cap.drop", "mknod"}}},
		{"lxc.mount.entry=/dev/fuse dev/fuse none bind,create=file", [][2]string{{"lxc.mount.entry", "/dev/fuse dev/fuse none bind,create=file"}}},
		{"lxc.mount.auto:proc:rw sys:rw", [][2]string{{"lxc.mount.auto", "proc:rw sys:rw"}}},
		{"nesting=1", nil},
	}
	for _, tt := range tests {
		if got := LXCOptionLines(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LXCOptionLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
