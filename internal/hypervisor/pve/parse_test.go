package pve

import (
	"reflect"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func TestParseStatus(t *testing.T) {
	for out, want := range map[string]string{
		"status: running\n":                 "running",
		"status: stopped\n":                 "stopped",
		"status: paused\n":                  "paused",
		"status: prelaunch\n":               "prelaunch",
		"cpus: 2\nstatus: running\nha: x\n": "running",
	} {
		got, err := parseStatus([]byte(out))
		if err != nil || got != want {
			t.Errorf("parseStatus(%q) = %q, %v; want %q", out, got, err, want)
		}
		if want != "stopped" && !isRunning(got) {
			t.Errorf("isRunning(%q) = false", got)
		}
	}
	if _, err := parseStatus([]byte("status:\n")); err == nil {
		t.Error("an empty status was accepted")
	}
}

func TestParseList(t *testing.T) {
	pct := "VMID       Status     Lock         Name                \n" +
		"101        running                 web                 \n" +
		"102        stopped    backup       db                  \n"
	qm := "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n" +
		"       100 VM 100               stopped    2048              32.00 0         \n" +
		"      8000 running              paused     4096              32.00 4242      \n"
	cases := []struct {
		kind api.Kind
		out  string
		want map[api.ID]runState
	}{
		{api.KindLXC, pct, map[api.ID]runState{101: {"running"}, 102: {"stopped"}}},
		{api.KindVM, qm, map[api.ID]runState{100: {"stopped"}, 8000: {"paused"}}},
		{api.KindLXC, "", map[api.ID]runState{}},
	}
	for _, tc := range cases {
		got, err := parseList(tc.kind, []byte(tc.out))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseList(%s) = %v, %v; want %v", tc.kind, got, err, tc.want)
		}
	}
	if _, err := parseList(api.KindLXC, []byte("<html>502 Bad Gateway</html>\n")); err == nil {
		t.Error("garbage was accepted")
	}
}

func TestParseImported(t *testing.T) {
	for out, want := range map[string]string{
		// PVE 8.2 and before.
		"importing disk 'a.img' to VM 8000 ...\ntransferred 3.5 GiB of 3.5 GiB (100.00%)\nSuccessfully imported disk as 'unused0:local-zfs:vm-8000-disk-0'\n": "local-zfs:vm-8000-disk-0",
		// PVE 8.3 and later.
		"importing disk 'a.img' to VM 8000 ...\ntransferred 3.5 GiB of 3.5 GiB (100.00%)\nunused0: successfully imported disk 'local-zfs:vm-8000-disk-0'\n": "local-zfs:vm-8000-disk-0",
		"unused1: successfully imported disk 'local-lvm:vm-8000-disk-1'\n":                                                                                  "local-lvm:vm-8000-disk-1",
	} {
		_, vol, ok := parseImported([]byte(out))
		if !ok || vol != want {
			t.Errorf("parseImported(%q) = %q, %v; want %q", out, vol, ok, want)
		}
	}
	if _, _, ok := parseImported([]byte("transferred 3.5 GiB of 3.5 GiB (100.00%)\n")); ok {
		t.Error("found a volume in output without one")
	}
}

// The parsers of pct and qm output never panic, whatever they are fed.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("status: running\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseStatus(b) })
}

func FuzzParseList(f *testing.F) {
	f.Add([]byte("VMID       Status     Lock         Name\n101        running                 web\n"))
	f.Add([]byte("      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID\n       100 VM 100               stopped    2048              32.00 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseList(api.KindLXC, b)
		_, _ = parseList(api.KindVM, b)
	})
}

func FuzzParseImported(f *testing.F) {
	f.Add([]byte("Successfully imported disk as 'unused0:local-zfs:vm-8000-disk-0'\n"))
	f.Add([]byte("unused0: successfully imported disk 'local-zfs:vm-8000-disk-0'\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = parseImported(b) })
}

func FuzzDiskGB(f *testing.F) {
	f.Add("local-zfs:subvol-101-disk-0,size=1T")
	f.Fuzz(func(t *testing.T, s string) {
		if diskGB(s) < 0 {
			t.Fatalf("diskGB(%q) < 0", s)
		}
	})
}

func FuzzParseStorageCfg(f *testing.F) {
	f.Add([]byte("dir: local\n\tpath /var/lib/vz\n\nzfspool: local-zfs\n\tpool rpool/data\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _ = parseStorageCfg(b) })
}

func TestDiskGB(t *testing.T) {
	for vol, want := range map[string]int{
		"local-zfs:subvol-101-disk-0,size=32G":                   32,
		"local-lvm:vm-101-disk-0,iothread=1,size=3584M":          4,
		"local-zfs:basevol-900-disk-0/subvol-910-disk-0,size=1T": 1024,
		"local:101/vm-101-disk-0.raw,size=8589934592":            8,
		"local-zfs:vm-101-disk-0":                                0,
		"":                                                       0,
	} {
		if got := diskGB(vol); got != want {
			t.Errorf("diskGB(%q) = %d, want %d", vol, got, want)
		}
	}
}

func TestFormatArgv(t *testing.T) {
	got := formatArgv([]string{"/usr/sbin/pct", "set", "101", "--hostname", "a b", "--description", "$(x)", ""})
	want := `pct set 101 --hostname "a b" --description "$(x)" ""`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
