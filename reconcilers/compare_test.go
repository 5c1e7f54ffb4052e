package reconcilers

import "testing"

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
		{"hostname", "Web", "web", true},
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
