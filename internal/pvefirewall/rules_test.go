package pvefirewall

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestValidate(t *testing.T) {
	ok := api.FirewallRule{Type: "in", Action: "ACCEPT", Source: "10.0.0.0/24", Proto: "tcp", Port: "22", Comment: "ssh"}
	tests := []struct {
		name  string
		edit  func(r *api.FirewallRule)
		field string // "" = valid
	}{
		{"upstream rule", func(r *api.FirewallRule) {}, ""},
		{"out with dest list", func(r *api.FirewallRule) { r.Type, r.Source, r.Dest = "out", "", "10.0.0.1,10.0.0.2,10.1.0.0/16" }, ""},
		{"range", func(r *api.FirewallRule) { r.Source = "10.0.0.1-10.0.0.9" }, ""},
		{"ipv6", func(r *api.FirewallRule) { r.Source = "fd00::/64" }, ""},
		{"ipset", func(r *api.FirewallRule) { r.Source = "+guest/trusted" }, ""},
		{"alias", func(r *api.FirewallRule) { r.Source = "dc/lan" }, ""},
		{"port list and range", func(r *api.FirewallRule) { r.Port = "80,443,8000:8010" }, ""},
		{"dport sport iface", func(r *api.FirewallRule) { r.Port, r.Dport, r.Sport, r.Iface = "", "53", "1024:65535", "net0" }, ""},
		{"icmp", func(r *api.FirewallRule) { r.Proto, r.Port = "icmp", "" }, ""},
		{"group", func(r *api.FirewallRule) { *r = api.FirewallRule{Type: "group", Action: "webservers", Iface: "net1"} }, ""},
		{"proto number", func(r *api.FirewallRule) { r.Proto = "6" }, ""},

		{"no type", func(r *api.FirewallRule) { r.Type = "" }, "type"},
		{"forward", func(r *api.FirewallRule) { r.Type = "forward" }, "type"},
		{"lowercase action", func(r *api.FirewallRule) { r.Action = "accept" }, "action"},
		{"action injecting an option", func(r *api.FirewallRule) { r.Action = "ACCEPT -p udp" }, "action"},
		{"group name too long", func(r *api.FirewallRule) { *r = api.FirewallRule{Type: "group", Action: "averyveryverylonggroup"} }, "action"},
		{"group with source", func(r *api.FirewallRule) { r.Type, r.Action = "group", "web" }, "source"},
		{"source injecting an option", func(r *api.FirewallRule) { r.Source = "10.0.0.1 -dport 1" }, "source"},
		{"source newline", func(r *api.FirewallRule) { r.Source = "10.0.0.1\nOUT ACCEPT" }, "source"},
		{"bad CIDR", func(r *api.FirewallRule) { r.Source = "10.0.0.0/33" }, "source"},
		{"mixed families", func(r *api.FirewallRule) { r.Source = "10.0.0.1,fd00::1" }, "source"},
		{"range in a list", func(r *api.FirewallRule) { r.Source = "10.0.0.1-10.0.0.5,10.0.1.1" }, "source"},
		{"backwards range", func(r *api.FirewallRule) { r.Source = "10.0.0.9-10.0.0.1" }, "source"},
		{"extraneous comma", func(r *api.FirewallRule) { r.Dest = "10.0.0.1,," }, "dest"},
		{"source and dest families differ", func(r *api.FirewallRule) { r.Dest = "fd00::1" }, "dest"},
		{"port too big", func(r *api.FirewallRule) { r.Port = "65536" }, "port"},
		{"backwards port range", func(r *api.FirewallRule) { r.Port = "90:80" }, "port"},
		{"port with space", func(r *api.FirewallRule) { r.Port = "22 -i net0" }, "port"},
		{"service name", func(r *api.FirewallRule) { r.Port = "ssh" }, "port"},
		{"too many ports", func(r *api.FirewallRule) { r.Port = "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16" }, "port"},
		{"port without proto", func(r *api.FirewallRule) { r.Proto = "" }, "port"},
		{"port with icmp", func(r *api.FirewallRule) { r.Proto = "icmp" }, "port"},
		{"port and dport differ", func(r *api.FirewallRule) { r.Dport = "23" }, "port"},
		{"unknown proto", func(r *api.FirewallRule) { r.Proto = "tcp,udp" }, "proto"},
		{"proto number too big", func(r *api.FirewallRule) { r.Proto = "256" }, "proto"},
		{"iface not netN", func(r *api.FirewallRule) { r.Iface = "eth0" }, "iface"},
		{"comment newline", func(r *api.FirewallRule) { r.Comment = "ok\n[OPTIONS]\nenable: 0" }, "comment"},
		{"comment carriage return", func(r *api.FirewallRule) { r.Comment = "ok\rIN ACCEPT" }, "comment"},
		{"comment too long", func(r *api.FirewallRule) { r.Comment = strings.Repeat("x", 513) }, "comment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			errs := Validate(r)
			if tt.field == "" {
				if len(errs) > 0 {
					t.Fatalf("%+v: %v", r, errs)
				}
				// A valid rule reads back as itself.
				back, err := ParseRule(RuleLine(r))
				if err != nil || RuleLine(back) != RuleLine(r) {
					t.Errorf("round trip of %q: %q, %v", RuleLine(r), RuleLine(back), err)
				}
				return
			}
			found := false
			for _, e := range errs {
				found = found || e.Field == tt.field
			}
			if !found {
				t.Errorf("%+v: errors %v, want one for %s", r, errs, tt.field)
			}
		})
	}
}

// The upstream files' rules, rendered as the .fw files pve-firewall
// reads; testdata/upstream-*.fw are golden (go test -update rewrites).
func TestUpstreamRulesGolden(t *testing.T) {
	for _, f := range []struct{ file, list string }{
		{"phoenix_lxc_configs.json", "lxc_configs"},
		{"phoenix_vm_configs.json", "vms"},
	} {
		data, err := os.ReadFile(filepath.Join("../../testdata/upstream-2025-11", f.file))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		guests := map[string]struct {
			VMID     int           `json:"vmid"`
			Firewall *api.Firewall `json:"firewall"`
		}{}
		if f.list == "vms" {
			var list []struct {
				VMID     int           `json:"vmid"`
				Firewall *api.Firewall `json:"firewall"`
			}
			json.Unmarshal(doc[f.list], &list)
			for _, g := range list {
				guests[api.ID(g.VMID).String()] = g
			}
		} else if err := json.Unmarshal(doc[f.list], &guests); err != nil {
			t.Fatal(err)
		}
		n := 0
		for id, g := range guests {
			if g.Firewall == nil {
				continue
			}
			n++
			for i, r := range g.Firewall.Rules {
				if errs := Validate(r); len(errs) > 0 {
					t.Errorf("%s %s rule %d: %v", f.file, id, i, errs)
				}
			}
			got := File(*g.Firewall)
			golden := filepath.Join("testdata", "upstream-"+id+".fw")
			if *update {
				os.WriteFile(golden, got, 0o644)
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if string(want) != string(got) {
				t.Errorf("%s differs:\n--- got\n%s--- want\n%s", golden, got, want)
			}
			back, owned, err := Parse(got)
			if err != nil || !owned || Format(back) != Format(*g.Firewall) {
				t.Errorf("%s reads back as %+v, owned %v, %v", golden, back, owned, err)
			}
		}
		if n == 0 {
			t.Errorf("%s: no guest with a firewall", f.file)
		}
	}
}

// A file Proxmox rewrote (no marker) is not phoenix's; a file with a rule
// Proxmox would not parse is an error naming the line.
func TestParse(t *testing.T) {
	fw, owned, err := Parse([]byte("[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n[IPSET trusted]\n\n10.0.0.0/24\n\n[RULES]\n\nIN ACCEPT -source +trusted -p tcp -dport 22 # ssh\n"))
	if err != nil || owned || !fw.Enabled || len(fw.Rules) != 1 || fw.Rules[0].Dport != "22" || fw.Rules[0].Comment != "ssh" {
		t.Errorf("Parse = %+v, owned %v, %v", fw, owned, err)
	}
	for _, bad := range []string{"[RULES]\nIN ACCEPT -p tcp -dport 99999\n", "[RULES]\nIN\n", "[RULES]\nIN ACCEPT -bogus x\n", "[OPTIONS]\nenable\n"} {
		if _, _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("Parse(%q) = %v, want an error on line 2", bad, err)
		}
	}
}
