package pveapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

var _ hypervisor.Firewaller = (*Host)(nil)

// fwOptions is GET .../firewall/options, of which phoenix sets enable.
type fwOptions struct {
	Enable flexInt `json:"enable"`
}

// fwRule is one entry of GET .../firewall/rules.
type fwRule struct {
	Pos     flexInt  `json:"pos"`
	Type    string   `json:"type"`
	Action  string   `json:"action"`
	Enable  *flexInt `json:"enable"`
	Macro   string   `json:"macro"`
	Log     string   `json:"log"`
	ICMP    string   `json:"icmp-type"`
	Source  string   `json:"source"`
	Dest    string   `json:"dest"`
	Proto   string   `json:"proto"`
	Dport   string   `json:"dport"`
	Sport   string   `json:"sport"`
	Iface   string   `json:"iface"`
	Comment string   `json:"comment"`
}

// unreadableFirewall stands for rules phoenix cannot represent (a
// disabled rule, a macro, a log level): it equals no pvefirewall.Format,
// so an enabled firewall in the desired state replaces them.
const unreadableFirewall = "# unreadable\n"

// readFirewall reads the guest's firewall options and rules in
// pvefirewall.Format's form, "" when it has neither. The API cannot tell
// who wrote them, so phoenix never counts them as its own: a firewall
// turned off in the desired state is left alone on pve-api.
func (h *Host) readFirewall(ctx context.Context, loc *location) (string, error) {
	var opts fwOptions
	if err := h.c.get(ctx, loc.base+"/firewall/options", &opts); err != nil {
		return "", err
	}
	var rules []fwRule
	if err := h.c.get(ctx, loc.base+"/firewall/rules", &rules); err != nil {
		return "", err
	}
	if opts.Enable == 0 && len(rules) == 0 {
		return "", nil
	}
	fw := api.Firewall{Enabled: opts.Enable == 1}
	for _, r := range rules {
		if (r.Enable != nil && *r.Enable == 0) || r.Macro != "" || r.Log != "" || r.ICMP != "" {
			return unreadableFirewall, nil
		}
		fw.Rules = append(fw.Rules, api.FirewallRule{Type: r.Type, Action: r.Action, Source: r.Source, Dest: r.Dest,
			Proto: r.Proto, Dport: r.Dport, Sport: r.Sport, Iface: r.Iface, Comment: r.Comment})
	}
	return pvefirewall.Format(fw), nil
}

// Firewall reads the guest's firewall options and rules
// (hypervisor.Firewaller); the API cannot tell who wrote them, so owned is
// always false.
func (h *Host) Firewall(ctx context.Context, kind api.Kind, id api.ID) (string, bool, error) {
	loc, err := h.locate(ctx, kind, id)
	if err != nil {
		return "", false, fmt.Errorf("%s %s: firewall: %w", kind, id, err)
	}
	text, err := h.readFirewall(ctx, loc)
	if err != nil {
		return "", false, fmt.Errorf("%s %s: firewall on node %s: %w", kind, id, loc.node, err)
	}
	return text, false, nil
}

// SetFirewall sets the guest's firewall option enable and replaces its
// rules through /firewall/options and /firewall/rules, when they differ.
// Proxmox puts a new rule first, so the rules are added last to first,
// then the old ones, now after them, deleted.
func (h *Host) SetFirewall(ctx context.Context, kind api.Kind, id api.ID, fw api.Firewall) error {
	for i, r := range fw.Rules {
		if errs := pvefirewall.Validate(r); len(errs) > 0 {
			return fmt.Errorf("%s %s: firewall: rule %d: %v", kind, id, i, errs[0])
		}
	}
	loc, err := h.locate(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("%s %s: firewall: %w", kind, id, err)
	}
	fail := func(err error) error { return fmt.Errorf("%s %s: firewall on node %s: %w", kind, id, loc.node, err) }
	cur, err := h.readFirewall(ctx, loc)
	if err != nil {
		return fail(err)
	}
	if cur == pvefirewall.Format(fw) {
		return nil
	}
	nodes := []string{loc.node}
	setEnable := func(v int) error {
		return h.c.write(ctx, nodes, http.MethodPut, loc.base+"/firewall/options", map[string]any{"enable": v})
	}
	// Turn a firewall off before its rules change and on after: a failure
	// half-way never leaves it on with half its rules.
	if !fw.Enabled {
		if err := setEnable(0); err != nil {
			return fail(err)
		}
	}
	var old []fwRule
	if err := h.c.get(ctx, loc.base+"/firewall/rules", &old); err != nil {
		return fail(err)
	}
	for i := len(fw.Rules) - 1; i >= 0; i-- {
		if err := h.c.write(ctx, nodes, http.MethodPost, loc.base+"/firewall/rules", ruleParams(fw.Rules[i])); err != nil {
			return fail(fmt.Errorf("add rule %d: %w", i, err))
		}
	}
	// The old rules now follow the new ones.
	for i := len(fw.Rules) + len(old) - 1; i >= len(fw.Rules); i-- {
		if err := h.c.write(ctx, nodes, http.MethodDelete, loc.base+"/firewall/rules/"+strconv.Itoa(i), nil); err != nil {
			return fail(fmt.Errorf("delete old rule %d: %w", i-len(fw.Rules), err))
		}
	}
	if fw.Enabled {
		if err := setEnable(1); err != nil {
			return fail(err)
		}
	}
	return nil
}

// ruleParams are the parameters of POST .../firewall/rules for a rule;
// enable must be given, or Proxmox adds the rule disabled.
func ruleParams(r api.FirewallRule) map[string]any {
	p := map[string]any{"type": r.Type, "action": r.Action, "enable": 1}
	dport := r.Dport
	if dport == "" {
		dport = r.Port
	}
	for k, v := range map[string]string{"source": r.Source, "dest": r.Dest, "proto": r.Proto, "dport": dport,
		"sport": r.Sport, "iface": r.Iface, "comment": r.Comment} {
		if v != "" {
			p[k] = v
		}
	}
	return p
}
