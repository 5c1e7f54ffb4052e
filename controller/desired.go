package controller

import "github.com/phoenix-hypervisor/phoenix/api"

// delta is what a valid reload changed, guest by guest.
type delta struct {
	// added are guests new to the files; changed those whose effective spec
	// hash moved; converge those whose converge token is new (and whose
	// spec did not change).
	added, changed, converge []api.ID
	// removed are guests that left the files, with their kind.
	removed map[api.ID]api.Kind
}

// enqueue lists every guest the reload asks to reconcile.
func (d delta) enqueue() []api.ID {
	out := make([]api.ID, 0, len(d.added)+len(d.changed)+len(d.converge)+len(d.removed))
	out = append(out, d.added...)
	out = append(out, d.changed...)
	out = append(out, d.converge...)
	for id := range d.removed {
		out = append(out, id)
	}
	return out
}

// diff compares two valid desired states per guest. The hash covers the
// effective spec (VM defaults applied) without annotations, so a converge
// request alone is not a spec change and a reformatted file is no change at
// all. prev nil means every guest is added.
func diff(prev, next *api.Config) delta {
	d := delta{removed: map[api.ID]api.Kind{}}
	for _, id := range next.IDs {
		g := next.Guests[id]
		var old *api.Guest
		if prev != nil {
			old = prev.Guests[id]
		}
		switch {
		case old == nil:
			d.added = append(d.added, id)
		case old.Hash != g.Hash || old.Kind != g.Kind:
			d.changed = append(d.changed, id)
		case g.ConvergeToken() != "" && g.ConvergeToken() != old.ConvergeToken():
			d.converge = append(d.converge, id)
		}
	}
	if prev != nil {
		for _, id := range prev.IDs {
			if next.Guests[id] == nil {
				d.removed[id] = prev.Guests[id].Kind
			}
		}
	}
	return d
}
