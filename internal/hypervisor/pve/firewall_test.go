package pve

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

// The pve backend keeps a guest's rules in <pve-etc>/firewall/<id>.fw:
// written once, untouched when unchanged, read back by Get, copied to a
// clone and removed with the guest by (the fake) pct; a symlink planted in
// its place is replaced, never written through.
func TestHost_firewall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	err := e.h.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "local:vztmpl/debian-12.tar.zst", Storage: "local-lvm", DiskGB: 8,
		Config: map[string]string{"hostname": "fw", "unprivileged": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	fw := api.Firewall{Enabled: true, Rules: []api.FirewallRule{
		{Type: "in", Action: "ACCEPT", Source: "10.0.0.0/24", Proto: "tcp", Port: "22", Comment: "ssh"},
		{Type: "out", Action: "DROP", Dest: "10.0.0.1", Proto: "udp", Dport: "53"},
	}}
	path := filepath.Join(e.opts.PVEEtc, "firewall", "900.fw")
	if g := mustGet(t, e.h, api.KindLXC, 900); g.Firewall != "" || g.FirewallOwned {
		t.Fatalf("before: %q %v", g.Firewall, g.FirewallOwned)
	}
	if err := e.h.SetFirewall(ctx, api.KindLXC, 900, fw); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := pvefirewall.Marker + "\n\n[OPTIONS]\n\nenable: 1\n\n[RULES]\n\n" +
		"IN ACCEPT -source 10.0.0.0/24 -p tcp -dport 22 # ssh\nOUT DROP -dest 10.0.0.1 -p udp -dport 53\n\n"
	if string(data) != want {
		t.Errorf("%s:\n%s\nwant:\n%s", path, data, want)
	}
	g := mustGet(t, e.h, api.KindLXC, 900)
	if g.Firewall != pvefirewall.Format(fw) || !g.FirewallOwned {
		t.Errorf("Get: %q owned %v", g.Firewall, g.FirewallOwned)
	}
	// Unchanged: the file is not rewritten.
	st1, _ := os.Stat(path)
	os.Chtimes(path, st1.ModTime().Add(-3600e9), st1.ModTime().Add(-3600e9))
	st1, _ = os.Stat(path)
	if err := e.h.SetFirewall(ctx, api.KindLXC, 900, fw); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(path); !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("an unchanged firewall was rewritten")
	}

	// A rule that would inject a line is refused before anything is written.
	bad := fw
	bad.Rules = []api.FirewallRule{{Type: "in", Action: "ACCEPT", Comment: "x\n[OPTIONS]\nenable: 0"}}
	if err := e.h.SetFirewall(ctx, api.KindLXC, 900, bad); err == nil || !strings.Contains(err.Error(), "comment") {
		t.Errorf("bad rule: %v", err)
	}

	// A symlink planted as the file is replaced, its target untouched.
	target := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(target, []byte("root:x:0:0::/root:/bin/bash\n"), 0o644)
	os.Remove(path)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if g := mustGet(t, e.h, api.KindLXC, 900); g.Firewall == pvefirewall.Format(fw) {
		t.Error("a symlinked .fw was read through")
	}
	if err := e.h.SetFirewall(ctx, api.KindLXC, 900, fw); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(target); string(data) != "root:x:0:0::/root:/bin/bash\n" {
		t.Errorf("symlink target written: %q", data)
	}
	if st, _ := os.Lstat(path); st.Mode()&os.ModeSymlink != 0 {
		t.Error("the symlink is still there")
	}

	// Clone copies the file, destroy removes it, as Proxmox does.
	if err := e.h.Clone(ctx, api.KindLXC, 900, 901, hypervisor.CloneSpec{Name: "copy", Full: true}); err != nil {
		t.Fatal(err)
	}
	if g := mustGet(t, e.h, api.KindLXC, 901); g.Firewall != pvefirewall.Format(fw) {
		t.Errorf("clone's firewall: %q", g.Firewall)
	}
	if err := e.h.Destroy(ctx, api.KindLXC, 901); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.opts.PVEEtc, "firewall", "901.fw")); !os.IsNotExist(err) {
		t.Errorf("destroyed guest's .fw: %v", err)
	}
	// A missing guest has no firewall to set.
	if err := e.h.SetFirewall(ctx, api.KindLXC, 950, fw); err == nil {
		t.Error("SetFirewall on a missing guest succeeded")
	}
}
