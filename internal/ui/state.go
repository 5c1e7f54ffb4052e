package ui

import (
	"context"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// State is what the page reads: the desired state in force, the recorded
// status of each guest, and what the host says of it.
type State interface {
	// Desired is the desired state in force (for the controller, its last
	// valid one); nil until one was loaded.
	Desired() *api.Config
	// Status is a guest's recorded status; Pending when never applied.
	Status(id api.ID, kind api.Kind) (*api.Status, error)
	// Recorded lists the guests that have a status record, so that guests
	// that left the files (Orphaned) are shown too.
	Recorded() ([]api.ID, error)
	// Live is the host's view of a guest.
	Live(ctx context.Context, kind api.Kind, id api.ID) (Live, error)
}

// Live is a guest as the host sees it right now.
type Live struct {
	Exists, Running bool
}

// State gives the live state as `phoenix status` words it.
func (l Live) State() string {
	switch {
	case l.Running:
		return "running"
	case l.Exists:
		return "stopped"
	}
	return "absent"
}

// Converger asks for a full-chain converge of a guest. The controller's
// implementation goes through the converge annotation, as `phoenix converge`
// does while a controller runs, and returns the token it wrote.
type Converger interface {
	RequestConverge(ctx context.Context, g *api.Guest) (token string, err error)
}

// StatusReader reads status records; *status.Store implements it.
type StatusReader interface {
	Get(id api.ID, kind api.Kind) (*api.Status, error)
	IDs() ([]api.ID, error)
}

// Sources is a State over its parts: a function giving the desired state
// in force, the status store and the host.
type Sources struct {
	Config func() *api.Config
	Store  StatusReader
	Host   hypervisor.Host
}

var _ State = Sources{}

// Desired calls Config.
func (s Sources) Desired() *api.Config { return s.Config() }

// Status reads the guest's status record.
func (s Sources) Status(id api.ID, kind api.Kind) (*api.Status, error) { return s.Store.Get(id, kind) }

// Recorded lists the status records.
func (s Sources) Recorded() ([]api.ID, error) { return s.Store.IDs() }

// Live asks the host.
func (s Sources) Live(ctx context.Context, kind api.Kind, id api.ID) (Live, error) {
	g, ok, err := hypervisor.Exists(ctx, s.Host, kind, id)
	if err != nil || !ok {
		return Live{}, err
	}
	return Live{Exists: true, Running: g.Running}, nil
}
