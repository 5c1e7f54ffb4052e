package cli_test

import (
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/cli"
	fakepveapi "github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
)

// The pve-api case of TestKindMove_refusedFromTheHost: the cluster's
// resource list shows 941, a guest of the LXC file, as a VM.
func TestPVEAPI_kindMoveRefusedFromTheHost(t *testing.T) {
	l := newAPILab(t)
	l.fake.AddGuest(fakepveapi.Guest{VMID: 941, Type: "qemu", Node: "pve1", Config: map[string]string{"name": "by-hand"}})
	mark := len(l.fake.Requests())
	for _, args := range [][]string{{"create", "941"}, {"converge", "941"}, {"delete", "941"}, {"create", "941", "--dry-run"}} {
		code, _, stderr := l.run(args...)
		if code != cli.ExitUsage {
			t.Errorf("%v: exit %d; want %d\n%s", args, code, cli.ExitUsage, stderr)
		}
		for _, w := range []string{"phoenix_lxc_configs.json: guest 941: field lxc_configs", "the host has 941 as a VM", "qm destroy 941"} {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, w, stderr)
			}
		}
	}
	if w := l.writes(mark); len(w) > 0 {
		t.Errorf("requests changed guests %v", w)
	}
}
