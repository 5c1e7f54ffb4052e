package pveschema

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		version  Version
		endpoint string
		name     string
		value    string
		want     string // "" for accepted; else the whole reason lines after the header
	}{
		{PVE9, LXCConfig, "cores", "2", ""},
		{PVE9, LXCConfig, "cores", "many", "cores: type check ('integer') failed - got 'many'"},
		{PVE9, LXCConfig, "cores", "0", "cores: value must have a minimum value of 1"},
		{PVE9, LXCConfig, "cores", "9000", "cores: value must have a maximum value of 8192"},
		{PVE9, LXCConfig, "memory", "8", "memory: value must have a minimum value of 16"},
		{PVE9, LXCConfig, "onboot", "yes", ""},
		{PVE9, LXCConfig, "onboot", "maybe", "onboot: type check ('boolean') failed - got 'maybe'"},
		{PVE9, LXCConfig, "cmode", "tty", ""},
		{PVE9, LXCConfig, "cmode", "serial", "cmode: value 'serial' does not have a value in the enumeration 'shell, console, tty'"},
		{PVE9, LXCConfig, "hostname", "web-1.lab", ""},
		{PVE9, LXCConfig, "hostname", "web_1", "hostname: invalid format - value does not look like a valid DNS name"},
		{PVE9, LXCConfig, "startup", "order=2,up=30", ""},
		{PVE9, LXCConfig, "startup", "order=first", "startup: invalid format - unable to parse startup options"},
		{PVE9, LXCConfig, "tags", "web;prod", ""},
		{PVE9, LXCConfig, "tags", "we$b", "tags: invalid format - invalid characters in tag"},
		{PVE9, LXCConfig, "nosuch", "1", "nosuch: property is not defined in schema and the schema does not allow additional properties"},
		{PVE9, LXCConfig, "net31", "name=eth0,bridge=vmbr0", ""},
		{PVE9, LXCConfig, "net32", "name=eth0", "net32: property is not defined in schema and the schema does not allow additional properties"},
		{PVE9, LXCConfig, "net01", "name=eth0", "net01: property is not defined in schema and the schema does not allow additional properties"},
		{PVE9, LXCConfig, "net0", "name=eth0,bridge=vmbr0,ip=10.0.0.2/24,gw=10.0.0.1,ip6=fd00::2/64,gw6=fd00::1", ""},
		{PVE9, LXCConfig, "net0", "name=eth0,ip=dhcp,ip6=auto", ""},
		{PVE9, LXCConfig, "net0", "name=eth0,ip=10.0.0.2", "net0: invalid format - format error\nnet0.ip: invalid format - value does not look like a valid ipv4 network configuration"},
		{PVE9, LXCConfig, "net0", "name=eth0,ip=10.0.0.2/33", "net0: invalid format - format error\nnet0.ip: invalid format - value does not look like a valid ipv4 network configuration"},
		{PVE9, LXCConfig, "net0", "name=eth0,gw6=fd00::1%eth0", "net0: invalid format - format error\nnet0.gw6: invalid format - value does not look like a valid IPv6 address"},
		{PVE9, LXCConfig, "net0", "name=eth0,hwaddr=01:00:00:00:00:01", "net0: invalid format - format error\nnet0.hwaddr: invalid format - value does not look like a valid unicast MAC address"},
		{PVE9, LXCConfig, "net0", "name=eth0,bridge=vm br0", "net0: invalid format - format error\nnet0.bridge: value does not match the regex pattern"},
		{PVE9, LXCConfig, "net0", "bridge=vmbr0", "net0: invalid format - format error\nnet0.name: property is missing and it is not optional"},
		{PVE9, LXCConfig, "net0", "name=eth0,colour=red", "net0: invalid format - invalid key in comma-separated list property: colour"},
		{PVE9, LXCConfig, "net0", "name=eth0,name=eth1", "net0: invalid format - duplicate key in comma-separated list property: name"},
		{PVE9, LXCConfig, "mp0", "local-zfs:8,mp=/data,backup=1", ""},
		{PVE9, LXCConfig, "mp0", "local-zfs:8", "mp0: invalid format - format error\nmp0.mp: property is missing and it is not optional"},
		{PVE9, LXCConfig, "mp0", "local-zfs:8,mp=/data/../etc", "mp0: invalid format - format error\nmp0.mp: invalid format - /data/../etc contains illegal character sequences"},
		{PVE9, LXCConfig, "mp0", "local-zfs:8,mp=/data,size=1T", ""},
		{PVE9, LXCConfig, "mp0", "local-zfs:8,mp=/data,size=1X", "mp0: invalid format - format error\nmp0.size: invalid format - value does not look like a valid disk size: 1X"},
		{PVE9, LXCConfig, "features", "nesting=1,keyctl=1", ""},
		{PVE9, LXCConfig, "features", "nesting=2", "features: invalid format - format error\nfeatures.nesting: type check ('boolean') failed - got '2'"},
		{PVE9, LXCConfig, "dev0", "/dev/dri/renderD128,gid=44,mode=0660", ""},
		{PVE9, LXCConfig, "dev0", "/dev/dri/renderD128,mode=660", "dev0: invalid format - format error\ndev0.mode: value does not match the regex pattern"},
		{PVE9, LXCConfig, "delete", "mp0,lxc.foo", "delete: invalid format - invalid configuration ID 'lxc.foo'"},
		{PVE9, LXCClone, "snapname", "Pre-Configured", ""}, // pve-configid is case-insensitive
		{PVE9, LXCSnapshot, "snapname", "1st", "snapname: invalid format - invalid configuration ID '1st'"},
		{PVE9, LXCSnapshot, "snapname", strings.Repeat("a", 41), "snapname: value may only be 40 characters long"},
		{PVE9, LXCClone, "storage", "x", "storage: invalid format - storage ID 'x' cannot be shorter than 2 characters"},
		{PVE9, VMConfig, "ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1,ip6=fd00::5/64,gw6=fd00::1", ""},
		{PVE9, VMConfig, "ipconfig0", "ip=10.0.0.5/24,ipv6=fd00::5/64", "ipconfig0: invalid format - invalid key in comma-separated list property: ipv6"},
		{PVE9, VMConfig, "ipconfig0", "ip6=fd00::5", "ipconfig0: invalid format - format error\nipconfig0.ip6: invalid format - value does not look like a valid ipv6 network configuration"},
		{PVE9, VMConfig, "net0", "virtio,bridge=vmbr0", ""},
		{PVE9, VMConfig, "net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1", ""},
		{PVE9, VMConfig, "scsi0", "local-zfs:vm-101-disk-0,size=32G,discard=on", ""},
		{PVE9, VMConfig, "scsi0", "local-zfs:32,cache=fast", "scsi0: invalid format - format error\nscsi0.cache: value 'fast' does not have a value in the enumeration 'none, writethrough, writeback, unsafe, directsync'"},
		{PVE9, VMConfig, "scsi31", "local-zfs:32", "scsi31: property is not defined in schema and the schema does not allow additional properties"},
		{PVE9, VMConfig, "agent", "1", ""},
		{PVE9, VMConfig, "agent", "enabled=1,fstrim_cloned_disks=1", ""},
		{PVE9, VMConfig, "sshkeys", "ssh-ed25519 AAAA", "sshkeys: invalid format - invalid urlencoded string: ssh-ed25519 AAAA"},
		{PVE9, VMConfig, "sshkeys", "ssh-ed25519%20AAAA", ""},
		{PVE9, VMConfig, "nameserver", "1.1.1.1 fd00::53", ""},
		{PVE9, VMConfig, "name", "vm_1", "name: invalid format - value does not look like a valid DNS name"},
		{PVE8, VMConfig, "cores", "4", ""},
		{PVE8, LXCConfig, "net0", "name=eth0,ip=10.0.0.2/8", ""},
	}
	for _, tt := range tests {
		s := MustLoad(tt.version)
		e, err := s.Endpoint(tt.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		err = e.CheckOption(tt.name, tt.value)
		if tt.want == "" {
			if err != nil {
				t.Errorf("PVE %d %s: %s=%q refused: %v", tt.version, tt.endpoint, tt.name, tt.value, err)
			}
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("PVE %d %s: %s=%q accepted; want %q", tt.version, tt.endpoint, tt.name, tt.value, tt.want)
			continue
		}
		if got, want := err.Error(), "400 Parameter verification failed.\n"+tt.want; got != want {
			t.Errorf("PVE %d %s: %s=%q:\n got %q\nwant %q", tt.version, tt.endpoint, tt.name, tt.value, got, want)
		}
	}
}

// Every endpoint named in the package is in both embedded versions.
func TestEndpoints(t *testing.T) {
	for _, v := range []Version{PVE8, PVE9} {
		for _, name := range []string{LXCCreate, LXCConfig, LXCClone, LXCResize, LXCSnapshot, LXCTemplate,
			VMCreate, VMConfig, VMConfigAsync, VMClone, VMResize, VMSnapshot, VMTemplate} {
			if _, err := MustLoad(v).Endpoint(name); err != nil {
				t.Error(err)
			}
		}
	}
	if _, err := Load(7); err == nil {
		t.Error("Load(7) succeeded; want an error: PVE 7 is not embedded")
	}
}

func TestCheckLXCKey(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"lxc.apparmor.profile", ""},
		{"lxc.mount.entry", ""},
		{"lxc.cgroup2.devices.allow", ""},
		{"lxc.prlimit.nofile", ""},
		{"lxc.net.0.type", ""},
		{"lxc.aa_profile", ""}, // deprecated, still read
		{"lxc.rootfs.path", "lxc.rootfs.path is auto generated from rootfs"},
		{"lxc.rootfs.options", "not supported"},
		{"lxc.nosuch", "not a key Proxmox VE allows"},
		{"lxc.Mount.entry", "not a raw LXC key"},
		{"lxc.mount.entry\nlxc.x", "not a raw LXC key"},
	}
	for _, tt := range tests {
		err := CheckLXCKey(tt.key)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckLXCKey(%q) = %v; want nil", tt.key, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckLXCKey(%q) = %v; want an error with %q", tt.key, err, tt.want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"name=eth0,bridge=vmbr0,ip=10.0.0.2/24", "local-zfs:8,mp=/data", "virtio,bridge=vmbr0", "ip=dhcp", "order=1"} {
		f.Add("net0", s)
	}
	e := MustLoad(PVE9)
	f.Fuzz(func(t *testing.T, name, value string) {
		for _, ep := range []string{LXCConfig, VMConfig} {
			x, _ := e.Endpoint(ep)
			if err := x.CheckOption(name, value); err != nil && !strings.HasPrefix(err.Error(), "400 Parameter verification failed.\n") {
				t.Fatalf("%s %s=%q: %v", ep, name, value, err)
			}
		}
	})
}
