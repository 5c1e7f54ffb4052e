package fakepveapi

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

// ruleKeys are the parameters POST .../firewall/rules takes (Proxmox's
// schema; additionalProperties is 0).
var ruleKeys = map[string]bool{"action": true, "comment": true, "dest": true, "digest": true, "dport": true,
	"enable": true, "icmp-type": true, "iface": true, "log": true, "macro": true, "pos": true, "proto": true,
	"source": true, "sport": true, "type": true}

// optionKeys are the parameters PUT .../firewall/options takes.
var optionKeys = map[string]bool{"delete": true, "dhcp": true, "digest": true, "enable": true, "ipfilter": true,
	"log_level_in": true, "log_level_out": true, "macfilter": true, "ndp": true, "policy_in": true,
	"policy_out": true, "radv": true}

// firewall serves /nodes/{node}/{type}/{vmid}/firewall/...: the options
// and the rule list pve-firewall keeps in <vmid>.fw. Reading takes
// VM.Audit, changing VM.Config.Network, on /vms/{vmid}.
func (c *Cluster) firewall(g *Guest, method string, rest []string, p params) (any, *apiError) {
	acl := fmt.Sprintf("/vms/%d", g.VMID)
	if method == http.MethodGet && !c.may(acl, "VM.Audit") {
		return nil, denied(acl, "VM.Audit")
	}
	if method != http.MethodGet && !c.may(acl, "VM.Config.Network") {
		return nil, denied(acl, "VM.Config.Network")
	}
	switch {
	case method == http.MethodGet && len(rest) == 1 && rest[0] == "options":
		out := map[string]any{}
		for k, v := range g.FirewallOptions {
			out[k] = v
		}
		return out, nil
	case method == http.MethodPut && len(rest) == 1 && rest[0] == "options":
		for k := range p.s {
			if !optionKeys[k] && k != "node" && k != "vmid" {
				return nil, badParam(k, "property is not defined in schema and the schema does not allow additional properties")
			}
		}
		if v, ok := p.s["enable"]; ok {
			if v != "0" && v != "1" {
				return nil, badParam("enable", "type check ('boolean') failed - got '"+v+"'")
			}
			if g.FirewallOptions == nil {
				g.FirewallOptions = map[string]string{}
			}
			g.FirewallOptions["enable"] = v
		}
		return nil, nil
	case method == http.MethodGet && len(rest) == 1 && rest[0] == "rules":
		out := []map[string]any{}
		for i, r := range g.FirewallRules {
			e := map[string]any{"pos": i, "digest": rulesDigest(g.FirewallRules)}
			for k, v := range r {
				if k == "enable" {
					n, _ := strconv.Atoi(v)
					e[k] = n
				} else {
					e[k] = v
				}
			}
			out = append(out, e)
		}
		return out, nil
	case method == http.MethodPost && len(rest) == 1 && rest[0] == "rules":
		rule, e := newRule(p)
		if e != nil {
			return nil, e
		}
		// Proxmox puts a new rule first (unshift).
		g.FirewallRules = append([]map[string]string{rule}, g.FirewallRules...)
		return nil, nil
	case method == http.MethodDelete && len(rest) == 2 && rest[0] == "rules":
		pos, err := strconv.Atoi(rest[1])
		if err != nil || pos < 0 {
			return nil, badParam("pos", "type check ('integer') failed - got '"+rest[1]+"'")
		}
		if d := p.s["digest"]; d != "" && d != rulesDigest(g.FirewallRules) {
			return nil, errf(500, "detected modified configuration - file changed by other user? Try again.")
		}
		if pos >= len(g.FirewallRules) {
			return nil, errf(500, "no rule at position %d", pos)
		}
		g.FirewallRules = append(g.FirewallRules[:pos], g.FirewallRules[pos+1:]...)
		return nil, nil
	}
	return nil, errf(501, "Method '%s firewall/%s' not implemented", method, strings.Join(rest, "/"))
}

// newRule checks a rule as verify_rule does and returns what Proxmox
// stores: enable is 0 unless given.
func newRule(p params) (map[string]string, *apiError) {
	for k := range p.s {
		if !ruleKeys[k] && k != "node" && k != "vmid" {
			return nil, badParam(k, "property is not defined in schema and the schema does not allow additional properties")
		}
	}
	for _, k := range []string{"macro", "log", "icmp-type", "pos"} {
		if p.s[k] != "" {
			return nil, badParam(k, "not supported by the fake cluster")
		}
	}
	r := api.FirewallRule{Type: p.s["type"], Action: p.s["action"], Source: p.s["source"], Dest: p.s["dest"],
		Proto: p.s["proto"], Dport: p.s["dport"], Sport: p.s["sport"], Iface: p.s["iface"], Comment: p.s["comment"]}
	if r.Type == "" {
		return nil, badParam("type", "property is missing and it is not optional")
	}
	if r.Action == "" {
		return nil, badParam("action", "property is missing and it is not optional")
	}
	if errs := pvefirewall.Validate(r); len(errs) > 0 {
		f := errs[0].Field
		if f == "port" {
			f = "dport"
		}
		return nil, badParam(f, errs[0].Msg)
	}
	// The fake has no ipsets or aliases: a rule naming one is refused, as
	// Proxmox refuses one it does not know.
	for _, f := range []string{"source", "dest"} {
		v := p.s[f]
		if strings.HasPrefix(v, "+") {
			return nil, badParam(f, "no such ipset '"+strings.TrimPrefix(v, "+")+"'")
		}
		if v != "" && !strings.ContainsAny(v, ".:") {
			return nil, badParam(f, "no such alias '"+v+"'")
		}
	}
	if r.Type == "group" {
		return nil, badParam("action", "no such security group '"+r.Action+"'")
	}
	out := map[string]string{"enable": "0"}
	if v := p.s["enable"]; v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			return nil, badParam("enable", "type check ('integer') failed - got '"+v+"'")
		}
		out["enable"] = v
	}
	for _, k := range []string{"type", "action", "source", "dest", "proto", "dport", "sport", "iface", "comment"} {
		if v := p.s[k]; v != "" {
			out[k] = v
		}
	}
	return out, nil
}

func rulesDigest(rules []map[string]string) string {
	h := sha1.New()
	for _, r := range rules {
		for _, k := range slices.Sorted(maps.Keys(r)) {
			fmt.Fprintf(h, "%s=%s;", k, r[k])
		}
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func cloneRules(rules []map[string]string) []map[string]string {
	out := make([]map[string]string, len(rules))
	for i, r := range rules {
		out[i] = maps.Clone(r)
	}
	return out
}
