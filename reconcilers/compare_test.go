package reconcilers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func TestSameValue(t *testing.T) {
	tests := []struct {
		key, have, want string
		same            bool
	}{
		{"memory", "2048", "2048", true},
		{"memory", "1024", "2048", false},
		{"memory", "", "2048", false},
		{"net0", "name=eth0,bridge=vmbr0,hwaddr=52:54:00:AA:BB:CC,ip=10.0.0.5/24,gw=10.0.0.1,type=veth",
			"name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1,hwaddr=52:54:00:aa:bb:cc", true},
		{"net0", "name=eth0,bridge=vmbr0,ip=10.0.0.6/24,type=veth", "name=eth0,bridge=vmbr0,ip=10.0.0.5/24", false},
		{"features", "keyctl=1,nesting=1", "nesting=1,keyctl=1", true},
		{"features", "nesting=1", "nesting=1,keyctl=1", false},
		{"mp0", "fast:subvol-941-disk-1,size=50G,mp=/models", "fast:50,mp=/models", true},
		{"mp0", "fast:subvol-941-disk-1,size=60G,mp=/models", "fast:50,mp=/models", true},
		{"mp0", "fast:subvol-941-disk-1,size=40G,mp=/models", "fast:50,mp=/models", false},
		{"mp0", "fast:subvol-941-disk-1,size=50G,mp=/data", "fast:50,mp=/models", false},
		{"mp0", "slow:subvol-941-disk-1,size=50G,mp=/models", "fast:50,mp=/models", false},
		{"mp0", "fast:50,mp=/models", "fast:50,mp=/models", true},
		// Proxmox prints 1024G as 1T: grown in place, it is the size asked for.
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=1T", "fast:1024,mp=/models", true},
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=1T", "fast:1025,mp=/models", false},
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=51200M", "fast:50,mp=/models", true},
		{"hostname", "Web", "web", true},
		{"name", "Web", "web", true},
		{"ostype", "Debian", "debian", false},
		// The sim keeps pool:size as given, beside options Proxmox adds.
		{"mp0", "fast:50,mp=/models,backup=0", "fast:50,mp=/models", true},
		{"mp0", "fast:40,mp=/models", "fast:50,mp=/models", false},
		// An existing volume is named, not sized.
		{"mp0", "fast:subvol-941-disk-1,size=8G,mp=/models", "fast:subvol-941-disk-1,mp=/models", true},
		{"mp0", "fast:subvol-941-disk-2,size=8G,mp=/models", "fast:subvol-941-disk-1,mp=/models", false},
		// Every unit Proxmox prints a size in: 50G is not 51G.
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=52428800K", "fast:50,mp=/models", true},
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=52428800K", "fast:51,mp=/models", false},
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=51200M", "fast:51,mp=/models", false},
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=53687091200", "fast:50,mp=/models", true},
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=53687091200", "fast:51,mp=/models", false},
		{"mp0", "fast:subvol-941-disk-1,mp=/models,size=-1G", "fast:1,mp=/models", false},
	}
	for _, tt := range tests {
		if got := sameValue(tt.key, tt.have, tt.want); got != tt.same {
			t.Errorf("sameValue(%s, %q, %q) = %v, want %v", tt.key, tt.have, tt.want, got, tt.same)
		}
	}
}

func TestLXCConfig_repeatedRawKeysKeepEveryValue(t *testing.T) {
	cfg := load(t, referenceLab)
	g := *cfg.Guest(941)
	g.Spec.LXCOptions = []string{"lxc.mount.entry=/a a none bind", "lxc.mount.entry=/b b none bind", "lxc.cap.drop="}
	c := LXCConfig(&g)
	if got := c["lxc.mount.entry"]; got != "/a a none bind\n/b b none bind" {
		t.Errorf("lxc.mount.entry = %q, want both values, one per line", got)
	}
}

func TestIPOptions_v6(t *testing.T) {
	tests := []struct {
		ip, gw string
		want   string
	}{
		{"10.0.0.5/24", "10.0.0.1", "ip=10.0.0.5/24,gw=10.0.0.1"},
		{"fd00::5/64", "fd00::1", "ip6=fd00::5/64,gw6=fd00::1"},
		{"dhcp", "", "ip=dhcp"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(ipOptions(tt.ip, tt.gw), ","); got != tt.want {
			t.Errorf("ipOptions(%q, %q) = %q, want %q", tt.ip, tt.gw, got, tt.want)
		}
	}
	g := &api.Guest{Kind: api.KindVM, Spec: api.Spec{NetworkConfig: &api.NetworkConfig{IP: "fd00::5/64", GW: "fd00::1", Bridge: "vmbr0"}}}
	if got := VMConfig(g)["ipconfig0"]; got != "ip6=fd00::5/64,gw6=fd00::1" {
		t.Errorf("VMConfig ipconfig0 = %q", got)
	}
}

func TestImagePath(t *testing.T) {
	cfg := &api.Config{Dir: "/etc/phoenix"}
	for in, want := range map[string]string{
		"images/noble.img":               "/etc/phoenix/images/noble.img",
		"../iso/noble.img":               "/etc/iso/noble.img",
		"/var/lib/vz/template/noble.img": "/var/lib/vz/template/noble.img",
		"local:iso/noble.img":            "local:iso/noble.img",
		"":                               "",
		":noble.img":                     "/etc/phoenix/:noble.img", // no storage before the colon
	} {
		if got := imagePath(cfg, in); got != want {
			t.Errorf("imagePath(%q) = %q, want %q", in, got, want)
		}
	}
	// A config folder given relative to the working directory still yields
	// an absolute path: qm runs elsewhere.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := imagePath(&api.Config{Dir: "lab"}, "noble.img"), filepath.Join(wd, "lab", "noble.img"); got != want {
		t.Errorf("imagePath with a relative config folder = %q, want %q", got, want)
	}
}
