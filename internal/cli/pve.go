package cli

import (
	"github.com/phoenix-hypervisor/phoenix/hypervisor"
)

// newPVE builds the pct/qm backend.
func newPVE(o *options) (hypervisor.Host, error) {
	return nil, usageErr("--backend pve is not wired yet")
}
