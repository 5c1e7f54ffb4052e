package cli

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
)

// A guest of the LXC file whose ID the host holds as a VM (it moved
// between the files, or was made by hand) is refused before anything runs,
// with no status file to tell: exit 2 naming file, guest and field, on
// every backend that can show it, and nothing changes on the host.
func TestKindMove_refusedFromTheHost(t *testing.T) {
	wants := []string{"phoenix_lxc_configs.json: guest 941: field lxc_configs", "the host has 941 as a VM", "qm destroy 941"}
	check := func(t *testing.T, verb string, code int, stderr string) {
		t.Helper()
		if code != ExitUsage {
			t.Errorf("%s 941: exit %d; want %d\n%s", verb, code, ExitUsage, stderr)
		}
		for _, w := range wants {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s 941: stderr lacks %q:\n%s", verb, w, stderr)
			}
		}
	}
	verbs := [][]string{{"create", "941"}, {"converge", "941"}, {"delete", "941"}, {"create", "941", "--dry-run"}}

	t.Run("sim", func(t *testing.T) {
		h := newHarness(t, smallLab)
		s, err := sim.New(sim.Options{Dir: filepath.Join(h.stateDir, "sim")})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(context.Background(), api.KindVM, 941, hypervisor.CreateSpec{Source: "local:import/noble.qcow2", Storage: "local-lvm", DiskGB: 8, Config: map[string]string{"name": "by-hand"}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		before := h.hostSnapshot()
		for _, args := range verbs {
			code, _, stderr := h.run(args...)
			check(t, args[0], code, stderr)
		}
		if after := h.hostSnapshot(); len(after) != len(before) {
			t.Errorf("the host changed: %v -> %v", before, after)
		}
		for k, v := range before {
			if h.hostSnapshot()[k] != v {
				t.Errorf("the host changed at %s", k)
			}
		}
	})

	t.Run("pve", func(t *testing.T) {
		p := newPVEHarness(t, smallLab)
		if out, err := exec.Command("qm", "create", "941", "--name", "by-hand", "--memory", "1024").CombinedOutput(); err != nil {
			t.Fatalf("qm create: %v\n%s", err, out)
		}
		p.calls()
		for _, args := range verbs {
			code, _, stderr := p.run(args...)
			check(t, args[0], code, stderr)
		}
		for _, c := range p.calls() {
			if f := strings.Fields(c); len(f) > 1 && f[1] != "list" && f[1] != "status" && f[1] != "config" {
				t.Errorf("a command reached the host: %s", c)
			}
		}
	})

}
