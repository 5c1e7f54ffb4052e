package pveapi

import (
	"context"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

// On pve-api the firewall goes through /firewall/options and
// /firewall/rules: the rules end up in the desired order (Proxmox puts a
// new rule first), enabled; an unchanged firewall costs no write; a clone
// inherits the source's rules as Proxmox copies them.
func TestHost_firewall(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	if err := tc.host.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "local:vztmpl/debian-12.tar.zst", Storage: "local-lvm", DiskGB: 8,
		Config: map[string]string{"hostname": "fw", "unprivileged": "1"}}); err != nil {
		t.Fatal(err)
	}
	fw := api.Firewall{Enabled: true, Rules: []api.FirewallRule{
		{Type: "in", Action: "ACCEPT", Source: "10.0.0.0/24", Proto: "tcp", Port: "22", Comment: "ssh"},
		{Type: "out", Action: "DROP", Dest: "10.0.0.1", Proto: "udp", Dport: "53"},
	}}
	// A rule someone added by hand is replaced.
	tc.fake.Guest(900) // exists
	if err := tc.host.SetFirewall(ctx, api.KindLXC, 900, api.Firewall{Enabled: false, Rules: []api.FirewallRule{{Type: "in", Action: "DROP"}}}); err != nil {
		t.Fatal(err)
	}
	if err := tc.host.SetFirewall(ctx, api.KindLXC, 900, fw); err != nil {
		t.Fatal(err)
	}
	g := tc.fake.Guest(900)
	if g.FirewallOptions["enable"] != "1" || len(g.FirewallRules) != 2 {
		t.Fatalf("fake guest firewall: %v %v", g.FirewallOptions, g.FirewallRules)
	}
	if r := g.FirewallRules[0]; r["type"] != "in" || r["dport"] != "22" || r["enable"] != "1" || r["comment"] != "ssh" {
		t.Errorf("first rule: %v", r)
	}
	if r := g.FirewallRules[1]; r["type"] != "out" || r["dest"] != "10.0.0.1" {
		t.Errorf("second rule: %v", r)
	}
	got, err := tc.host.Get(ctx, api.KindLXC, 900)
	if err != nil {
		t.Fatal(err)
	}
	if got.Firewall != pvefirewall.Format(fw) || got.FirewallOwned {
		t.Errorf("Get: %q owned %v", got.Firewall, got.FirewallOwned)
	}
	before := len(tc.fake.Requests())
	if err := tc.host.SetFirewall(ctx, api.KindLXC, 900, fw); err != nil {
		t.Fatal(err)
	}
	for _, r := range tc.fake.Requests()[before:] {
		if r.Method != "GET" {
			t.Errorf("unchanged firewall wrote: %s %s", r.Method, r.Path)
		}
	}
	// What Proxmox refuses, the fake refuses: a rule naming an ipset it
	// does not have.
	bad := api.Firewall{Enabled: true, Rules: []api.FirewallRule{{Type: "in", Action: "ACCEPT", Source: "+trusted"}}}
	if err := tc.host.SetFirewall(ctx, api.KindLXC, 900, bad); err == nil || !strings.Contains(err.Error(), "no such ipset") {
		t.Errorf("unknown ipset: %v", err)
	}
	// A failure half-way leaves the old rules in force, not an enabled
	// firewall without them.
	if g := tc.fake.Guest(900); g.FirewallOptions["enable"] != "1" || len(g.FirewallRules) != 2 {
		t.Errorf("after a refused rule: %v %v", g.FirewallOptions, g.FirewallRules)
	}
	// A rule phoenix's validation refuses never reaches the cluster.
	before = len(tc.fake.Requests())
	inject := api.Firewall{Enabled: true, Rules: []api.FirewallRule{{Type: "in", Action: "ACCEPT", Proto: "tcp", Port: "22,\n"}}}
	if err := tc.host.SetFirewall(ctx, api.KindLXC, 900, inject); err == nil || len(tc.fake.Requests()) != before {
		t.Errorf("bad rule: %v, %d requests", err, len(tc.fake.Requests())-before)
	}
}
