package reconcilers

import (
	"context"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

// firewallWant is what the firewall step makes of the guest's firewall.
// An enabled firewall with rules is phoenix's: its options and rules are
// written as the desired state says. A firewall that is off, absent or
// without rules leaves the guest's existing one alone (with it off the
// NIC's firewall=1 flag is gone, so it filters nothing), unless phoenix
// wrote it: then an enabled one is written without rules, and one turned
// off is kept with enable: 0. ok is false when there is nothing to write.
func firewallWant(g *api.Guest, owned bool) (fw api.Firewall, ok bool) {
	want := g.Spec.Firewall
	if want != nil && want.Enabled && len(want.Rules) > 0 {
		return *want, true
	}
	if !owned {
		return api.Firewall{}, false
	}
	if want != nil {
		fw = *want
	}
	return fw, true
}

// firewallChange is the firewall's line of Changes, or false.
func firewallChange(g *api.Guest, cur *hypervisor.Guest) (have, want string, differ bool) {
	fw, ok := firewallWant(g, cur.FirewallOwned)
	if !ok {
		return "", "", false
	}
	text := pvefirewall.Format(fw)
	if text == cur.Firewall {
		return "", "", false
	}
	return pvefirewall.Summary(cur.Firewall), pvefirewall.Summary(text), true
}

// applyFirewall writes the guest's firewall options and rules once it
// exists, when they differ from the host's.
func applyFirewall(ctx context.Context, r *run) (outcome, error) {
	fwr, ok := r.w.host.(hypervisor.Firewaller)
	if !ok {
		return skipped, nil
	}
	// The firewall alone is read: a full Get here would cost every
	// workflow another status command for what is mostly no firewall.
	text, owned, err := fwr.Firewall(ctx, r.g.Kind, r.g.ID)
	if err != nil {
		return "", err
	}
	fw, ok := firewallWant(r.g, owned)
	if !ok {
		return skipped, nil
	}
	if pvefirewall.Format(fw) == text {
		return unchanged, nil
	}
	if err := fwr.SetFirewall(ctx, r.g.Kind, r.g.ID, fw); err != nil {
		return "", err
	}
	r.changed()
	return changed, nil
}
