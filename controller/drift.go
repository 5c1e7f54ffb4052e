package controller

import (
	"sync"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// driftBook knows which guests drifted, for phoenix_drifted_guests.
type driftBook struct {
	mu sync.Mutex
	m  map[api.ID]api.Kind
}

// set records whether id drifted and returns the count of its kind.
func (b *driftBook) set(id api.ID, kind api.Kind, drifted bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[api.ID]api.Kind{}
	}
	if drifted {
		b.m[id] = kind
	} else {
		delete(b.m, id)
	}
	n := 0
	for _, k := range b.m {
		if k == kind {
			n++
		}
	}
	return n
}
