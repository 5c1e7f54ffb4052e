package hypervisor

import (
	"context"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Firewaller is implemented by backends that keep a guest's Proxmox
// firewall (its options and rules, /etc/pve/firewall/<vmid>.fw). Their Get
// fills Guest.Firewall and Guest.FirewallOwned.
type Firewaller interface {
	// Firewall reads the guest's firewall alone, cheaper than Get: in
	// pvefirewall.Format's form ("" for none), and whether phoenix wrote it.
	Firewall(ctx context.Context, kind api.Kind, id api.ID) (text string, owned bool, err error)
	// SetFirewall makes the guest's firewall fw: its enable option and
	// exactly its rules, in order. It changes nothing when they already are.
	SetFirewall(ctx context.Context, kind api.Kind, id api.ID, fw api.Firewall) error
}
