package reconcilers

import (
	"context"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

func stepResult(t *testing.T, res []plan.StepResult, name string) string {
	t.Helper()
	for _, r := range res {
		if r.Name == name {
			return r.Result
		}
	}
	t.Fatalf("no step %s in %+v", name, res)
	return ""
}

// The firewall step writes an enabled firewall once, changes nothing on
// the next run, and Changes (diff, dry run) shows a rule edit before it is
// applied. A firewall turned off is left alone unless phoenix wrote it.
func TestFirewallStep(t *testing.T) {
	cfg := load(t, referenceLab)
	host := newSim(t, 0)
	w := NewWorkflows(host, Scripts{})
	ctx := context.Background()
	applyAll(t, w, cfg)
	g := cfg.Guest(910) // the reference lab's portainer: enabled, one rule
	cur, err := host.Get(ctx, g.Kind, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.FirewallOwned || !strings.Contains(cur.Firewall, "IN ACCEPT -source 10.0.0.153 -p tcp -dport 9443") {
		t.Fatalf("910's firewall after create: owned %v\n%s", cur.FirewallOwned, cur.Firewall)
	}
	res, err := w.Apply(ctx, cfg, g, nil)
	if err != nil || stepResult(t, res, "firewall") != plan.StepUnchanged {
		t.Errorf("second run: %+v, %v", res, err)
	}

	edited := *g
	fw := *g.Spec.Firewall
	fw.Rules = append([]api.FirewallRule{{Type: "in", Action: "DROP", Proto: "udp", Dport: "53"}}, fw.Rules...)
	edited.Spec.Firewall = &fw
	changes := Changes(&edited, cur)
	if len(changes) != 1 || changes[0].Key != plan.KeyFirewall || !strings.HasPrefix(changes[0].Have, "on, 1 rules") || !strings.HasPrefix(changes[0].Want, "on, 2 rules") {
		t.Fatalf("Changes after a rule edit: %+v", changes)
	}
	res, err = w.Apply(ctx, cfg, &edited, nil)
	if err != nil || stepResult(t, res, "firewall") != plan.StepOK {
		t.Errorf("apply the edit: %+v, %v", res, err)
	}
	cur, _ = host.Get(ctx, g.Kind, g.ID)
	if !strings.Contains(cur.Firewall, "IN DROP -p udp -dport 53\nIN ACCEPT") {
		t.Errorf("rules after the edit, in order:\n%s", cur.Firewall)
	}

	// Turned off: phoenix wrote the file, so it keeps it with enable: 0.
	off := edited
	offFW := fw
	offFW.Enabled = false
	off.Spec.Firewall = &offFW
	if _, err := w.Apply(ctx, cfg, &off, nil); err != nil {
		t.Fatal(err)
	}
	cur, _ = host.Get(ctx, g.Kind, g.ID)
	if !strings.Contains(cur.Firewall, "enable: 0") || !strings.Contains(cur.Firewall, "IN DROP") {
		t.Errorf("firewall turned off:\n%s", cur.Firewall)
	}

	// No rules any more: phoenix wrote the file, so it keeps it on, empty.
	empty := edited
	emptyFW := api.Firewall{Enabled: true}
	empty.Spec.Firewall = &emptyFW
	if _, err := w.Apply(ctx, cfg, &empty, nil); err != nil {
		t.Fatal(err)
	}
	cur, _ = host.Get(ctx, g.Kind, g.ID)
	if cur.Firewall != pvefirewall.Format(emptyFW) {
		t.Errorf("firewall without rules:\n%s", cur.Firewall)
	}

	// A guest whose firewall phoenix never wrote: nothing to do, with no
	// firewall field or with one enabled but without rules.
	other := cfg.Guest(900)
	if other.Spec.Firewall != nil && other.Spec.Firewall.Enabled {
		t.Fatal("900 was meant to have no firewall")
	}
	res, err = w.Apply(ctx, cfg, other, nil)
	if err != nil || stepResult(t, res, "firewall") != plan.StepSkipped {
		t.Errorf("900: %+v, %v", res, err)
	}
	noRules := *other
	noRules.Spec.Firewall = &api.Firewall{Enabled: true}
	res, err = w.Apply(ctx, cfg, &noRules, nil)
	if err != nil || stepResult(t, res, "firewall") != plan.StepSkipped {
		t.Errorf("900 enabled without rules: %+v, %v", res, err)
	}
}
