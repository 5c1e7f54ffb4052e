package status

import (
	"fmt"
	"sync"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// BenchmarkUpdate writes status files the way a controller's workers do:
// several at once, each for its own guest. Every Update is durable when it
// returns; concurrent ones share their fsyncs.
func BenchmarkUpdate(b *testing.B) {
	for _, workers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s, err := NewStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
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
		})
	}
}

// BenchmarkGet reads a recorded status, as every reconcile does.
func BenchmarkGet(b *testing.B) {
	s, err := NewStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Update(941, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady; st.ObservedSpecHash = "0123456789abcdef" }); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(941, api.KindLXC); err != nil {
			b.Fatal(err)
		}
	}
}
