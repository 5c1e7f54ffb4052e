package plan

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// OtherKind checks that the host does not hold guest g's ID as the other
// kind (a container for a guest of the VM file, or the reverse): Proxmox
// has one ID space, and acting on such a guest would either fail half-way
// or, through a delete, destroy one guest to build another under its ID.
// It returns the problem naming file, guest and field, or nil.
func OtherKind(ctx context.Context, h hypervisor.Host, g *api.Guest) (*api.Problem, error) {
	other, field, file := api.KindVM, "lxc_configs", api.LXCFile
	if g.Kind == api.KindVM {
		other, field, file = api.KindLXC, "vm_configs", api.VMFile
	}
	_, exists, err := hypervisor.Probe(ctx, h, other, g.ID)
	if err != nil {
		return nil, fmt.Errorf("look up %s %s: %w", other, g.ID, err)
	}
	if !exists {
		return nil, nil
	}
	if g.File != "" {
		file = g.File
	}
	return &api.Problem{File: file, Guest: g.ID.String(), Field: field,
		Msg: fmt.Sprintf("guest %s is in the %s file (%s) but the host has %s as %s; phoenix does not replace a guest by one of another kind: move it back to the %s file, or destroy the %s first (%s destroy %s)",
			g.ID, g.Kind, filepath.Base(file), g.ID, kindName(other), other, other, tool(other), g.ID)}, nil
}

func kindName(k api.Kind) string {
	if k == api.KindVM {
		return "a VM"
	}
	return "an LXC container"
}

func tool(k api.Kind) string {
	if k == api.KindVM {
		return "qm"
	}
	return "pct"
}
