package controller

import (
	"sync"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

// StatusStore is the per-guest status record the controller reads and
// writes; *status.Store implements it.
type StatusStore interface {
	Get(id api.ID, kind api.Kind) (*api.Status, error)
	Update(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error)
	Delete(id api.ID) error
	IDs() ([]api.ID, error)
}

// phaseBook is the controller's view of every guest's kind and phase, for
// phoenix_guests. It is fed by trackingStore, so every status write (also
// those the shared reconcilers.Runner makes) keeps it current.
type phaseBook struct {
	mu sync.Mutex
	m  map[api.ID]kindPhase
}

type kindPhase struct {
	kind  api.Kind
	phase api.Phase
}

func newPhaseBook() *phaseBook { return &phaseBook{m: map[api.ID]kindPhase{}} }

func (b *phaseBook) set(id api.ID, kind api.Kind, phase api.Phase) {
	b.mu.Lock()
	b.m[id] = kindPhase{kind, phase}
	b.mu.Unlock()
}

// Get is the guest's phase as a status with only ID, kind and phase set,
// for planning (plan.StatusReader); ok false when the book does not
// know the guest.
func (b *phaseBook) get(id api.ID) (kindPhase, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kp, ok := b.m[id]
	return kp, ok
}

// bookStatus answers planning's status reads from the phase book: the
// controller is the only writer of status files while it runs (it holds the
// state dir's lock) and the book sees every write it makes, so the book is
// as current as the files, without a file read and JSON decode per
// dependency per reconcile. A guest the book does not know is read from
// the store.
type bookStatus struct {
	book  *phaseBook
	store StatusStore
}

func (s bookStatus) Get(id api.ID, kind api.Kind) (*api.Status, error) {
	if kp, ok := s.book.get(id); ok && kp.kind == kind {
		return &api.Status{ID: id.String(), Kind: kind, Phase: kp.phase}, nil
	}
	return s.store.Get(id, kind)
}

func (b *phaseBook) remove(id api.ID) {
	b.mu.Lock()
	delete(b.m, id)
	b.mu.Unlock()
}

// counts gives the number of guests by (kind, phase).
func (b *phaseBook) counts() map[[2]string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[[2]string]int{}
	for _, kp := range b.m {
		out[[2]string{string(kp.kind), string(kp.phase)}]++
	}
	return out
}

// trackingStore is a StatusStore that tells a phaseBook about every write.
type trackingStore struct {
	StatusStore
	book *phaseBook
}

func (s *trackingStore) Update(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
	return s.track(id, kind)(s.StatusStore.Update(id, kind, fn))
}

// UpdateNoSync passes the runner's write that need not wait for the disk
// on, when the store has one.
func (s *trackingStore) UpdateNoSync(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
	update := s.StatusStore.Update
	if w, ok := s.StatusStore.(interface {
		UpdateNoSync(api.ID, api.Kind, func(*api.Status)) (*api.Status, error)
	}); ok {
		update = w.UpdateNoSync
	}
	return s.track(id, kind)(update(id, kind, fn))
}

// UpdateAsync passes the runner's queued outcome writes on, when the store
// can queue them; otherwise the write is made on disk at once and its
// Pending is nil.
func (s *trackingStore) UpdateAsync(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, *status.Pending, error) {
	w, ok := s.StatusStore.(interface {
		UpdateAsync(api.ID, api.Kind, func(*api.Status)) (*api.Status, *status.Pending, error)
	})
	if !ok {
		st, err := s.track(id, kind)(s.StatusStore.Update(id, kind, fn))
		return st, nil, err
	}
	st, p, err := w.UpdateAsync(id, kind, fn)
	st, err = s.track(id, kind)(st, err)
	return st, p, err
}

func (s *trackingStore) track(id api.ID, kind api.Kind) func(*api.Status, error) (*api.Status, error) {
	return func(st *api.Status, err error) (*api.Status, error) {
		if err != nil {
			return st, err
		}
		k := st.Kind
		if k == "" {
			k = kind
		}
		s.book.set(id, k, st.Phase)
		return st, nil
	}
}

func (s *trackingStore) Delete(id api.ID) error {
	err := s.StatusStore.Delete(id)
	if err == nil {
		s.book.remove(id)
	}
	return err
}
