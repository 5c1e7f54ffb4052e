package desired

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

const referenceLab = "../../testdata/reference-lab"

// refLab returns a copy of the reference lab's config directory, which is
// part of the repository: missing, it fails the test.
func refLab(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat(referenceLab); err != nil {
		tb.Fatalf("fixture %s is missing: %v", referenceLab, err)
	}
	dir := tb.TempDir()
	for _, f := range []string{api.HypervisorFile, api.LXCFile, api.VMFile} {
		data, err := os.ReadFile(filepath.Join(referenceLab, f))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func mustLoad(tb testing.TB, dir string) *api.Config {
	tb.Helper()
	c, err := Load(dir)
	if err != nil {
		tb.Fatalf("Load(%s): %v", dir, err)
	}
	return c
}

func TestLoad_referenceLab(t *testing.T) {
	c := mustLoad(t, refLab(t))
	if got := len(c.IDs); got != 19 {
		t.Fatalf("guests = %d, want 19 (17 LXC + 2 VM)", got)
	}
	g := c.Guest(941)
	if g == nil || g.Kind != api.KindLXC || g.Spec.Name != "granite-new" {
		t.Fatalf("941 = %+v, want the granite-new container", g)
	}
	if src := g.CloneSource(); src != 921 {
		t.Errorf("941 clone source = %d, want 921 (written as the string \"921\")", src)
	}
	if deps := g.Dependencies(); !reflect.DeepEqual(deps, []api.ID{953}) {
		t.Errorf("941 dependencies = %v, want [953]", deps)
	}
	if vm := c.Guest(8001); vm == nil || vm.Kind != api.KindVM || vm.CloneSource() != 8000 {
		t.Errorf("8001 = %+v, want a VM cloned from 8000", vm)
	}
}

func TestLoad_keepsUnknownFields(t *testing.T) {
	c := mustLoad(t, refLab(t))
	var raw map[string]any
	if err := json.Unmarshal(c.Guest(941).Raw, &raw); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"vllm_engine_config", "portainer_role", "ports", "tests"} {
		if _, ok := raw[field]; !ok {
			t.Errorf("field %s of 941 was dropped; unknown fields must reach the scripts", field)
		}
	}
}

func TestLoad_vmDefaultsOverlay(t *testing.T) {
	c := mustLoad(t, refLab(t))
	tpl := c.Guest(8000)
	// 8000 sets none of these itself: they come from vm_defaults.
	if tpl.Spec.Cores != 4 || tpl.Spec.MemoryMB != 8192 || tpl.Spec.DiskSizeGB != 100 || tpl.Spec.StoragePool != "quickOS-vm-disks" {
		t.Errorf("8000 spec = %+v, want vm_defaults applied (4 cores, 8192 MB, 100 GB, quickOS-vm-disks)", tpl.Spec)
	}
	var raw map[string]any
	_ = json.Unmarshal(tpl.Raw, &raw)
	if raw["network_bridge"] != "vmbr0" || raw["template"] != "ubuntu-24.04-standard" {
		t.Errorf("8000 effective JSON lacks vm_defaults fields: %s", tpl.Raw)
	}
}

func TestLoad_corePaths(t *testing.T) {
	dir := refLab(t)
	// Move the guest files into a sub folder that core_paths names relatively.
	sub := filepath.Join(dir, "guests")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{api.LXCFile, api.VMFile} {
		if err := os.Rename(filepath.Join(dir, f), filepath.Join(sub, "my-"+f)); err != nil {
			t.Fatal(err)
		}
	}
	hv := `{"core_paths": {"lxc_config_file": "guests/my-phoenix_lxc_configs.json", "vm_config_file": "guests/my-phoenix_vm_configs.json"}}`
	if err := os.WriteFile(filepath.Join(dir, api.HypervisorFile), []byte(hv), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, dir)
	if c.LXCPath != filepath.Join(sub, "my-"+api.LXCFile) || len(c.IDs) != 19 {
		t.Errorf("LXCPath = %s with %d guests, want the core_paths file with 19", c.LXCPath, len(c.IDs))
	}
}

func TestLoad_corePathsMissingFallsBack(t *testing.T) {
	// The reference lab's core_paths name /usr/local/phoenix_hypervisor/etc,
	// absent here: the files beside the hypervisor config are used.
	dir := refLab(t)
	c := mustLoad(t, dir)
	if c.LXCPath != filepath.Join(dir, api.LXCFile) {
		t.Errorf("LXCPath = %s, want %s", c.LXCPath, filepath.Join(dir, api.LXCFile))
	}
}

func TestLoad_noFiles(t *testing.T) {
	_, err := Load(t.TempDir())
	var inv *api.InvalidError
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), "--config-dir") {
		t.Fatalf("Load(empty dir) = %v, want an InvalidError telling to set --config-dir", err)
	}
}

// TestLoad_badCorpus loads every broken config of testdata/bad and checks
// that each expected fragment (file, guest, field, what is wrong) appears.
func TestLoad_badCorpus(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/bad/*")
	if len(dirs) < 25 {
		t.Fatalf("found %d bad configs, want at least 25", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "want"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(dir)
			var inv *api.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Load = %v, want an InvalidError", err)
			}
			msg := err.Error()
			for _, w := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestLoad_reportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	lxc := `{"lxc_configs": {
	  "900": {"name": "a", "template": "t", "memory_mb": -1, "mac_address": "nope"},
	  "901": {"name": "b", "clone_from_ctid": "777", "dependencies": ["900", "778"]}}}`
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), []byte(lxc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	var inv *api.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Load = %v, want an InvalidError", err)
	}
	// memory_mb fails the schema, so 900's other checks wait; 901 has two.
	want := []string{"guest 900: field memory_mb", "guest 901: field clone_from_ctid", "guest 901: field dependencies[1]"}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestLoad_hugeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 30 MB")
	}
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(`{"lxc_configs": {`)
	pad := strings.Repeat("x", 1000)
	for i := 0; i < 30000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		mem := "512"
		if i == 29999 {
			mem = `"big"`
		}
		b.WriteString(`"` + api.ID(1000+i).String() + `": {"name": "g", "template": "t", "memory_mb": ` + mem + `, "notes": "` + pad + `"}`)
	}
	b.WriteString("}}")
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "guest 30999: field memory_mb") {
		t.Fatalf("Load(30 MB file) = %v, want the one bad guest named", err)
	}
}

func TestLoad_deeplyNested(t *testing.T) {
	dir := t.TempDir()
	deep := `{"lxc_configs": {"900": {"name": "a", "template": "t", "x": ` + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + `}}}`
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), []byte(deep), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), api.LXCFile) {
		t.Fatalf("Load(deeply nested) = %v, want an error naming the file", err)
	}
}

func TestSpecHash(t *testing.T) {
	tests := []struct {
		name  string
		a, b  string
		equal bool
	}{
		{"key order and space", `{"a":1,"b":[1,2]}`, `{ "b": [1, 2], "a": 1 }`, true},
		{"annotations ignored", `{"a":1}`, `{"a":1,"annotations":{"converge.phoenix.io/requestedAt":"x"}}`, true},
		{"value change", `{"a":1}`, `{"a":2}`, false},
		{"nested change", `{"n":{"ip":"10.0.0.1/24"}}`, `{"n":{"ip":"10.0.0.2/24"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SpecHash([]byte(tt.a)) == SpecHash([]byte(tt.b)); got != tt.equal {
				t.Errorf("SpecHash equal = %v, want %v", got, tt.equal)
			}
		})
	}
}

// A key is quoted into the hash as fmt's %q quotes it, whatever it holds:
// the hashes of files written before stay what they were.
func TestSpecHash_keysQuotedAsBefore(t *testing.T) {
	for _, key := range []string{"memory", "a", "", `"`, `\`, "\t", "\xff", "\u00e9", `say "hi"`, `back\slash`, "tab\there", "del\x7f", "caf\u00e9", "line\nbreak", "\u2028", "bad\xff", "~!#$%&'()*+,-./:;<=>?@[]^_`{|}"} {
		if got, want := string(appendQuote([]byte("x"), key)), "x"+strconv.Quote(key); got != want {
			t.Errorf("appendQuote(%q) = %s, want %s", key, got, want)
		}
	}
}

// A guest's hash is SpecHash of what it was loaded from, also when the
// load reused the members its checks listed (a container's own object) and
// when it must not (a VM's object with vm_defaults applied).
func TestLoad_hashIsSpecHashOfRaw(t *testing.T) {
	c, err := Load(testlab.Generate(t, 300))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[api.Kind]int{}
	for _, id := range c.IDs {
		g := c.Guests[id]
		kinds[g.Kind]++
		if want := SpecHash(g.Raw); g.Hash != want {
			t.Errorf("%s %s: hash %s, SpecHash of its object %s", g.Kind, id, g.Hash, want)
		}
	}
	if kinds[api.KindLXC] == 0 || kinds[api.KindVM] == 0 {
		t.Errorf("the generated lab has %v guests: want both kinds", kinds)
	}
}

// A VM's hash covers what vm_defaults gave it even when its own object,
// as written, is exactly as long as the object with the defaults applied:
// the members its check listed are not those the hash must see.
func TestLoad_vmHashSeesDefaultsAtEqualLength(t *testing.T) {
	lxc, _ := smallFiles(t)
	own := `{"vmid":8001,"name":"worker","clone_from_vmid":8000}`
	write := func(own string) *api.Guest {
		t.Helper()
		dir := t.TempDir()
		vm := `{"vm_defaults":{"cores":2,"memory_mb":2048,"storage_pool":"local-zfs","network_bridge":"vmbr0"},"vms":[{"vmid":8000,"name":"vm-template","is_template":true,"template_image":"noble.img"},` + own + `]}`
		if err := os.WriteFile(filepath.Join(dir, api.LXCFile), lxc, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, api.VMFile), []byte(vm), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c.Guests[8001]
	}
	g := write(own)
	pad := len(g.Raw) - len(own)
	if pad <= 0 {
		t.Fatalf("the effective object (%d bytes) is not longer than the VM's own (%d)", len(g.Raw), len(own))
	}
	padded := own[:1] + strings.Repeat(" ", pad) + own[1:]
	g = write(padded)
	if len(g.Raw) != len(padded) {
		t.Fatalf("effective object %d bytes, own %d: not the case under test", len(g.Raw), len(padded))
	}
	if want := SpecHash(g.Raw); g.Hash != want || g.Hash == SpecHash([]byte(padded)) {
		t.Errorf("hash %s: want SpecHash of the object with its defaults, %s", g.Hash, want)
	}
}

// Checking a value of plain ASCII and looking up a field's name make no
// copy of either (the claims that make loading 10,000 guests cheap).
func TestScan_noCopyOfPlainValuesAndKnownKeys(t *testing.T) {
	var ps problems
	var at fieldPath
	for _, v := range []string{`"a b~c"`, `"10.0.0.1/24"`, `""`} {
		raw := []byte(v)
		if n := testing.AllocsPerRun(100, func() { checkChars(&ps, "f", "g", &at, raw) }); n != 0 || len(ps) != 0 {
			t.Errorf("checkChars(%s): %v allocations, problems %v", v, n, ps)
		}
	}
	key := []byte(`"memory_mb"`)
	if n := testing.AllocsPerRun(100, func() { _ = memberKey(key) }); n != 0 {
		t.Errorf("memberKey(%s): %v allocations", key, n)
	}
	if got := memberKey([]byte(`"mem\u006fry_mb"`)); got != "memory_mb" {
		t.Errorf("memberKey of an escaped key = %q", got)
	}
}

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
		{what: "case variant of a key in the second volume", want: refused, field: "volumes[1].Size_GB", lxc: setLXC("volumes", []any{
			map[string]any{"name": "a", "pool": "local-lvm", "size_gb": 8, "mount_point": "/a"},
			map[string]any{"name": "b", "pool": "local-lvm", "Size_GB": 8, "mount_point": "/b"},
		})},
		// Two edits make a typo in a name of seven letters or more, not in a
		// shorter one ("node" is not a misspelled "name").
		{what: "unknown 6-letter key two edits from volumes", want: accepted, lxc: setLXC("vloume", 1)},
		{what: "line feed in the second pct_options entry", want: refused, field: "pct_options[1]", lxc: setLXC("pct_options", []any{"nesting=1", "keyctl=1\n"})},
		// A swap of two neighbours is one edit, two swaps are two.
		{what: "swapped letters in a short key", want: warned, field: "croes", lxc: setLXC("croes", 1)},
		{what: "two swaps in a short key", want: accepted, lxc: setLXC("crose", 1)},
		// A /30 is the smallest subnet with a network and a broadcast address.
		{what: "network address of a /30", want: refused, field: "network_config.ip", lxc: network("10.0.0.52/30", "10.0.0.54")},
		{what: "broadcast address of a /30", want: refused, field: "network_config.ip", lxc: network("10.0.0.55/30", "10.0.0.54")},
		{what: "host address of a /30", want: accepted, lxc: network("10.0.0.53/30", "10.0.0.54")},
	}
	runSmallCases(t, tests)
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

// A guest whose bytes fail the exact checks is reported once, in their
// words: it does not go on to the decoders, whose messages (Go types, a
// second report of the same value) would only confuse.
func TestLoad_exactProblemStopsTheGuest(t *testing.T) {
	lxc, vm := smallFiles(t)
	// Each a whole number to the schema, and an error to encoding/json.
	for _, v := range []string{"2048.0", "-0.0", "0.0", "9.0", "2e3"} {
		t.Run(v, func(t *testing.T) {
			dir := caseDir(t, lxc, vm, hostile{raw: func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"memory_mb": 512`), []byte(`"memory_mb": `+v), 1)
			}})
			_, err := Load(dir)
			var inv *api.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Load = %v, want an invalid configuration", err)
			}
			if len(inv.Problems) != 1 || !strings.Contains(inv.Problems[0].Msg, "whole number") || inv.Problems[0].Field != "memory_mb" {
				t.Errorf("problems %v, want the one about memory_mb's whole number", inv.Problems)
			}
		})
	}
}

// runSmallCases loads the small lab with each case's edit, naming the guest
// it edits (953 in the LXC file, 8001 in the VM file), and checks the
// outcome.
func runSmallCases(t *testing.T, tests []hostile) {
	t.Helper()
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
