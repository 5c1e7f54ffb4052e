package desired

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

var update = flag.Bool("update", false, "rewrite docs/reliability.md from the hostile-input table")

// The outcomes a hostile input may have.
const (
	refused  = "refused"  // Load fails naming the guest (or file) and the field
	warned   = "warning"  // Load succeeds with a warning naming both
	accepted = "accepted" // a legitimate input that must keep loading
)

// hostile is one input of the table in docs/reliability.md.
type hostile struct {
	what  string // what the input is, for the table
	want  string // refused, warned or accepted
	field string // the field a problem must name ("" for a file-level one)
	guest string // the guest it must name (953, 8001, "" for file level)
	// One of: a change to the LXC guest 953 or the VM 8001 of
	// testdata/small, or a change to a file's bytes.
	lxc  func(g map[string]any)
	vm   func(g map[string]any)
	raw  func(lxc []byte) []byte
	file func(t *testing.T, dir string)
}

func setLXC(key string, v any) func(map[string]any) {
	return func(g map[string]any) { setPath(g, key, v) }
}

func setVM(key string, v any) func(map[string]any) {
	return func(g map[string]any) { setPath(g, key, v) }
}

// setPath sets a dotted path; "volumes.0.pool" makes a one-volume list.
func setPath(g map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	cur := g
	for i := 0; i < len(parts)-1; i++ {
		p := parts[i]
		if i+1 < len(parts) && parts[i+1] == "0" {
			vol := map[string]any{"name": "data", "pool": "local-lvm", "size_gb": 8, "mount_point": "/data"}
			cur[p] = []any{vol}
			cur = vol
			i++
			continue
		}
		next, _ := cur[p].(map[string]any)
		if next == nil {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
}

func hostileCases() []hostile {
	var cs []hostile
	add := func(h hostile) { cs = append(cs, h) }

	// Property-string fields: every character that could add a key or end
	// a line, in every field that lands in a property string.
	badChars := []struct{ name, s string }{
		{"comma", "a,b"}, {"equals", "a=b"}, {"semicolon", "a;b"}, {"space", "a b"},
		{"double quote", `a"b`}, {"single quote", "a'b"}, {"tab", "a\tb"}, {"line feed", "a\nb"},
		{"carriage return", "a\rb"}, {"NUL", "a\x00b"}, {"ESC", "a\x1bb"},
	}
	for _, f := range []struct{ key, field string }{
		{"storage_pool", "storage_pool"}, {"network_config.bridge", "network_config.bridge"},
		{"network_config.name", "network_config.name"}, {"volumes.0.pool", "volumes[0].pool"},
		{"volumes.0.mount_point", "volumes[0].mount_point"}, {"zfs_volumes.0.pool", "zfs_volumes[0].pool"},
		{"pct_options", "pct_options[0]"},
	} {
		for _, c := range badChars {
			var v any = c.s
			if f.key == "pct_options" {
				v = []any{"nesting=1" + c.s}
			}
			field := f.field
			if c.name == "line feed" || c.name == "carriage return" || c.name == "NUL" || c.name == "ESC" {
				// Caught by the character check, which names the path.
				field = strings.ReplaceAll(strings.ReplaceAll(f.key, ".0.", "[0]."), "pct_options", "pct_options[0]")
			}
			add(hostile{what: fmt.Sprintf("%s with a %s: %q", f.field, c.name, c.s), want: refused, guest: "953", field: field, lxc: setLXC(f.key, v)})
		}
	}
	for _, c := range []struct{ s, want string }{
		{"vmbr0,firewall=1", refused}, {"vmbr0 ", refused}, {"vmbr-with-a-long-name", refused}, {"-vmbr0", refused}, {"vmbr0", accepted},
	} {
		add(hostile{what: fmt.Sprintf("VM network_bridge %q", c.s), want: c.want, guest: "8001", field: "network_bridge", vm: setVM("network_bridge", c.s)})
	}
	add(hostile{what: "VM storage_pool with a comma", want: refused, guest: "8001", field: "storage_pool", vm: setVM("storage_pool", "local,size=1")})

	// Mount points.
	for _, c := range []struct{ s, want string }{
		{"data", refused}, {"/data/../etc", refused}, {"/data/", refused}, {"//data", refused}, {"/./data", refused},
		{"/", refused}, {"/data,backup=1", refused}, {"/my data", refused}, {"/srv/data", accepted}, {"/vllm_models", accepted},
	} {
		add(hostile{what: fmt.Sprintf("mount_point %q", c.s), want: c.want, guest: "953", field: "volumes[0].mount_point", lxc: setLXC("volumes.0.mount_point", c.s)})
	}

	// pct_options: known container features only.
	for _, c := range []struct{ s, want string }{
		{"hookscript=local:snippets/x.sh", refused}, {"nesting", refused}, {"nesting=2", refused}, {"nesting=yes", refused},
		{"keyctl=1", accepted}, {"fuse=1", accepted}, {"mknod=1", accepted}, {"force_rw_sys=0", accepted},
		{"mount=nfs;cifs", accepted}, {"mount=nfs;../x", refused}, {"unprivileged=0", refused}, {"Nesting=1", refused},
		{"", refused}, {"nesting=1,keyctl=1", refused},
	} {
		add(hostile{what: fmt.Sprintf("pct_options %q", c.s), want: c.want, guest: "953", field: "pct_options[0]", lxc: setLXC("pct_options", []any{c.s})})
	}

	// lxc_options: lxc.<key>, '=' or ':', a key on Proxmox's list.
	for _, c := range []struct{ s, want string }{
		{"lxc.apparmor.profile=unconfined", accepted}, {"lxc.mount.auto:sys:rw", accepted},
		{"lxc.mount.auto=proc:rw sys:rw", accepted}, {"lxc.cgroup2.devices.allow=a", accepted},
		{"lxc.mount.entry=/dev/fuse dev/fuse none bind,create=file", accepted},
		{"lxc.cap.keep=sys_admin,mknod,sys_chroot", accepted}, {"lxc.prlimit.nofile = 1024", accepted},
		{"lxc.net.0.type=veth", accepted}, {"lxc.idmap=u 0 100000 65536", accepted},
		{"hookscript=local:snippets/x.sh", refused}, {"lxc.hookscript=x", refused}, {"apparmor.profile=unconfined", refused},
		{"lxc.rootfs.path=/", refused}, {"lxc.rootfs.options=rw", refused}, {"LXC.apparmor.profile=unconfined", refused},
		{"lxc.apparmor.profile", refused}, {"lxc.apparmor.profile=", refused}, {"lxc.cap.keep=sys_admin,$(id)", refused},
		{"lxc.mount.entry=/ x none bind\nlxc.hook.start=/tmp/x", refused}, {"lxc.foo.bar=1", refused},
		{"lxc.aa_profile=unconfined", warned}, {"lxc.cgroup.devices.allow=a", warned}, {"lxc.limit.nofile=1", warned},
		{" lxc.apparmor.profile=unconfined", refused},
	} {
		field := "lxc_options[0]"
		add(hostile{what: fmt.Sprintf("lxc_options %q", c.s), want: c.want, guest: "953", field: field, lxc: setLXC("lxc_options", []any{c.s})})
	}
	add(hostile{what: "lxc_options on a VM", want: refused, guest: "8001", field: "lxc_options", vm: setVM("lxc_options", []any{"lxc.apparmor.profile=unconfined"})})

	// Host names.
	for _, c := range []struct{ s, want string }{
		{"my host", refused}, {"my_host", refused}, {"höst", refused}, {"-host", refused}, {"host-", refused},
		{strings.Repeat("a", 64), refused}, {strings.Repeat("a", 63), accepted}, {"a..b", refused}, {"host.example.com", accepted},
		{"Nginx-VscodeRag", accepted}, {"host;reboot", refused}, {strings.Repeat("abcdefgh.", 29) + "x", refused},
	} {
		add(hostile{what: fmt.Sprintf("name %q", c.s), want: c.want, guest: "953", field: "name", lxc: setLXC("name", c.s)})
	}
	add(hostile{what: "VM name with a space", want: refused, guest: "8001", field: "name", vm: setVM("name", "my vm")})
	add(hostile{what: "node with a slash", want: refused, guest: "953", field: "node", lxc: setLXC("node", "pve/../x")})

	// GPUs.
	for _, c := range []struct{ s, want string }{
		{"0", accepted}, {"0, 1", accepted}, {"0,1", accepted}, {"none", accepted}, {"all", refused}, {"0;1", refused},
		{"-1", refused}, {"0,0", refused}, {"64", refused}, {"0,,1", refused}, {"/dev/sda", refused}, {"1 2", refused},
	} {
		add(hostile{what: fmt.Sprintf("gpu_assignment %q", c.s), want: c.want, guest: "953", field: "gpu_assignment", lxc: setLXC("gpu_assignment", c.s)})
	}

	// Snapshot names (pve-configid).
	for _, c := range []struct{ s, want string }{
		{"golden", accepted}, {"final-form", accepted}, {"initial_clean_state", accepted}, {"x", refused}, {"current", refused},
		{"1st", refused}, {"with space", refused}, {strings.Repeat("a", 41), refused}, {"a;b", refused}, {"a.b", refused},
	} {
		add(hostile{what: fmt.Sprintf("template_snapshot_name %q", c.s), want: c.want, guest: "8001", field: "template_snapshot_name", vm: setVM("template_snapshot_name", c.s)})
	}

	// Addresses.
	for _, c := range []struct{ ip, gw, field, want string }{
		{"10.0.0.53/33", "10.0.0.1", "network_config.ip", refused},
		{"10.0.0.53/-1", "10.0.0.1", "network_config.ip", refused},
		{"10.0.0.53", "10.0.0.1", "network_config.ip", refused},
		{"10.0.0.0/24", "10.0.0.1", "network_config.ip", refused},
		{"10.0.0.255/24", "10.0.0.1", "network_config.ip", refused},
		{"127.0.0.1/8", "127.0.0.2", "network_config.ip", refused},
		{"224.0.0.5/24", "224.0.0.1", "network_config.ip", refused},
		{"0.0.0.0/0", "", "network_config.ip", refused},
		{"10.0.0.53/24", "10.0.1.1", "network_config.gw", refused},
		{"10.0.0.53/24", "10.0.0.255", "network_config.gw", refused},
		{"10.0.0.53/24", "10.0.0.0", "network_config.gw", refused},
		{"10.0.0.53/24", "10.0.0.53", "network_config.gw", refused},
		{"10.0.0.53/24", "fe80::1", "network_config.gw", refused},
		{"10.0.0.53/24", "10.0.0.1,ip=1.2.3.4", "network_config.gw", refused},
		{"fd00::53/64", "", "network_config.ip", refused},
		{"fd00::53/129", "", "network_config.ip", refused},
		{"::ffff:10.0.0.53/120", "", "network_config.ip", refused},
		{"10.0.0.53/24,gw=1.1.1.1", "10.0.0.1", "network_config.ip", refused},
		{"10.0.0.53/31", "10.0.0.52", "", accepted},
		{"10.0.0.53/32", "", "", accepted},
		{"dhcp", "", "", accepted},
		{"10.0.0.53/24", "10.0.0.254", "", accepted},
		{"10.0.0.10/24", "10.0.0.1", "network_config.ip", refused}, // 900's address
	} {
		c := c
		add(hostile{what: fmt.Sprintf("ip %q, gw %q", c.ip, c.gw), want: c.want, guest: "953", field: c.field, lxc: func(g map[string]any) {
			n := map[string]any{"name": "eth0", "bridge": "vmbr0", "ip": c.ip}
			if c.gw != "" {
				n["gw"] = c.gw
			}
			g["network_config"] = n
		}})
	}
	add(hostile{what: "nameserver not an address", want: refused, guest: "953", field: "network_config.nameservers[0]", lxc: setLXC("network_config.nameservers", []any{"8.8.8.8;reboot"})})

	// MACs.
	for _, c := range []struct{ s, want string }{
		{"52:54:00:00:00:53", accepted}, {"01:00:5e:00:00:01", refused}, {"ff:ff:ff:ff:ff:ff", refused},
		{"00:00:00:00:00:00", refused}, {"52:54:00:00:00", refused}, {"52-54-00-00-00-53", refused},
		{"52:54:00:00:00:10", refused}, {"52:54:00:00:00:1G", refused}, {"52:54:00:00:00:53,bridge=x", refused},
	} {
		add(hostile{what: fmt.Sprintf("mac_address %q", c.s), want: c.want, guest: "953", field: "mac_address", lxc: setLXC("mac_address", c.s)})
	}

	// Bounds.
	for _, c := range []struct {
		key  string
		v    any
		want string
	}{
		{"memory_mb", 8, refused}, {"memory_mb", 1 << 30, refused}, {"memory_mb", -5, refused}, {"memory_mb", 0, refused},
		{"memory_mb", 16, accepted}, {"cores", 0, refused}, {"cores", 100000, refused}, {"cores", 8192, accepted},
		{"swap_mb", -1, refused}, {"storage_size_gb", 0, refused}, {"storage_size_gb", 1 << 30, refused},
		{"boot_delay", 1 << 20, refused}, {"boot_order", -1, refused}, {"health_check.retries", 1 << 20, refused},
		{"health_check.interval", -1, refused}, {"volumes.0.size_gb", 0, refused}, {"memory_mb", "2048", refused},
	} {
		field := strings.ReplaceAll(c.key, ".0.", "[0].")
		add(hostile{what: fmt.Sprintf("%s = %v", c.key, c.v), want: c.want, guest: "953", field: field, lxc: setLXC(c.key, c.v)})
	}

	// References.
	add(hostile{what: "runtime dependency on a template", want: refused, guest: "953", field: "dependencies[0]", lxc: setLXC("dependencies", []any{"900"})})
	add(hostile{what: "VM from an image without a storage pool", want: refused, guest: "8000", field: "storage_pool", raw: nil, vm: nil, file: func(t *testing.T, dir string) {
		rewrite(t, filepath.Join(dir, api.VMFile), func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"storage_pool": "local-zfs",`), nil, 1)
		})
	}})
	add(hostile{what: "feature script outside its folder", want: refused, guest: "953", field: "features[0]", lxc: setLXC("features", []any{"../../bin/sh"})})
	add(hostile{what: "template with a space", want: refused, guest: "953", field: "template", lxc: setLXC("template", "local:vztmpl/a b.tar")})
	add(hostile{what: "apparmor_profile with a newline", want: refused, guest: "953", field: "apparmor_profile", lxc: setLXC("apparmor_profile", "unconfined\nlxc.hook.start=/x")})

	// Exact JSON.
	rawCase := func(what, want, guest, field string, fn func([]byte) []byte) {
		add(hostile{what: what, want: want, guest: guest, field: field, raw: fn})
	}
	in953 := func(member string) func([]byte) []byte {
		return func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"name": "gateway",`), []byte(`"name": "gateway", `+member+`,`), 1)
		}
	}
	rawCase(`"Memory_MB": -5`, refused, "953", "Memory_MB", in953(`"Memory_MB": -5`))
	rawCase(`"MEMORY_MB": 4096`, refused, "953", "MEMORY_MB", in953(`"MEMORY_MB": 4096`))
	rawCase(`"memory_mB": 4096`, refused, "953", "memory_mB", in953(`"memory_mB": 4096`))
	rawCase(`"Name": "x"`, refused, "953", "Name", in953(`"Name": "x"`))
	rawCase(`"\u017ftorage_pool" (long s, folded by Go)`, refused, "953", "ſtorage_pool", in953(`"\u017ftorage_pool": "x"`))
	rawCase(`mount_points "Host_Path" in mixed case`, refused, "953", "mount_points[0].Host_Path",
		in953(`"mount_points": [{"Host_Path": "/srv/a", "container_path": "/a"}]`))
	rawCase(`id_maps "Size" in upper case`, refused, "953", "id_maps[0].Size",
		in953(`"id_maps": [{"type": "uid", "container_id": 0, "host_id": 100000, "Size": 65536}]`))
	rawCase(`firewall "Enabled" in upper case`, refused, "953", "firewall.Enabled", in953(`"firewall": {"Enabled": true}`))
	rawCase(`firewall rule "Action" in upper case`, refused, "953", "firewall.rules[0].Action",
		in953(`"firewall": {"enabled": true, "rules": [{"type": "in", "Action": "ACCEPT"}]}`))
	rawCase(`network_config "IP" in upper case`, refused, "953", "network_config.IP", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"ip": "10.0.0.53/24"`), []byte(`"IP": "10.0.0.53/24"`), 1)
	})
	rawCase(`"memory_mb" given twice`, refused, "953", "memory_mb", in953(`"memory_mb": 99999`))
	rawCase(`"ip" given twice`, refused, "953", "network_config.ip", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"ip": "10.0.0.53/24"`), []byte(`"ip": "10.0.0.53/24", "ip": "10.0.0.99/24"`), 1)
	})
	rawCase(`"lxc_configs" given twice`, refused, "", "lxc_configs", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`{`), []byte(`{"lxc_configs": {},`), 1)
	})
	rawCase(`"memory_mb": 2048.0`, refused, "953", "memory_mb", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"memory_mb": 512`), []byte(`"memory_mb": 2048.0`), 1)
	})
	rawCase(`"memory_mb": 2e3`, refused, "953", "memory_mb", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"memory_mb": 512`), []byte(`"memory_mb": 2e3`), 1)
	})
	rawCase(`"cores": 1.5`, refused, "953", "cores", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"cores": 1,`), []byte(`"cores": 1.5,`), 2)
	})
	rawCase("UTF-8 byte order mark", refused, "", "", func(b []byte) []byte { return append([]byte{0xEF, 0xBB, 0xBF}, b...) })
	rawCase("UTF-16LE with BOM", refused, "", "", func(b []byte) []byte { return utf16(b, true) })
	rawCase("UTF-16LE without BOM", refused, "", "", func(b []byte) []byte { return utf16(b, false) })
	rawCase("invalid UTF-8", refused, "", "", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"gateway"`), []byte("\"gate\xffway\""), 1)
	})
	rawCase(`escaped NUL in a value`, refused, "953", "name", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"gateway"`), []byte(`"gate\u0000way"`), 1)
	})
	rawCase(`escaped line separator U+2028`, refused, "953", "name", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"gateway"`), []byte(`"gate\u2028way"`), 1)
	})
	rawCase(`line feed in an unknown field`, refused, "953", "notes", in953(`"notes": "a\nb"`))
	rawCase(`ESC in a key`, refused, "953", "", in953(`"x\u001b[2J": 1`))
	rawCase("trailing garbage", refused, "", "", func(b []byte) []byte { return append(b, []byte(`}`)...) })
	rawCase("empty file", refused, "", "", func([]byte) []byte { return nil })
	rawCase("top level is an array", refused, "", "", func([]byte) []byte { return []byte(`[]`) })
	rawCase("NUL bytes after the object", refused, "", "", func(b []byte) []byte { return append(b, 0, 0) })

	// Misspelled fields: a warning naming both, an error under --strict.
	for _, c := range []struct{ key, near string }{
		{"memroy_mb", "memory_mb"}, {"core", "cores"}, {"storage_pol", "storage_pool"}, {"dependancies", "dependencies"},
		{"templte", "template"}, {"mac_adress", "mac_address"}, {"clone_from_cid", "clone_from_ctid"},
	} {
		add(hostile{what: fmt.Sprintf("misspelled %q", c.key), want: warned, guest: "953", field: c.key, lxc: setLXC(c.key, 1)})
	}
	add(hostile{what: `misspelled "brige" in network_config`, want: warned, guest: "953", field: "network_config.brige", lxc: setLXC("network_config.brige", "vmbr0")})
	for _, k := range []string{"portainer_role", "tests", "vllm_args", "docker_stacks", "trigger_sync_on_completion"} {
		add(hostile{what: fmt.Sprintf("unknown field %q far from any known one", k), want: accepted, guest: "953", lxc: setLXC(k, "x")})
	}

	// Files that are not files.
	add(hostile{what: "LXC file is a FIFO", want: refused, file: func(t *testing.T, dir string) {
		p := filepath.Join(dir, api.LXCFile)
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skip(err)
		}
	}})
	add(hostile{what: "core_paths points at /dev/zero", want: refused, file: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, api.HypervisorFile), `{"core_paths": {"lxc_config_file": "/dev/zero"}}`)
	}})
	add(hostile{what: "core_paths points at a folder", want: refused, file: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, api.HypervisorFile), `{"core_paths": {"vm_config_file": "/"}}`)
	}})
	add(hostile{what: "LXC file larger than 64 MiB", want: refused, file: func(t *testing.T, dir string) {
		p := filepath.Join(dir, api.LXCFile)
		if err := os.Truncate(p, 65<<20); err != nil {
			t.Fatal(err)
		}
	}})
	add(hostile{what: "hypervisor file given keys twice", want: refused, field: "core_paths", file: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, api.HypervisorFile), `{"core_paths": {}, "core_paths": {"lxc_config_file": "/etc/shadow"}}`)
	}})
	return cs
}

func rewrite(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(fn(b)))
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func utf16(b []byte, bom bool) []byte {
	var out []byte
	if bom {
		out = append(out, 0xFF, 0xFE)
	}
	for _, c := range b {
		out = append(out, c, 0)
	}
	return out
}

// TestHostileInputs runs every case of the table and, with -update, writes
// the table to docs/reliability.md; without it, the file must match.
func TestHostileInputs(t *testing.T) {
	cases := hostileCases()
	if len(cases) < 200 {
		t.Errorf("%d hostile inputs; the table promises at least 200", len(cases))
	}
	baseLXC, _ := os.ReadFile("../../testdata/small/" + api.LXCFile)
	baseVM, _ := os.ReadFile("../../testdata/small/" + api.VMFile)
	var rows []string
	counts := map[string]int{}
	for i, c := range cases {
		dir := caseDir(t, baseLXC, baseVM, c)
		got, msg := outcome(dir, c)
		counts[got]++
		if got != c.want {
			t.Errorf("case %d (%s): %s, want %s: %s", i+1, c.what, got, c.want, msg)
		}
		msg = strings.ReplaceAll(msg, dir+"/", "")
		rows = append(rows, fmt.Sprintf("| %d | %s | %s | %s |", i+1, mdCell(c.what), got, mdCell(msg)))
	}
	var doc strings.Builder
	doc.WriteString(reliabilityHead)
	fmt.Fprintf(&doc, "%d inputs: %d refused, %d accepted with a warning, %d accepted (legitimate inputs that must keep loading).\n\n",
		len(cases), counts[refused], counts[warned], counts[accepted])
	doc.WriteString("| # | input | result | what phoenix says (first problem) |\n|---|---|---|---|\n")
	doc.WriteString(strings.Join(rows, "\n"))
	doc.WriteString("\n")
	golden := "../../docs/reliability.md"
	if *update {
		if err := os.WriteFile(golden, []byte(doc.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil || string(want) != doc.String() {
		t.Errorf("docs/reliability.md is out of date; run go test ./internal/desired -run TestHostileInputs -update")
	}
}

// caseDir writes testdata/small's two guest files, changed as c says, to
// a new folder.
func caseDir(t *testing.T, baseLXC, baseVM []byte, c hostile) string {
	t.Helper()
	dir := t.TempDir()
	lxc, vm := baseLXC, baseVM
	if c.lxc != nil {
		lxc = mutate(t, lxc, "lxc_configs", "953", c.lxc)
	}
	if c.vm != nil {
		vm = mutate(t, vm, "vms", "8001", c.vm)
	}
	if c.raw != nil {
		lxc = c.raw(lxc)
	}
	writeFile(t, filepath.Join(dir, api.LXCFile), string(lxc))
	writeFile(t, filepath.Join(dir, api.VMFile), string(vm))
	if c.file != nil {
		c.file(t, dir)
	}
	return dir
}

// outcome loads dir the way a verb does and classifies the result; a
// refusal or warning must name the case's guest and field.
func outcome(dir string, c hostile) (string, string) {
	cfg, err := Load(dir)
	var inv *api.InvalidError
	switch {
	case err == nil && len(cfg.Warnings) == 0:
		return accepted, ""
	case err == nil:
		w := cfg.Warnings[0]
		if !names(cfg.Warnings, c) {
			return "warning naming the wrong place", w.String()
		}
		return warned, w.String()
	case errors.As(err, &inv):
		if !names(inv.Problems, c) {
			return "refused naming the wrong place", inv.Problems[0].String()
		}
		return refused, inv.Problems[0].String()
	default:
		return "error " + err.Error(), err.Error()
	}
}

func names(ps []api.Problem, c hostile) bool {
	for _, p := range ps {
		if p.File != "" && (c.guest == "" || p.Guest == c.guest) && (c.field == "" || p.Field == c.field) {
			return true
		}
	}
	return false
}

func mutate(t *testing.T, data []byte, section, id string, fn func(map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	switch s := doc[section].(type) {
	case map[string]any:
		fn(s[id].(map[string]any))
	case []any:
		for _, v := range s {
			if g := v.(map[string]any); fmt.Sprint(g["vmid"]) == id {
				fn(g)
			}
		}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mdCell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\x00", `\x00`, "\x1b", `\x1b`).Replace(s)
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 220 {
		s = s[:217] + "..."
	}
	return s
}

const reliabilityHead = `# Reliability: hostile and sloppy inputs

phoenix runs as root on the hypervisor, and every value of the config files
can end up in a pct or qm argument, a Proxmox property string
("name=eth0,bridge=vmbr0,...") or a line of a container's config file. This
table is what a load of each input gives; it is generated by
` + "`go test ./internal/desired -run TestHostileInputs -update`" + ` from the cases
in internal/desired/hostile_test.go, and the test fails when the table and
the code disagree. Each input is one change to testdata/small (guest 953 is
a container, 8001 a VM). "refused" means every verb exits 2 before anything
reaches the host, naming file, guest and field; "warning" means the verbs
print the warning and ` + "`validate --strict`" + ` (and ` + "`controller --strict`" + `)
refuse it.

`
