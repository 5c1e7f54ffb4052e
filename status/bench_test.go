package status

import (
	"sync"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// BenchmarkUpdate writes status files the way a controller's workers do:
// several at once, each for its own guest.
func BenchmarkUpdate(b *testing.B) {
	s, err := NewStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	const workers = 8
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < b.N; i += workers {
				id := api.ID(1000 + i%5000)
				if _, err := s.Update(id, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady }); err != nil {
					b.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
}
